"""Type aliases shared by the wire-format code: FHIR JSON as parsed (orjson dicts)."""

from __future__ import annotations

from typing import Any

__all__ = ["Json"]

# A FHIR resource, element or Bundle entry as parsed JSON.
Json = dict[str, Any]
