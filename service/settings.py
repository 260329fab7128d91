"""Service settings: the only place the environment is read (prefix ``PAINPATH_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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


@lru_cache
def get_settings() -> Settings:
    """The process settings (cached; tests override through the app's dependency)."""
    return Settings()
