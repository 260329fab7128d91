"""The options of one evaluation: evaluation date, guideline profile and return mode.

They arrive as query parameters, as Parameters parts in the body, as CLI flags or from the
configuration; :func:`resolve_options` is the one place they are checked and defaulted (a bad
value is a 400 ``invalid`` with the parameter as its expression).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from service.domain.knowledge import KnowledgeBase
from service.fhir.errors import InputError
from service.fhir.timeparse import parse_option_datetime

__all__ = ["RETURN_MODES", "RawOptions", "ReturnMode", "TriageOptions", "resolve_options"]

ReturnMode = Literal["collection", "transaction"]
RETURN_MODES: tuple[ReturnMode, ...] = ("collection", "transaction")
# option name -> value as sent (query string, Parameters part or CLI flag); None when absent
RawOptions = Mapping[str, str | bool | None]


@dataclass(frozen=True, slots=True)
class TriageOptions:
    """Evaluation options of one request."""

    as_of: datetime
    profile: str
    return_mode: ReturnMode = "collection"


def resolve_options(
    kb: KnowledgeBase,
    *layers: RawOptions,
    now: datetime,
    default_profile: str | None = None,
) -> TriageOptions:
    """Options from the given layers (a later layer's value wins over an earlier one's, absent
    values never win), with defaults; 400 for a bad value."""
    raw: dict[str, str | bool | None] = {}
    for layer in layers:
        raw.update({k: v for k, v in layer.items() if v is not None})
    as_of = _as_of(raw.get("asOf"), now)
    profile = raw.get("profile")
    if profile is None:
        profile = default_profile or kb.catalogue.default_profile
    if profile not in kb.catalogue.profiles:
        # the caller's value is not repeated (docs/interface.md "Errors")
        known = ", ".join(sorted(kb.catalogue.profiles))
        raise InputError.one("invalid", f"Unknown profile; known: {known}", "profile")
    mode = raw.get("return", "collection")
    for known_mode in RETURN_MODES:
        if mode == known_mode:
            return TriageOptions(as_of, str(profile), known_mode)
    raise InputError.one("invalid", f"return must be one of {', '.join(RETURN_MODES)}", "return")


def _as_of(text: str | bool | None, now: datetime) -> datetime:
    """The evaluation date in UTC (``now`` when not sent); 400 unless it is a FHIR dateTime, with
    a time zone when it has a time, that UTC can represent. Sent empty, it is a 400 too.

    ``0001-01-01T00:00:00+01:00`` is a valid FHIR dateTime but lies before year 1 in UTC.
    """
    if text is None:
        return now
    parsed = parse_option_datetime(text)
    try:
        if parsed is not None:
            return parsed.astimezone(UTC)
    except OverflowError:
        pass
    raise InputError.one(
        "invalid",
        "asOf is not a FHIR dateTime with a time zone, or a date (e.g. "
        "2026-11-24T10:00:00+01:00 or 2026-11-24), that UTC can represent",
        "asOf",
    )
