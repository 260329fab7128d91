"""When the private engine cannot start, the container tests fail and say why (never skip).

These run in the ordinary suite (no engine needed): the reasons are produced by
tests/support/docker_engine.py, and the container fixtures turn them into failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker_engine
import pytest
from docker_engine import EngineError, debian_mirror, private_engine

CONFTEST = Path(__file__).with_name("conftest.py")


def test_not_root_is_named_as_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError, match="dockerd needs root; this test runs as uid 1000"):
        private_engine().__enter__()


def test_a_daemon_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "dockerd.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; print('failed to start daemon: no cgroups'); sys.exit(1)",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        daemon.wait(10)
    with pytest.raises(EngineError) as raised:
        docker_engine._wait_for_engine(sys.executable, tmp_path / "none.sock", daemon, log)
    assert "dockerd exited with 1 while starting" in str(raised.value)
    assert "failed to start daemon: no cgroups" in str(raised.value)


def test_a_missing_tool_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(
        EngineError, match=r"^/nonexistent/dockerd not found: install Debian's docker.io"
    ):
        docker_engine._tool("/nonexistent/dockerd", "no-such-dockerd")


def test_the_fixtures_fail_rather_than_skip() -> None:
    text = CONFTEST.read_text()
    assert "pytest.fail(" in text
    assert "pytest.skip" not in text
    assert "importorskip" not in text


def test_the_mirror_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAINPATH_DEBIAN_MIRROR", "http://mirror.invalid/debian")
    assert debian_mirror() == "http://mirror.invalid/debian"
    monkeypatch.delenv("PAINPATH_DEBIAN_MIRROR")
    assert debian_mirror().startswith(("http://", "https://"))
