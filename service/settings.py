"""Service settings: the only place the environment is read (prefix ``PAINPATH_``)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "check_bind", "get_settings"]


class Settings(BaseSettings):
    """Runtime configuration; see ``.env.example`` for every variable."""

    model_config = SettingsConfigDict(env_prefix="PAINPATH_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)  # uvicorn worker processes (painpath serve)
    fhir_server: str | None = None
    # whole patient records are ordinary input: a 15 MB, 7,700-entry history is common
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    max_entries: int = Field(default=50_000, ge=1)
    # JSON nesting limit, checked right after parsing and before validation (service.fhir.limits).
    # at most 200: inputs are re-serialised by orjson (CDS digests, the web page's trace), which
    # refuses nesting deeper than 255, and a Parameters or trace wrapper adds a few levels
    max_json_depth: int = Field(default=64, ge=2, le=200)
    default_profile: str | None = None
    log_level: str = "INFO"
    # Logs (service.api.observability): one JSON line per request; patient ids are HMAC-SHA256'd
    # with log_salt (a random per-process key when unset, so hashes only correlate within a run).
    log_format: Literal["json", "text"] = "json"
    log_salt: SecretStr | None = None
    # /readyz: the FHIR server's /metadata probe (when fhir_server is set), cached briefly.
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    readiness_cache_seconds: float = Field(default=5.0, ge=0)
    # Inbound auth of the FHIR API (service.api.access): "none" only on a loopback bind (unless
    # auth_allow_none_off_loopback, e.g. a container published on the host's loopback only);
    # "jwt": bearer tokens from auth_issuers (issuer -> JWKS URL or file) with SMART scopes.
    auth_mode: Literal["none", "jwt"] = "none"
    auth_allow_none_off_loopback: bool = False
    auth_issuers: dict[str, str] = Field(default_factory=dict)
    auth_audience: str | None = None
    auth_write_scope: str = "system/PainPath.write"
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    profiles_dir: Path | None = None
    # Outbound FHIR server client (service.server.fhir_server); see .env.example.
    fhir_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    fhir_timeout_seconds: float = Field(default=20.0, gt=0)
    fhir_retries: int = Field(default=3, ge=0, le=10)
    fhir_backoff_seconds: float = Field(default=0.25, ge=0)
    fhir_backoff_max_seconds: float = Field(default=4.0, ge=0)
    fhir_page_size: int = Field(default=100, ge=1, le=1000)
    fhir_max_pages: int = Field(default=100, ge=1)
    fhir_everything: bool = False
    fhir_auth: Literal["none", "bearer", "smart-backend"] = "none"
    fhir_token: SecretStr | None = None
    smart_client_id: str | None = None
    smart_token_url: str | None = None
    smart_private_key_path: Path | None = None
    smart_alg: Literal["RS384", "ES384"] = "RS384"
    smart_kid: str | None = None
    smart_scope: str = (
        "system/*.rs system/Observation.cu system/CarePlan.cu system/ServiceRequest.cu "
        "system/DetectedIssue.cu system/Provenance.cu"
    )
    writeback: bool = False
    subscription_endpoint: str | None = None
    subscription_token: SecretStr | None = None
    subscription_debounce_seconds: float = Field(default=2.0, ge=0)
    # CDS Hooks 2.0 (service.api.cds_hooks, JWTs checked by service.api.jwt_verify): client JWTs
    # signed by an allow-listed issuer (cds_issuers: iss -> its JWKS URL, the only jku accepted);
    # cds_auth unset means on unless the service is bound to loopback (cds_auth_required). aud
    # must equal {cds_base_url}/cds-services/{id} (cds_base_url unset: the URL the request came
    # in on).
    cds_auth: bool | None = None
    cds_issuers: dict[str, str] = Field(default_factory=dict)
    cds_base_url: str | None = None
    cds_leeway_seconds: int = Field(default=60, ge=0, le=300)
    cds_jti_cache_size: int = Field(default=10_000, ge=1)
    cds_jwks_refresh_seconds: float = Field(default=10.0, ge=0)  # min gap between JWKS refetches
    cds_fhir_timeout_seconds: float = Field(default=5.0, gt=0)  # prefetch fallback budget
    # Best practice checklist item 4: when non-empty, a client JWT's tenant claim must be listed.
    cds_tenants: list[str] = Field(default_factory=list)
    # FHIR bases the fhirAuthorization token may be sent to (a request's fhirServer must be one of
    # them or lie under one on a path boundary). Empty: any fhirServer while cds_auth_required is
    # false (loopback development), none otherwise (fail closed). http:// only for loopback hosts.
    cds_fhir_servers: list[str] = Field(default_factory=list)
    # CORS (browser-based CDS Hooks clients such as the sandbox); [] turns CORS off.
    cors_origins: list[str] = Field(default_factory=lambda: ["https://sandbox.cds-hooks.org"])

    @field_validator("cds_tenants")
    @classmethod
    def _tenants(cls, value: list[str]) -> list[str]:
        if any(not tenant.strip() for tenant in value):
            raise ValueError("PAINPATH_CDS_TENANTS entries must be non-empty strings")
        return value

    @field_validator("cds_fhir_servers")
    @classmethod
    def _fhir_servers(cls, value: list[str]) -> list[str]:
        for base in value:
            _check_fhir_base(base)
        return value

    @property
    def cds_auth_required(self) -> bool:
        """Whether CDS Hooks calls need a client JWT (explicit, or off only on loopback)."""
        return self.cds_auth if self.cds_auth is not None else not _is_loopback(self.host)


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_fhir_base(base: str) -> None:
    """Refuse (ValueError) a ``cds_fhir_servers`` entry that is not a plain http(s) base URL, or
    that is ``http://`` off loopback: the fhirAuthorization token must travel over TLS (CDS Hooks
    "FHIR Resource Access", FHIR-28655)."""
    parts = urlsplit(base)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError(f"PAINPATH_CDS_FHIR_SERVERS: {base!r} has an invalid port") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"PAINPATH_CDS_FHIR_SERVERS: {base!r} is not an http(s) base URL")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError(
            f"PAINPATH_CDS_FHIR_SERVERS: {base!r} must be a base URL without credentials, "
            "query or fragment"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"PAINPATH_CDS_FHIR_SERVERS: {base!r} uses http:// for a non-loopback host; the "
            "fhirAuthorization token may only be sent over https:// in production (FHIR-28655). "
            "Use https://, or http://127.0.0.1 / http://localhost for local development"
        )


def check_bind(settings: Settings, host: str | None = None) -> None:
    """Refuse (RuntimeError) an unauthenticated API off loopback, or jwt mode without issuers."""
    bound = host or settings.host
    if settings.auth_mode == "none" and not _is_loopback(bound):
        if settings.auth_allow_none_off_loopback:
            return
        raise RuntimeError(
            f"PAINPATH_AUTH_MODE=none is only allowed on a loopback address, not {bound!r}: "
            "set PAINPATH_AUTH_MODE=jwt and PAINPATH_AUTH_ISSUERS, or bind to 127.0.0.1"
        )
    if settings.auth_mode == "jwt" and not settings.auth_issuers:
        raise RuntimeError("PAINPATH_AUTH_MODE=jwt needs PAINPATH_AUTH_ISSUERS")


@lru_cache
def get_settings() -> Settings:
    """The process settings (cached; tests override through the app's dependency)."""
    return Settings()
