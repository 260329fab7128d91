"""FHIR logical ids as PainPath accepts them from callers and puts them into URLs.

An R4 ``id`` is 1 to 64 of ``A-Z a-z 0-9 - .`` (https://hl7.org/fhir/R4/datatypes.html#id), so
``.`` and ``..`` match the datatype's pattern. In a URL path they are dot-segments, which URL
normalisation removes (RFC 3986 5.2.4): ``Patient/..`` would name the server's base. PainPath
joins ids to FHIR server URLs, so it refuses those two everywhere an id comes in, and
percent-encodes an id whenever it becomes a path segment.
"""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = ["FHIR_ID_PATTERN", "ID_RULE", "is_fhir_id", "path_segment"]

# The R4 id pattern without "." and ".." (no look-around: the route patterns are compiled by
# pydantic-core's regex engine, which has none): one character that is not a dot, two that are
# not both dots, or three to 64.
FHIR_ID_PATTERN = (
    r"^(?:[A-Za-z0-9\-]|[A-Za-z0-9\-.][A-Za-z0-9\-]|[A-Za-z0-9\-][A-Za-z0-9\-.]"
    r"|[A-Za-z0-9\-.]{3,64})$"
)
ID_RULE = "a FHIR id: 1 to 64 letters, digits, '-' or '.', and not '.' or '..'"
_ID = re.compile(FHIR_ID_PATTERN)


def is_fhir_id(value: object) -> bool:
    """Whether ``value`` is a FHIR id that is safe as a URL path segment."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def path_segment(value: str) -> str:
    """``value`` as one percent-encoded URL path segment; ValueError for ``.``, ``..`` or ""
    (they are not segments but steps of the path)."""
    if value in {"", ".", ".."}:
        raise ValueError("an empty, '.' or '..' id cannot be a URL path segment")
    return quote(value, safe="")
