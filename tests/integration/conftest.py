"""Integration fixtures: two real FHIR R4 servers on 127.0.0.1 for the whole test session (sekmet-
fhir, pinned in the ``dev`` extra, and Medplum's FHIR router, pinned in ``medplum/``), an HTTP
client on the first, and PainPath in-process.

The server is started as ``sekmet serve -c settings.yaml`` from the same virtual environment as
the running interpreter, with its SQLite store in a temporary directory, its lab/RIS/pharmacy
simulator off (it would otherwise fill in ServiceRequests behind the tests' back) and no peers,
so it neither changes what the tests write nor talks to anything beyond 127.0.0.1.

The second server (``medplum_server``, started only by the tests that ask for it) is
``node medplum/server.mjs <port>``: @medplum/fhir-router over its in-memory repository, with the
strict reference-target checks, atomic transactions and /metadata that the wrapper adds
(medplum/server.mjs says what and why). Its npm packages are installed by ``npm ci`` from the
committed lock file when node_modules is missing or older than the lock (``make test`` does it
first, as for the profile validator).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from node_tools import ensure_npm_ci

from service.api.app import create_app
from service.settings import Settings

log = logging.getLogger("painpath.integration")

FHIR_JSON = "application/fhir+json"
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 10.0
MEDPLUM = Path(__file__).parent / "medplum"

# sekmet reads these from the environment over settings.yaml (sekmet/config.py, load_settings).
_SEKMET_ENV_OVERRIDES = ("SEKMET_CONFIG", "SEKMET_BASE_URL", "SEKMET_DB", "SEKMET_PORT",
                         "SEKMET_PUBLIC_URL")  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=SHUTDOWN_TIMEOUT_S)


def _wait_ready(
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
                _stop(proc)
                pytest.fail(
                    f"{name} did not answer {base}/metadata within {STARTUP_TIMEOUT_S:.0f} s:\n"
                    f"{stderr_path.read_text(errors='replace')}"
                )
            time.sleep(0.1)


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh sekmet FHIR R4 server on 127.0.0.1; yields its base URL (``…/fhir``)."""
    workdir = tmp_path_factory.mktemp("sekmet")
    data_dir = workdir / "data"
    data_dir.mkdir()
    port = _free_port()
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
        seconds = _wait_ready(proc, base, stderr_path)
        log.info("sekmet ready at %s after %.2f s (pid %d)", base, seconds, proc.pid)
        yield base
    finally:
        stopping = time.monotonic()
        _stop(proc)
        log.info("sekmet stopped (exit %s) in %.2f s", proc.returncode, time.monotonic() - stopping)


@pytest.fixture(scope="session")
def medplum_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Medplum's FHIR router (in-memory repository, strict writes) on 127.0.0.1; its base URL."""
    ensure_npm_ci(MEDPLUM, purpose="the Medplum FHIR server of the integration tests")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js 20+) is needed to run the Medplum FHIR server")
    workdir = tmp_path_factory.mktemp("medplum")
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [node, str(MEDPLUM / "server.mjs"), str(port)],
            cwd=MEDPLUM,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        seconds = _wait_ready(proc, base, stderr_path, "medplum")
        log.info("medplum ready at %s after %.2f s (pid %d)", base, seconds, proc.pid)
        yield base
    finally:
        _stop(proc)
        log.info("medplum stopped (exit %s)", proc.returncode)


@pytest.fixture(scope="session")
def fhir(fhir_server: str) -> Iterator[httpx.Client]:
    """An HTTP client on the FHIR server's base URL (proxies from the environment ignored)."""
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    with httpx.Client(base_url=fhir_server, headers=headers, timeout=30.0, trust_env=False) as http:
        yield http


@pytest.fixture(scope="session")
def painpath() -> Iterator[TestClient]:
    """PainPath in-process, with default settings independent of the environment."""
    with TestClient(create_app(Settings(_env_file=None))) as client:
        yield client
