"""Typed request dependencies: the app's shared objects as ``Annotated[..., Depends]`` aliases.

Routes declare what they use (``pipeline: PipelineDep``) instead of reading ``request.app.state``;
the lifespan in ``app.py`` is the one place that state is set.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from service.app.pipeline import Pipeline
from service.conformance.store import ConformanceStore
from service.fhir.errors import InputError
from service.settings import Settings
from service.subscriptions.connection import ServerConnection

__all__ = [
    "FHIR_ID_PATTERN",
    "ConformanceDep",
    "PipelineDep",
    "SettingsDep",
    "get_conformance",
    "get_pipeline",
    "get_settings",
    "server_connection",
]

FHIR_ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"  # https://hl7.org/fhir/R4/datatypes.html#id


def get_pipeline(request: Request) -> Pipeline:
    """The evaluation path loaded at start-up."""
    return cast(Pipeline, request.app.state.pipeline)


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return cast(Settings, request.app.state.settings)


def get_conformance(request: Request) -> ConformanceStore:
    """The conformance resources of ``fhir_profiles/``."""
    return cast(ConformanceStore, request.app.state.conformance)


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
