"""The FHIR server client built from the settings in one place: its auth (none, a static
bearer token or SMART Backend Services) and its timeouts, retries and paging.

The running app's whole FHIR-server side (this client, the patient-triage use case and the
subscription re-evaluation queue) is assembled by ``service.subscriptions.connection``.
"""

from __future__ import annotations

import httpx

from service.server.credentials import Auth, BearerAuth, NoAuth, SmartBackendAuth, SmartConfig
from service.server.fhir_server import ClientConfig, FhirServerClient
from service.settings import Settings

__all__ = [
    "ConfigurationError",
    "auth_from_settings",
    "client_from_settings",
    "config_from_settings",
]


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


def config_from_settings(settings: Settings, base_url: str) -> ClientConfig:
    """The timeouts, retries and paging of the settings, for ``base_url``."""
    return ClientConfig(
        base_url=base_url,
        connect_timeout=settings.fhir_connect_timeout_seconds,
        timeout=settings.fhir_timeout_seconds,
        retries=settings.fhir_retries,
        backoff=settings.fhir_backoff_seconds,
        backoff_max=settings.fhir_backoff_max_seconds,
        page_size=settings.fhir_page_size,
        max_pages=settings.fhir_max_pages,
    )


def client_from_settings(
    settings: Settings, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> FhirServerClient:
    """A client for ``base_url`` with the timeouts, retries, paging and auth of the settings."""
    config = config_from_settings(settings, base_url)
    return FhirServerClient(config, auth=auth_from_settings(settings), transport=transport)
