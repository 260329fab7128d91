"""Builders of domain records for engine tests (no FHIR involved); on the pytest pythonpath."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count

from service.domain.knowledge import KnowledgeBase
from service.domain.model import Code, Demographics, Item, Origin, PatientRecord, Polarity

AS_OF = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
_serial = count()


def make_item(
    kb: KnowledgeBase,
    concept: str,
    *,
    value: float | None = None,
    polarity: Polarity = Polarity.PRESENT,
    origin: Origin = Origin.OBSERVATION,
    days_ago: float | None = None,
    until_days_ago: float | None = None,
    unit: str | None = None,
    comparator: str | None = None,
) -> Item:
    """An item carrying the first code of a concept."""
    entry = kb.valuesets.concepts[concept].codes[0]
    code = Code(kb.valuesets.systems[entry.system], entry.code)
    when = AS_OF - timedelta(days=days_ago) if days_ago is not None else None
    until = AS_OF - timedelta(days=until_days_ago) if until_days_ago is not None else None
    kind = origin.value.capitalize()
    return Item(
        f"{kind}/{concept}-{next(_serial)}", origin, (code,), None, polarity, value, when, until,
        unit=unit, comparator=comparator,
    )  # fmt: skip


def make_record(items: list[Item], *, age: int | None = 45) -> PatientRecord:
    """A patient aged ``age`` (completed years at AS_OF) with the given items."""
    birth = date(AS_OF.year - age, 1, 1) if age is not None else None
    return PatientRecord("Patient/p1", Demographics("Patient/p1", birth, "female"), tuple(items))
