"""Integration fixtures: two real FHIR R4 servers on 127.0.0.1 for the whole test session (sekmet-
fhir, pinned in the ``dev`` extra, and Medplum's FHIR router, pinned in ``medplum/``), an HTTP
client on the first, and PainPath in-process.

The sekmet server is started by ``sekmet_testkit.run_sekmet`` (tests/support): ``sekmet serve``
from the same virtual environment as the running interpreter, with its SQLite store in a
temporary directory, its lab/RIS/pharmacy simulator off (it would otherwise fill in
ServiceRequests behind the tests' back) and no peers, so it neither changes what the tests write
nor talks to anything beyond 127.0.0.1.

The second server (``medplum_server``, started only by the tests that ask for it) is
``node medplum/server.mjs <port>``: @medplum/fhir-router over its in-memory repository, with the
strict reference-target checks, atomic transactions and /metadata that the wrapper adds
(medplum/server.mjs says what and why). Its npm packages are installed by ``npm ci`` from the
committed lock file when node_modules is missing or older than the lock (``make test`` does it
first, as for the profile validator).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from live_servers import free_port
from node_tools import ensure_npm_ci
from sekmet_testkit import run_sekmet, stop, wait_ready

from service.api.app import create_app
from service.settings import Settings

log = logging.getLogger("painpath.integration")

FHIR_JSON = "application/fhir+json"
MEDPLUM = Path(__file__).parent / "medplum"


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh sekmet FHIR R4 server on 127.0.0.1; yields its base URL (``…/fhir``)."""
    with run_sekmet(tmp_path_factory.mktemp("sekmet")) as base:
        yield base


@pytest.fixture(scope="session")
def medplum_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Medplum's FHIR router (in-memory repository, strict writes) on 127.0.0.1; its base URL."""
    ensure_npm_ci(MEDPLUM, purpose="the Medplum FHIR server of the integration tests")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js 20+) is needed to run the Medplum FHIR server")
    workdir = tmp_path_factory.mktemp("medplum")
    port = free_port()
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
        seconds = wait_ready(proc, base, stderr_path, "medplum")
        log.info("medplum ready at %s after %.2f s (pid %d)", base, seconds, proc.pid)
        yield base
    finally:
        stop(proc)
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
