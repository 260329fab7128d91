"""FHIR JSON responses serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

__all__ = ["FHIR_JSON", "fhir_response"]

FHIR_JSON = "application/fhir+json"


def fhir_response(resource: dict[str, Any], status: int = 200) -> Response:
    """A FHIR JSON response."""
    return Response(orjson.dumps(resource), status_code=status, media_type=FHIR_JSON)
