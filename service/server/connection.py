"""Everything that talks to the configured FHIR server, built from the settings in one place.

``connect(settings, pipeline)`` returns ``None`` when ``PAINPATH_FHIR_SERVER`` is unset (the API
then answers 422); otherwise the client (with its auth), the patient-triage use case and the
re-evaluation queue of the subscription receiver, closed together by ``aclose``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from service.app.pipeline import Pipeline
from service.server.credentials import Auth, BearerAuth, NoAuth, SmartBackendAuth, SmartConfig
from service.server.fhir_server import ClientConfig, FhirServerClient
from service.server.patient_triage import PatientTriage
from service.settings import Settings
from service.subscriptions.reevaluation import Reevaluator

__all__ = [
    "ConfigurationError",
    "ServerConnection",
    "auth_from_settings",
    "client_from_settings",
    "connect",
]

_PING_OVERLAP = timedelta(seconds=5)  # clock skew between PainPath and the server


class ConfigurationError(ValueError):
    """The FHIR server settings are incomplete (raised at start-up)."""


def auth_from_settings(settings: Settings) -> Auth:
    """The outbound auth the settings ask for."""
    if settings.fhir_auth == "bearer":
        if settings.fhir_token is None:
            raise ConfigurationError("PAINPATH_FHIR_AUTH=bearer needs PAINPATH_FHIR_TOKEN")
        return BearerAuth(settings.fhir_token.get_secret_value())
    if settings.fhir_auth == "smart-backend":
        return _smart(settings)
    return NoAuth()


def _smart(settings: Settings) -> SmartBackendAuth:
    client_id, token_url = settings.smart_client_id, settings.smart_token_url
    key_path = settings.smart_private_key_path
    if not (client_id and token_url and key_path):
        raise ConfigurationError(
            "PAINPATH_FHIR_AUTH=smart-backend needs PAINPATH_SMART_CLIENT_ID, "
            "PAINPATH_SMART_TOKEN_URL and PAINPATH_SMART_PRIVATE_KEY_PATH"
        )
    config = SmartConfig(
        client_id=client_id,
        token_url=token_url,
        private_key_pem=key_path.read_bytes(),
        alg=settings.smart_alg,
        kid=settings.smart_kid,
        scope=settings.smart_scope,
    )
    return SmartBackendAuth(config)


def client_from_settings(
    settings: Settings, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> FhirServerClient:
    """A client for ``base_url`` with the timeouts, retries, paging and auth of the settings."""
    config = ClientConfig(
        base_url=base_url,
        connect_timeout=settings.fhir_connect_timeout_seconds,
        timeout=settings.fhir_timeout_seconds,
        retries=settings.fhir_retries,
        backoff=settings.fhir_backoff_seconds,
        backoff_max=settings.fhir_backoff_max_seconds,
        page_size=settings.fhir_page_size,
        max_pages=settings.fhir_max_pages,
    )
    return FhirServerClient(config, auth=auth_from_settings(settings), transport=transport)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class ServerConnection:
    """The FHIR server side of a running app."""

    client: FhirServerClient
    triage: PatientTriage
    reevaluator: Reevaluator
    watermark: datetime = field(default_factory=_now)

    def take_watermark(self) -> str:
        """The instant from which a payload-less ping must look for changes; advances it."""
        since = self.watermark - _PING_OVERLAP
        self.watermark = _now()
        return since.isoformat().replace("+00:00", "Z")

    async def aclose(self) -> None:
        """Stop the queue, then close the connection pool."""
        await self.reevaluator.aclose()
        await self.client.aclose()


def connect(
    settings: Settings, pipeline: Pipeline, *, transport: httpx.AsyncBaseTransport | None = None
) -> ServerConnection | None:
    """The FHIR server connection, or None when no server is configured."""
    if not settings.fhir_server:
        return None
    client = client_from_settings(settings, settings.fhir_server, transport=transport)
    triage = PatientTriage(
        client,
        pipeline,
        everything=settings.fhir_everything,
    )
    queue = Reevaluator(triage.reevaluate, delay=settings.subscription_debounce_seconds)
    return ServerConnection(client, triage, queue)
