"""A real FHIR R4 server for tests: sekmet-fhir (pinned in the ``dev`` extra) on 127.0.0.1.

``run_sekmet(workdir)`` starts ``sekmet serve -c settings.yaml`` from the same virtual environment
as the running interpreter, with its SQLite store under ``workdir``, its lab/RIS/pharmacy
simulator off (it would otherwise fill in ServiceRequests behind the tests' back) and no peers,
so it neither changes what the tests write nor talks to anything beyond 127.0.0.1; it yields the
base URL (``…/fhir``) and stops the server when the context ends. The integration tests
(tests/integration) and the SMART launch tests (tests/web) start it through this; ``wait_ready``
and ``stop`` serve the other servers they start too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_servers import free_port

__all__ = ["run_sekmet", "stop", "wait_ready"]

log = logging.getLogger("painpath.integration")

STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 10.0

# sekmet reads these from the environment over settings.yaml (sekmet/config.py, load_settings).
_SEKMET_ENV_OVERRIDES = ("SEKMET_CONFIG", "SEKMET_BASE_URL", "SEKMET_DB", "SEKMET_PORT",
                         "SEKMET_PUBLIC_URL")  # fmt: skip


def _settings_yaml(port: int, data_dir: Path) -> str:
    """sekmet settings (keys of ``Settings`` in sekmet/config.py), as JSON, which is YAML too."""
    settings = {
        "base_url": f"http://127.0.0.1:{port}/fhir",  # used in Location headers and fullUrls
        "host": "127.0.0.1",
        "port": port,
        "data_dir": data_dir.as_posix(),  # SQLite store: {data_dir}/sekmet.db
        "simulator": {"enabled": False},  # no lab/RIS/pharmacy auto-fill of ServiceRequests
        "subscriptions": {"hook_token": "painpath-integration"},  # not a random token
        "validation": {"inbound": "strict", "validator_jar": None},  # R4B models, no HL7 jar
        "server_auth": {"types": ["none"]},
        "peers": {},
    }
    return json.dumps(settings, indent=2) + "\n"


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server process (kill it if it does not exit in time)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=SHUTDOWN_TIMEOUT_S)


def wait_ready(
    proc: subprocess.Popen[bytes], base: str, stderr_path: Path, name: str = "sekmet"
) -> float:
    """Poll ``GET {base}/metadata`` until 200; the seconds it took. Fails if the server dies."""
    started = time.monotonic()
    deadline = started + STARTUP_TIMEOUT_S
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"{name} exited with {proc.returncode} before answering /metadata:\n"
                    f"{stderr_path.read_text(errors='replace')}"
                )
            try:
                if http.get(f"{base}/metadata").status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                stop(proc)
                pytest.fail(
                    f"{name} did not answer {base}/metadata within {STARTUP_TIMEOUT_S:.0f} s:\n"
                    f"{stderr_path.read_text(errors='replace')}"
                )
            time.sleep(0.1)


@contextlib.contextmanager
def run_sekmet(workdir: Path) -> Iterator[str]:
    """A fresh sekmet FHIR R4 server on 127.0.0.1 with its files in ``workdir``; its base URL."""
    data_dir = workdir / "data"
    data_dir.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    config = workdir / "settings.yaml"
    config.write_text(_settings_yaml(port, data_dir), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in _SEKMET_ENV_OVERRIDES}
    sekmet = Path(sys.executable).parent / "sekmet"
    if not sekmet.is_file():
        pytest.fail(f"{sekmet} not found: install the dev extra (pip install -e '.[dev]')")
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        # cwd = workdir: any relative path sekmet uses (e.g. keys/) stays in the temp dir.
        proc = subprocess.Popen(
            [str(sekmet), "serve", "-c", str(config)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        seconds = wait_ready(proc, base, stderr_path)
        log.info("sekmet ready at %s after %.2f s (pid %d)", base, seconds, proc.pid)
        yield base
    finally:
        stopping = time.monotonic()
        stop(proc)
        log.info("sekmet stopped (exit %s) in %.2f s", proc.returncode, time.monotonic() - stopping)
