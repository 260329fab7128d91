"""Integration fixtures: a real FHIR R4 server (sekmet-fhir, pinned in the ``dev`` extra) on
127.0.0.1 for the whole test session, an HTTP client on it, and PainPath in-process.

The server is started by ``sekmet_testkit.run_sekmet`` (tests/support): ``sekmet serve`` from the
same virtual environment as the running interpreter, with its SQLite store in a temporary
directory, its simulator off and no peers, so it neither changes what the tests write nor talks
to anything beyond 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sekmet_testkit import run_sekmet

from service.api.app import create_app
from service.settings import Settings

FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh sekmet FHIR R4 server on 127.0.0.1; yields its base URL (``…/fhir``)."""
    with run_sekmet(tmp_path_factory.mktemp("sekmet")) as base:
        yield base


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
