"""Service settings: the only place the environment is read (prefix ``PAINPATH_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Runtime configuration; see ``.env.example`` for every variable."""

    model_config = SettingsConfigDict(env_prefix="PAINPATH_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    fhir_server: str | None = None
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_entries: int = Field(default=10_000, ge=1)
    default_profile: str | None = None
    log_level: str = "INFO"
    profiles_dir: Path | None = None
    # Outbound FHIR server client (service.clients.fhir_server); see .env.example.
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


@lru_cache
def get_settings() -> Settings:
    """The process settings (cached; tests override through the app's dependency)."""
    return Settings()
