"""Fixtures of the third-party client tests: one real ``painpath serve`` (uvicorn, a subprocess
started from this virtual environment) on a free 127.0.0.1 port for the session, stopped after.

The clients exercised here (Python ``fhirclient`` and ``fhirpy``; npm ``fhir-kit-client``,
``fhir-package-loader`` and the CDS Hooks tools under ``node/``) are libraries nobody here wrote,
talking HTTP to that server as an EHR or an app would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_servers import free_port, start_painpath

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
STOP_TIMEOUT_S = 15


@pytest.fixture(scope="session")
def painpath_base() -> Iterator[str]:
    """``painpath serve`` on 127.0.0.1 (auth off, no FHIR server); yields ``http://…:port``."""
    port = free_port()
    server = start_painpath(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def sample() -> Callable[[str], dict[str, Any]]:
    """``sample(name)``: an input Bundle of ``samples/`` (``persistent-sciatica``, …)."""

    def read(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
        return data

    return read
