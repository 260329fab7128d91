"""Fixtures of the CDS Hooks tests: an app with a pinned evaluation date, optionally with client
JWT verification on (keys from :class:`cds_testkit.CdsClient`'s local JWKS endpoint)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from cds_testkit import ISSUER, JWKS_URL, SERVICE_BASE, CdsClient
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings

AS_OF = datetime.fromisoformat("2026-11-24T10:00:00+01:00")
AppFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def cds_client_keys() -> CdsClient:
    """The test CDS client's keys (generated once: RSA generation is slow)."""
    return CdsClient()


@pytest.fixture
def make_app(cds_client_keys: CdsClient) -> AppFactory:
    """``with make_app(as_of=…, auth=False, fhir_transport=…, **settings) as client: …``.

    With ``auth=True`` the prefetch fallback needs the fake server's base in
    ``cds_fhir_servers=[…]`` (an empty list trusts no fhirServer while auth is on)."""

    @contextmanager
    def factory(
        *,
        as_of: datetime = AS_OF,
        auth: bool = False,
        fhir_transport: httpx.AsyncBaseTransport | None = None,
        **overrides: Any,
    ) -> Iterator[TestClient]:
        values: dict[str, Any] = {"cds_auth": auth}
        if auth:
            values |= {"cds_issuers": {ISSUER: JWKS_URL}, "cds_base_url": SERVICE_BASE}
        settings = Settings(_env_file=None, **(values | overrides))
        app = create_app(settings, fhir_transport=fhir_transport)
        if app.state.cds.verifier is not None:
            app.state.cds.verifier.transport = cds_client_keys.transport()
        app.state.cds.clock = lambda: as_of
        with TestClient(app) as client:
            yield client

    return factory


@pytest.fixture
def cds(make_app: AppFactory) -> Iterator[TestClient]:
    """An app without client auth (loopback default), evaluating at the golden cases' date."""
    with make_app() as client:
        yield client
