"""Typed request dependencies: the app's shared objects as ``Annotated[..., Depends]`` aliases.

Routes declare what they use (``pipeline: PipelineDep``) and helpers call the accessors
(``get_metrics(request)``) instead of reading ``request.app.state``: this module is the one place
that state is read. The lifespan in ``app.py`` sets what it loads; ``install_auth`` and
``install_observability`` set the verifier and the metrics when the app is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Path, Request
from pydantic import AfterValidator

from service.api.jwt_verify import JwtVerifier
from service.api.smart_session import LaunchCookies
from service.app.pipeline import Pipeline
from service.conformance.store import ConformanceStore
from service.fhir.errors import InputError
from service.fhir.ids import FHIR_ID_PATTERN, ID_RULE, is_fhir_id
from service.server.http import Transport
from service.settings import Settings
from service.subscriptions.connection import ServerConnection

if TYPE_CHECKING:  # observability's routes read state through this module: no runtime cycle
    from service.api.observability.metrics import Metrics

__all__ = [
    "FHIR_ID_PATTERN",
    "ConformanceDep",
    "FhirIdPath",
    "PipelineDep",
    "SettingsDep",
    "get_auth_settings",
    "get_conformance",
    "get_fhir_transport",
    "get_jwt_verifier",
    "get_launch_cookies",
    "get_metrics",
    "get_pipeline",
    "get_settings",
    "last_readiness_probe",
    "loaded_pipeline",
    "loaded_settings",
    "server_connection",
]


def _fhir_id(value: str) -> str:
    if not is_fhir_id(value):
        raise ValueError(f"must be {ID_RULE}")  # the caller's value is not repeated
    return value


# A FHIR id in the path (``Patient/{id}/$triage``): 400 naming the segment unless it is one
# (``.`` and ``..`` are refused, see ``service.fhir.ids``); the pattern is for the OpenAPI.
FhirIdPath = Annotated[
    str, Path(json_schema_extra={"pattern": FHIR_ID_PATTERN}), AfterValidator(_fhir_id)
]


def get_pipeline(request: Request) -> Pipeline:
    """The evaluation path loaded at start-up."""
    return cast(Pipeline, request.app.state.pipeline)


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return cast(Settings, request.app.state.settings)


def get_conformance(request: Request) -> ConformanceStore:
    """The conformance resources of ``fhir_profiles/``."""
    return cast(ConformanceStore, request.app.state.conformance)


def loaded_pipeline(request: Request) -> Pipeline | None:
    """The evaluation path, or None before the lifespan has loaded it (readiness)."""
    return cast(Pipeline | None, getattr(request.app.state, "pipeline", None))


def loaded_settings(request: Request) -> Settings | None:
    """The settings, or None before the lifespan has set them (readiness)."""
    return cast(Settings | None, getattr(request.app.state, "settings", None))


def get_fhir_transport(request: Request) -> Transport | None:
    """The transport the FHIR server client uses (tests inject one; None: httpx's default)."""
    return cast(Transport | None, getattr(request.app.state, "fhir_transport", None))


def last_readiness_probe(request: Request) -> tuple[float, str] | None:
    """``/readyz``'s cached FHIR server probe: (monotonic time, result), or None before one."""
    return cast(tuple[float, str] | None, getattr(request.app.state, "readiness_probe", None))


def get_jwt_verifier(request: Request) -> JwtVerifier | None:
    """The inbound token verifier (``PAINPATH_AUTH_MODE=jwt``); None when auth is off."""
    return cast(JwtVerifier | None, request.app.state.jwt_verifier)


def get_launch_cookies(request: Request) -> LaunchCookies:
    """The SMART launch cookie sealer (set when the app is created)."""
    return cast(LaunchCookies, request.app.state.launch_cookies)


def get_auth_settings(request: Request) -> Settings:
    """The settings the auth checks were installed with (set when the app is created)."""
    return cast(Settings, request.app.state.auth_settings)


def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus collectors (set when the app is created)."""
    return cast("Metrics", request.app.state.metrics)


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ConformanceDep = Annotated[ConformanceStore, Depends(get_conformance)]


def server_connection(request: Request, feature: str) -> ServerConnection:
    """The configured FHIR server connection; 422 naming ``feature`` when there is none."""
    connection: ServerConnection | None = getattr(request.app.state, "fhir_server", None)
    if connection is None:
        raise InputError.one(
            "processing",
            f"No FHIR server is configured (set PAINPATH_FHIR_SERVER); {feature} needs one",
        )
    return connection
