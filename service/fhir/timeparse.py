"""FHIR date/dateTime/instant strings -> timezone-aware datetimes (partial dates allowed).

A date without time is taken at 00:00 UTC; ``YYYY`` and ``YYYY-MM`` are taken at the first day.
Strings that are not FHIR dates give ``None`` (validation has already reported them).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

__all__ = ["age_days", "parse_date", "parse_datetime", "parse_option_datetime"]

# The R4 dateTime lexical form (https://hl7.org/fhir/R4/datatypes.html#dateTime): "If hours and
# minutes are specified, a time zone SHALL be populated".
_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|"
    r"3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|"
    r"1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)

# UCUM time units an Age may use (FHIR Age: a UCUM code for a time), in days: the UCUM
# definitions of the mean Julian year and month.
_DAYS = {"a": 365.25, "mo": 30.4375, "wk": 7.0, "d": 1.0, "h": 1 / 24, "min": 1 / 1440}


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


def parse_option_datetime(value: object) -> datetime | None:
    """An aware datetime for a request option (``asOf``), which must be an R4 date or dateTime
    as written: unlike :func:`parse_datetime` (dates inside resources, which validation has
    already checked), a time without a zone or surrounding whitespace gives None."""
    if not isinstance(value, str) or _DATETIME.fullmatch(value) is None:
        return None
    return parse_datetime(value)


def parse_date(value: object) -> date | None:
    """A date for a FHIR date string (partial dates at the first day)."""
    moment = parse_datetime(value)
    return moment.date() if moment else None


def age_days(value: float, unit: object) -> float | None:
    """An Age (value and UCUM time code) in days; None for a unit that is not a UCUM time or a
    negative or absurd age."""
    factor = _DAYS.get(unit) if isinstance(unit, str) else None
    if factor is None or not 0 <= value * factor <= 200 * 365.25:
        return None
    return value * factor
