"""Request-scoped access to the app's shared objects (the FHIR server connection)."""

from __future__ import annotations

from fastapi import Request

from service.clients.connection import ServerConnection
from service.fhir.errors import InputError

__all__ = ["FHIR_ID_PATTERN", "server_connection"]

FHIR_ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"  # https://hl7.org/fhir/R4/datatypes.html#id


def server_connection(request: Request, feature: str) -> ServerConnection:
    """The configured FHIR server connection; 422 naming ``feature`` when there is none."""
    connection: ServerConnection | None = getattr(request.app.state, "fhir_server", None)
    if connection is None:
        raise InputError.one(
            "processing",
            f"No FHIR server is configured (set PAINPATH_FHIR_SERVER); {feature} needs one",
        )
    return connection
