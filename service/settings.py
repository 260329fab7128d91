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
    """Runtime configuration from ``PAINPATH_*`` environment variables and, below them, a ``.env``
    file in the working directory. Every field's ``description`` is its documentation: the table
    in docs/configuration.md is generated from this class (``python -m tools.settings_table``)."""

    model_config = SettingsConfigDict(
        env_prefix="PAINPATH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = Field(default="127.0.0.1", description="Interface `painpath serve` binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `painpath serve` binds to.")
    workers: int = Field(
        default=1, ge=1, le=64, description="uvicorn worker processes of `painpath serve`."
    )
    fhir_server: str | None = Field(
        default=None,
        description="FHIR R4 base URL PainPath reads patients from and writes results to "
        "(`Patient/{id}/$triage`, subscriptions). Unset: only `$triage` on a posted Bundle.",
    )
    # whole patient records are ordinary input: a 15 MB, 7,700-entry history is common
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Largest accepted request body, in bytes."
    )
    max_entries: int = Field(default=50_000, ge=1, description="Most entries in one Bundle.")
    # JSON nesting limit, checked right after parsing and before validation (service.fhir.limits).
    # at most 200: inputs are re-serialised by orjson (CDS digests, the web page's trace), which
    # refuses nesting deeper than 255, and a Parameters or trace wrapper adds a few levels
    max_json_depth: int = Field(
        default=64, ge=2, le=200, description="Deepest JSON nesting accepted (2-200)."
    )
    default_profile: str | None = Field(
        default=None,
        description="Guideline profile used when a request names none (`nice-ng59` or "
        "`neupsig`). Unset: the knowledge files' default, `nice-ng59`.",
    )
    log_level: str = Field(
        default="INFO", description="debug, info, warning, error or critical (any case)."
    )
    # Logs (service.api.observability): one JSON line per request; patient ids are HMAC-SHA256'd
    # with log_salt (a random per-process key when unset, so hashes only correlate within a run).
    log_format: Literal["json", "text"] = Field(
        default="json", description="`json`: one JSON object per log line; `text`: plain lines."
    )
    log_salt: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 that replaces patient ids in logs. Unset: a random "
        "key per process, so hashes correlate only within one run.",
    )
    # /readyz: the FHIR server's /metadata probe (when fhir_server is set), cached briefly.
    readiness_timeout_seconds: float = Field(
        default=2.0, gt=0, description="`/readyz`: time allowed for the FHIR server's /metadata."
    )
    readiness_cache_seconds: float = Field(
        default=5.0, ge=0, description="`/readyz`: how long one probe result is reused."
    )
    # Inbound auth of the FHIR API (service.api.access): "none" only on a loopback bind (unless
    # auth_allow_none_off_loopback, e.g. a container published on the host's loopback only);
    # "jwt": bearer tokens from auth_issuers (issuer -> JWKS URL or file) with SMART scopes.
    auth_mode: Literal["none", "jwt"] = Field(
        default="none",
        description="Inbound auth of the FHIR API: `none` (loopback binds only) or `jwt` "
        "(bearer tokens from PAINPATH_AUTH_ISSUERS with SMART scopes).",
    )
    auth_allow_none_off_loopback: bool = Field(
        default=False,
        description="Allow `auth_mode=none` off loopback, e.g. a container published on the "
        "host's loopback only.",
    )
    auth_issuers: dict[str, str] = Field(
        default_factory=dict,
        description='JSON object: issuer -> its JWKS URL or file, e.g. `{"https://auth.example": '
        '"https://auth.example/jwks.json"}`.',
    )
    auth_audience: str | None = Field(
        default=None, description="The `aud` inbound tokens must carry. Unset: not checked."
    )
    auth_write_scope: str = Field(
        default="system/PainPath.write",
        description="SMART scope needed for operations that write to the FHIR server.",
    )
    auth_leeway_seconds: int = Field(
        default=30, ge=0, le=300, description="Clock leeway for inbound token times (0-300)."
    )
    profiles_dir: Path | None = Field(
        default=None,
        description="Directory of the conformance package served under /fhir. Unset: the one "
        "installed with PainPath. A missing directory stops start-up.",
    )
    # Outbound FHIR server client (service.server.fhir_server).
    fhir_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Outbound FHIR client: connect timeout."
    )
    fhir_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Outbound FHIR client: read and write timeout."
    )
    fhir_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Outbound FHIR client: retries of timeouts, connection errors, 429 and 5xx.",
    )
    fhir_backoff_seconds: float = Field(
        default=0.25, ge=0, description="First retry delay (doubles each retry, with jitter)."
    )
    fhir_backoff_max_seconds: float = Field(default=4.0, ge=0, description="Longest retry delay.")
    fhir_page_size: int = Field(
        default=100, ge=1, le=1000, description="`_count` of the searches that read a patient."
    )
    fhir_max_pages: int = Field(
        default=100, ge=1, description="Most search pages followed for one resource type."
    )
    fhir_everything: bool = Field(
        default=False,
        description="Read the patient with `Patient/$everything` instead of one search per type.",
    )
    fhir_auth: Literal["none", "bearer", "smart-backend"] = Field(
        default="none",
        description="Outbound auth: `none`, `bearer` (PAINPATH_FHIR_TOKEN) or `smart-backend` "
        "(SMART Backend Services, client_credentials with a signed JWT assertion).",
    )
    fhir_token: SecretStr | None = Field(
        default=None, description="Bearer token for `fhir_auth=bearer`."
    )
    smart_client_id: str | None = Field(
        default=None, description="SMART Backend Services: the registered client id."
    )
    smart_token_url: str | None = Field(
        default=None, description="SMART Backend Services: the token endpoint."
    )
    smart_private_key_path: Path | None = Field(
        default=None, description="SMART Backend Services: PEM private key file."
    )
    smart_alg: Literal["RS384", "ES384"] = Field(
        default="RS384", description="SMART Backend Services: assertion signing algorithm."
    )
    smart_kid: str | None = Field(
        default=None, description="SMART Backend Services: `kid` header of the assertion."
    )
    smart_scope: str = Field(
        default=(
            "system/*.rs system/Observation.cu system/CarePlan.cu system/ServiceRequest.cu "
            "system/DetectedIssue.cu system/Provenance.cu"
        ),
        description="SMART Backend Services: scopes requested.",
    )
    writeback: bool = Field(
        default=False,
        description="Write results back on `Patient/{id}/$triage` by default (the `writeback` "
        "parameter overrides).",
    )
    subscription_endpoint: str | None = Field(
        default=None,
        description="PainPath's URL as the FHIR server reaches it (`painpath subscribe` default).",
    )
    subscription_token: SecretStr | None = Field(
        default=None,
        description="Shared token the FHIR server must send with notifications "
        "(`Authorization: Bearer ...`). Unset: not checked.",
    )
    subscription_debounce_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long one patient's notifications are gathered before one re-evaluation.",
    )
    # CDS Hooks 2.0 (service.api.cds_hooks, JWTs checked by service.api.jwt_verify): client JWTs
    # signed by an allow-listed issuer (cds_issuers: iss -> its JWKS URL, the only jku accepted);
    # cds_auth unset means on unless the service is bound to loopback (cds_auth_required). aud
    # must equal {cds_base_url}/cds-services/{id} (cds_base_url unset: the URL the request came
    # in on).
    cds_auth: bool | None = Field(
        default=None,
        description="CDS Hooks: require a client JWT. Unset: required unless bound to loopback.",
    )
    cds_issuers: dict[str, str] = Field(
        default_factory=dict,
        description="CDS Hooks: JSON object, allowed issuer -> its JWKS URL (the only `jku` "
        "accepted).",
    )
    cds_base_url: str | None = Field(
        default=None,
        description="CDS Hooks: public base URL the JWT `aud` must name "
        "(`{base}/cds-services/{id}`). Unset: the URL the request came in on.",
    )
    cds_leeway_seconds: int = Field(
        default=60, ge=0, le=300, description="CDS Hooks: JWT clock leeway (0-300)."
    )
    cds_jti_cache_size: int = Field(
        default=10_000, ge=1, description="CDS Hooks: `jti` replay-cache size."
    )
    cds_jwks_refresh_seconds: float = Field(
        default=10.0, ge=0, description="CDS Hooks: least time between JWKS refetches."
    )
    cds_fhir_timeout_seconds: float = Field(
        default=5.0, gt=0, description="CDS Hooks: time budget of the prefetch fallback."
    )
    cds_smart_launch_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="CDS Hooks: the SMART launch URL of PainPath's page "
        "(`https://{painpath}/smart/launch`); patient-view and order-sign cards then carry a "
        "`links` entry of type `smart` with an `appContext`. Unset: no link.",
    )
    # SMART App Launch 2.x of the web page (service.api.smart, service.server.smart_app): EHR
    # launch (/smart/launch?launch=...&iss=...) and standalone launch, authorization code + PKCE.
    smart_app_client_id: str | None = Field(
        default=None,
        description="SMART App Launch of the web page: PainPath's client id at the EHR. Unset: "
        "`/smart/launch` says launches are not set up.",
    )
    smart_app_client_secret: SecretStr | None = Field(
        default=None,
        description="SMART App Launch: client secret (`client_secret_basic`) of a confidential "
        "client. Unset: a public client (PKCE only).",
    )
    smart_app_issuers: list[str] = Field(
        default_factory=list,
        description="SMART App Launch: JSON list of the EHR FHIR bases (`iss`) PainPath launches "
        "from (https, or http on loopback); any other `iss` is refused.",
    )
    smart_app_default_iss: str | None = Field(
        default=None,
        description="SMART App Launch: the FHIR base of a standalone launch that names no `iss` "
        "(allowed like the listed issuers).",
    )
    smart_app_redirect_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="SMART App Launch: the redirect URI registered at the EHR. Unset: "
        "`{the URL the launch came in on}/smart/callback`.",
    )
    smart_app_scope: str = Field(
        default="launch patient/*.rs openid fhirUser",
        description="SMART App Launch: scopes asked for (v2; `launch` becomes `launch/patient` "
        "in a standalone launch, `.rs` becomes `.read` for an EHR that offers only v1).",
    )
    smart_app_session_key: SecretStr | None = Field(
        default=None,
        description="SMART App Launch: key of the encrypted, signed launch cookie. Unset: a "
        "random key per process (set it when running several workers).",
    )
    smart_app_launch_seconds: int = Field(
        default=600,
        ge=30,
        le=3600,
        description="SMART App Launch: how long a started launch may take to come back (30-3600).",
    )
    # Best practice checklist item 4: when non-empty, a client JWT's tenant claim must be listed.
    cds_tenants: list[str] = Field(
        default_factory=list,
        description="CDS Hooks: JSON list of the tenants a client JWT's `tenant` claim must "
        "name. Empty: not checked.",
    )
    # FHIR bases the fhirAuthorization token may be sent to (a request's fhirServer must be one of
    # them or lie under one on a path boundary). Empty: any fhirServer while cds_auth_required is
    # false (loopback development), none otherwise (fail closed). http:// only for loopback hosts.
    cds_fhir_servers: list[str] = Field(
        default_factory=list,
        description="CDS Hooks: JSON list of FHIR bases PainPath may call back with "
        "`fhirAuthorization` (https, or http on loopback). Empty: any while CDS auth is off, "
        "none while it is on.",
    )
    # CORS (browser-based CDS Hooks clients such as the sandbox); [] turns CORS off.
    cors_origins: list[str] = Field(
        default_factory=lambda: ["https://sandbox.cds-hooks.org"],
        description="JSON list of CORS origins (browser-based CDS Hooks clients); `[]`: off.",
    )

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

    @field_validator("smart_app_issuers")
    @classmethod
    def _smart_issuers(cls, value: list[str]) -> list[str]:
        for base in value:
            _check_fhir_base(base, "PAINPATH_SMART_APP_ISSUERS", "the access token")
        return value

    @field_validator("smart_app_default_iss")
    @classmethod
    def _smart_default_iss(cls, value: str | None) -> str | None:
        if value is not None:
            _check_fhir_base(value, "PAINPATH_SMART_APP_DEFAULT_ISS", "the access token")
        return value

    @property
    def smart_app_allowed_issuers(self) -> list[str]:
        """The FHIR bases a SMART launch may name: the listed issuers and the default one."""
        default = [self.smart_app_default_iss] if self.smart_app_default_iss else []
        return [*self.smart_app_issuers, *default]

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


def _check_fhir_base(
    base: str,
    setting: str = "PAINPATH_CDS_FHIR_SERVERS",
    carried: str = "the fhirAuthorization token",
) -> None:
    """Refuse (ValueError) a FHIR base (``cds_fhir_servers``, the SMART issuers) that is not a
    plain http(s) base URL, or that is ``http://`` off loopback: ``carried`` must travel over TLS
    (CDS Hooks "FHIR Resource Access", FHIR-28655; SMART App Launch requires TLS too)."""
    parts = urlsplit(base)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError(f"{setting}: {base!r} has an invalid port") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{setting}: {base!r} is not an http(s) base URL")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError(
            f"{setting}: {base!r} must be a base URL without credentials, query or fragment"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"{setting}: {base!r} uses http:// for a non-loopback host; {carried} may only be "
            "sent over https:// in production (FHIR-28655). Use https://, or http://127.0.0.1 / "
            "http://localhost for local development"
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
