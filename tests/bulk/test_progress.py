"""The bulk progress bar: ``\\r`` frames only on a terminal; elsewhere occasional plain lines."""

from __future__ import annotations

import io
import time

import pytest

from service.bulk.runner import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_frames_redrawn_in_place() -> None:
    stream = _Terminal()
    progress = Progress(4, stream)
    for _ in range(4):
        progress.advance(1)
    written = stream.getvalue()
    assert written.count("\r") == 4
    assert "\n" not in written
    assert "4/4 patients" in written


def test_a_file_gets_plain_lines_now_and_then(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    progress = Progress(5, stream)  # started at 0 s
    for moment in (1.0, 2.0, 3.0, 15.0, 16.0):
        now[0] = moment
        progress.advance(1)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    # the first, the one after 10 quiet seconds, and the last
    assert [line.split(" patients")[0] for line in lines] == ["bulk: 1/5", "bulk: 4/5", "bulk: 5/5"]
