"""Normalised input model: what the FHIR adapter hands to the engine.

The adapter (``service.fhir.ingest``) turns each usable FHIR element into an :class:`Item`: the
codes it carries, a value, its time and whether it asserts presence, absence or history. The
domain matches items to knowledge concepts (``service.domain.facts``); the engine never sees FHIR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "Code",
    "Demographics",
    "Dose",
    "DoseLine",
    "Item",
    "Origin",
    "PatientRecord",
    "Polarity",
    "QuestionnaireAnswers",
    "Supply",
]


class Polarity(StrEnum):
    """Whether an item asserts a finding, its screened absence, or past history."""

    PRESENT = "present"
    ABSENT = "absent"
    HISTORY = "history"


class Origin(StrEnum):
    """The kind of input an item came from (used by origin-aware operators)."""

    CONDITION = "condition"
    OBSERVATION = "observation"
    PROCEDURE = "procedure"
    MEDICATION = "medication"
    IMAGING = "imaging"
    DEVICE = "device"
    QUESTIONNAIRE = "questionnaire"


class Supply(StrEnum):
    """A medication known from its supply rather than a statement of use: it counts as current
    from ``Item.when`` to ``Item.until``, or, when the record gives no end, for a knowledge
    window after ``when`` (``parameters.toml``); after that it is history, and no note is due (a
    supply running out is not a record contradicting itself)."""

    DISPENSED = "dispensed"  # handed over: for its days' supply
    ADMINISTERED = "administered"  # given (and over): for a short while after


@dataclass(frozen=True, slots=True)
class Code:
    """A (system, code) pair as sent; ``system`` is the canonical URI."""

    system: str
    code: str


@dataclass(frozen=True, slots=True)
class DoseLine:
    """One dosage line as sent: the amount per administration (and its unit: a count of tablets,
    patches… when ``unit`` is None or a count unit, else e.g. ``mg``), how many administrations a
    day (None when the timing does not say), the line's ``sequence`` (lines with the same or no
    sequence apply together; different sequences one after another, e.g. a taper) and the most
    the line allows a day (``maxDosePerPeriod`` per day, in ``max_unit``)."""

    amount: float | None = None
    unit: str | None = None
    per_day: float | None = None
    sequence: int | None = None
    max_per_day: float | None = None
    max_unit: str | None = None


@dataclass(frozen=True, slots=True)
class Dose:
    """A medication's dosage as sent: its dosage lines, the strengths the product states
    (Medication.ingredient.strength) as ``(value, unit)`` per ingredient text, and the words of
    its route and form (each line's ``route``, the Medication's ``form``), if any."""

    lines: tuple[DoseLine, ...] = ()
    strengths: tuple[tuple[str, float, str], ...] = ()
    route: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One usable statement from the input, not yet matched to a concept."""

    ref: str
    origin: Origin
    codes: tuple[Code, ...]
    text: str | None = None
    polarity: Polarity = Polarity.PRESENT
    value: float | None = None
    when: datetime | None = None
    until: datetime | None = None
    recorded: datetime | None = None
    value_codes: tuple[Code, ...] = ()
    value_absent: str | None = None  # why an Observation carries no value (its dataAbsentReason)
    value_text: str | None = None
    unit: str | None = None  # of ``value``: a UCUM code, else the sender's unit text
    comparator: str | None = None  # "<", "<=", ">=" or ">": the true value lies beyond ``value``
    dose: Dose | None = None  # a medication's dosage, when the input gives one
    supply: Supply | None = None  # a medication dispensed or given: current for a while only


@dataclass(frozen=True, slots=True)
class Demographics:
    """What the engine may know of the patient itself."""

    ref: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    deceased: bool = False  # recorded as deceased (``deceasedBoolean`` true or a date)
    deceased_at: datetime | None = None  # when, if the record says (``deceasedDateTime``)


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """Everything the adapter found for one patient."""

    subject: str
    demographics: Demographics
    items: tuple[Item, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class QuestionnaireAnswers:
    """Item answers of one QuestionnaireResponse, for the domain's instrument scoring.

    ``answers`` holds (linkId, value) pairs: booleans, numbers, or the code of a valueCoding;
    ``dates`` the (linkId, moment) pairs of valueDate / valueDateTime answers (read by the
    recording forms, ``service.domain.forms``; no instrument scores a date).
    """

    ref: str
    questionnaire: str
    when: datetime | None
    answers: tuple[tuple[str, str | float | bool], ...]
    dates: tuple[tuple[str, datetime], ...] = ()
