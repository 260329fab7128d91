"""FHIR date/dateTime/instant strings -> timezone-aware datetimes (partial dates allowed).

A date without time is taken at 00:00 UTC; ``YYYY`` and ``YYYY-MM`` are taken at the first day.
Strings that are not FHIR dates give ``None`` (validation has already reported them).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

__all__ = ["parse_date", "parse_datetime"]


def parse_datetime(value: object) -> datetime | None:
    """An aware datetime for a FHIR date, dateTime or instant string."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_date(value: object) -> date | None:
    """A date for a FHIR date string (partial dates at the first day)."""
    moment = parse_datetime(value)
    return moment.date() if moment else None
