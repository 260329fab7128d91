"""Bundle -> per-patient records of :class:`~service.domain.model.Item` (docs/clinical-rules.md §0).

Works on the parsed JSON (already validated by ``service.fhir.validate``), never on models, so a
large ``Patient/$everything`` bundle costs one pass. Subjects resolve as FHIR resolves references
in a Bundle: an absolute reference (or ``urn:uuid:…``) to the Patient entry whose ``fullUrl`` it
is; a relative ``Patient/{id}`` against the base of the referencing entry's own RESTful fullUrl,
else by its id when exactly one patient of the Bundle has that id (two patients with the same id
on different servers keep their entries apart, and an entry that could be either's is skipped);
a subject given only as an ``identifier`` to the one Patient carrying it. In a Bundle without any
Patient entry, a ``Patient/{id}`` reference names a patient known only by reference (age
unknown), one per server when the same id is named on several; once the Bundle carries Patient
entries, a reference to any other patient is unresolved. Entries that cannot be attributed to a
patient, Patient entries nothing can refer to (neither ``id`` nor ``fullUrl``), a searchset's
``search.mode = outcome`` entry (relayed: the search may have been incomplete), and resources
PainPath ignores by status (refuted, entered-in-error, cancelled…) or, for a MedicationRequest, by
``intent`` (a proposal, plan, directive or option: not an order to take the drug), are reported as
:class:`Skip` items - nothing is dropped silently. Each patient's items feed the
engine; the reference -> resource-type map feeds the emitter (``addresses``, ``reasonReference``).

With ``relevant`` (``Engine.relevance``), a Condition or Observation none of whose codes or texts
can match a knowledge concept is attributed and status-checked like any other entry but yields
no items: the matcher could find no fact in it (``tests/fhir/test_ingest_relevance.py`` proves
the assessments identical), and a real record is mostly such vital signs and labs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.domain.model import (
    Code,
    Demographics,
    Dose,
    Item,
    Origin,
    PatientRecord,
    Polarity,
    QuestionnaireAnswers,
    Supply,
)
from service.fhir.dosage import days_supplied, dose_of
from service.fhir.systems import UCUM, normalise_code, normalise_system
from service.fhir.timeparse import age_days, parse_date, parse_datetime
from service.fhir.types import Json

__all__ = [
    "Ingested", "Skip", "ingest", "medication_catalogue", "medication_of", "medication_reference",
    "referenced_medication",
]  # fmt: skip


READ_TYPES = frozenset(
    {
        "Patient", "Condition", "Observation", "Procedure", "MedicationStatement",
        "MedicationRequest", "MedicationDispense", "MedicationAdministration",
        "DiagnosticReport", "ImagingStudy", "Device",
        "QuestionnaireResponse", "Medication", "CarePlan",
    }
)  # fmt: skip

_CONDITION_CURRENT = {"active", "recurrence", "relapse"}
_CONDITION_HISTORY = {"inactive", "remission", "resolved"}
_IGNORED_VERIFICATION = {"refuted", "entered-in-error"}
_IGNORED_STATUS: dict[str, frozenset[str]] = {
    "Observation": frozenset({"entered-in-error", "cancelled"}),
    "Procedure": frozenset({"entered-in-error", "not-done"}),
    "MedicationStatement": frozenset({"entered-in-error"}),
    "MedicationRequest": frozenset({"entered-in-error", "cancelled", "draft"}),
    # a dispense that did not happen (cancelled, declined) or was halted before hand-over
    "MedicationDispense": frozenset({"entered-in-error", "cancelled", "declined", "stopped"}),
    "MedicationAdministration": frozenset({"entered-in-error", "not-done"}),
    "DiagnosticReport": frozenset({"entered-in-error", "cancelled"}),
    "ImagingStudy": frozenset({"entered-in-error", "cancelled"}),
    "Device": frozenset({"entered-in-error"}),
    "QuestionnaireResponse": frozenset({"entered-in-error", "stopped"}),
    # a draft CarePlan is a proposal (PainPath's own results are drafts), not treatment given
    "CarePlan": frozenset({"entered-in-error", "draft"}),
}
# CarePlan.activity.detail.status: treatment that happened (or is happening) counts
_ACTIVITY_DONE = {"completed": Polarity.HISTORY, "stopped": Polarity.HISTORY}
_ACTIVITY_ONGOING = {"in-progress": Polarity.PRESENT, "on-hold": Polarity.PRESENT}
_COMPARATORS = frozenset({"<", "<=", ">=", ">"})  # Quantity.comparator (R4 quantity-comparator)
_HISTORY_STATUS = {"completed", "stopped", "inactive"}
# a MedicationDispense not handed over yet: the supply is on its way (preparation, in-progress)
# or paused (on-hold); with no date it is current, like an active request
_DISPENSE_PENDING = frozenset({"preparation", "in-progress", "on-hold"})
# a MedicationAdministration still going on (an infusion running, or paused)
_ADMINISTRATION_ONGOING = frozenset({"in-progress", "on-hold"})
# MedicationRequest.intent (R4 request-intent) that does not ask for the drug to be taken: a
# proposal or an option is a suggestion, a plan an intention without authorisation, a directive
# a patient's own instruction; none says the patient has or takes the drug
_NOT_ORDERED = frozenset({"proposal", "plan", "directive", "option"})


@dataclass(frozen=True, slots=True)
class Skip:
    """An entry (or part) PainPath did not use, and why."""

    expression: str
    reason: str
    patient: str | None = None
    severity: str = "warning"


@dataclass(slots=True)
class Ingested:
    """What ingest found: per-patient records, skips and unused entry counts."""

    records: list[PatientRecord]
    skipped: list[Skip]
    unused: Counter[str]
    ref_types: dict[str, str]
    answers: dict[str, list[QuestionnaireAnswers]] = field(default_factory=dict)
    entry_paths: dict[str, str] = field(default_factory=dict)  # ref -> "Bundle.entry[i]"
    # per patient: the entries handed to the readers (not ignored by status), in Bundle order,
    # as (ref, entry index); with ``entries`` the result reports those no concept recognised
    read: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    entries: list[Json] = field(default_factory=list)
    # the Bundle's Medication entries by every reference that may name them (``medication_of``)
    medications: dict[str, Json] = field(default_factory=dict)
    # the entries of types PainPath reads whose subject names no patient (skipped), by index
    unassigned: list[int] = field(default_factory=list)


# --- small JSON readers ------------------------------------------------------------------------
def _codes(concept: Any) -> tuple[tuple[Code, ...], str | None]:
    """A CodeableConcept's codes, and its words: the ``text`` and every coding's ``display``
    (the matcher reads the words only when no code is known: a text-only concept, a coding whose
    code is unknown but whose display names a finding, a medication's ingredient names)."""
    if not isinstance(concept, dict):
        return (), None
    codes: list[Code] = []
    words: list[str] = []
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        words.append(text)
    for coding in concept.get("coding", ()):
        if not isinstance(coding, dict):
            continue
        if coding.get("system") and coding.get("code"):
            system = normalise_system(coding["system"])
            codes.append(Code(system, normalise_code(system, str(coding["code"]))))
        display = coding.get("display")
        if isinstance(display, str) and display.strip() and display not in words:
            words.append(display)
    return tuple(codes), " | ".join(words) or None


def _first_code(concept: Any) -> str | None:
    if isinstance(concept, dict):
        for coding in concept.get("coding", ()):
            if isinstance(coding, dict) and coding.get("code"):
                return str(coding["code"])
    return None


def _moment(resource: Json, prefix: str) -> tuple[datetime | None, datetime | None]:
    """(start, end) of ``{prefix}DateTime``, ``{prefix}Instant`` or ``{prefix}Period``."""
    for suffix in ("DateTime", "Instant"):
        if isinstance(resource.get(prefix + suffix), str):
            return parse_datetime(resource[prefix + suffix]), None
    period = resource.get(prefix + "Period")
    if isinstance(period, dict):
        return parse_datetime(period.get("start")), parse_datetime(period.get("end"))
    return None, None


@dataclass(frozen=True, slots=True)
class _Value:
    number: float | None = None
    polarity: Polarity = Polarity.PRESENT
    moment: datetime | None = None
    unit: str | None = None
    comparator: str | None = None
    absent: str | None = None  # no value, and why (the dataAbsentReason)


def _value(holder: Json) -> _Value:
    """What a ``value[x]`` says (``absent``: why there is none, from a ``dataAbsentReason``)."""
    if "valueBoolean" in holder:
        return _Value(polarity=Polarity.PRESENT if holder["valueBoolean"] else Polarity.ABSENT)
    if "valueInteger" in holder:
        return _Value(float(holder["valueInteger"]))
    quantity = holder.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        comparator = quantity.get("comparator")
        return _Value(
            float(quantity["value"]),
            unit=_unit(quantity),
            comparator=comparator if comparator in _COMPARATORS else None,
        )
    if "valueDateTime" in holder:
        return _Value(moment=parse_datetime(holder["valueDateTime"]))
    if "dataAbsentReason" in holder:
        reason = _first_code(holder["dataAbsentReason"])
        return _Value(absent=f"dataAbsentReason {reason}" if reason else "dataAbsentReason")
    return _Value()


def _unit(quantity: Json) -> str | None:
    """A Quantity's UCUM code when it has one, else its unit text, else a code of another system."""
    code, unit, system = (quantity.get(k) for k in ("code", "unit", "system"))
    code = code.strip() if isinstance(code, str) and code.strip() else None
    if code and isinstance(system, str) and normalise_system(system) == UCUM:
        return code
    if isinstance(unit, str) and unit.strip():
        return unit.strip()
    return code


# --- per-type extractors -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Context:
    """What reading one resource may need beyond the resource itself."""

    medications: dict[str, Json]  # the Bundle's Medication entries by every alias
    birth: date | None  # the patient's, to place an onset given as an age


def _condition(ref: str, res: Json, ctx: _Context) -> Iterator[Item]:
    """A Condition; its ``abatement[x]`` is ``until`` (the engine reads an abatement on or before
    the evaluation date as history, whatever ``clinicalStatus`` says)."""
    clinical = _first_code(res.get("clinicalStatus"))
    polarity = Polarity.HISTORY if clinical in _CONDITION_HISTORY else Polarity.PRESENT
    codes, text = _codes(res.get("code"))
    onset, _ = _moment(res, "onset")
    if onset is None and ctx.birth is not None:
        onset = _at_age(res, "onset", ctx.birth)
    recorded = parse_datetime(res.get("recordedDate"))
    abated = _abatement(res, ctx.birth)
    yield Item(
        ref, Origin.CONDITION, codes, text, polarity, when=onset, until=abated, recorded=recorded
    )


# an abatement recorded without a date (``abatementString``, an age with no birth date, the
# STU3 ``abatementBoolean``): the condition abated at some time before it was recorded
_ABATED_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def _abatement(res: Json, birth: date | None) -> datetime | None:
    """When the Condition abated: ``abatementDateTime``, the end (else start) of
    ``abatementPeriod``, an ``abatementAge`` (or ``abatementRange``) placed by the birth date,
    or, for an abatement given without a usable date, ``_ABATED_LONG_AGO``."""
    start, end = _moment(res, "abatement")
    if end or start:
        return end or start
    if "abatementAge" in res or "abatementRange" in res:
        return (_at_age(res, "abatement", birth) if birth else None) or _ABATED_LONG_AGO
    string = res.get("abatementString")
    if res.get("abatementBoolean") is True or (isinstance(string, str) and string.strip()):
        return _ABATED_LONG_AGO
    return None


def _at_age(res: Json, prefix: str, birth: date) -> datetime | None:
    """``{prefix}Age`` (or the low end of ``{prefix}Range``; for an abatement the high end, when
    it is surely over) as a moment: birth date plus the age."""
    age = res.get(prefix + "Age")
    if age is None:
        age_range = res.get(prefix + "Range") or {}
        ends = ("high", "low") if prefix == "abatement" else ("low",)
        age = next((age_range[e] for e in ends if isinstance(age_range.get(e), dict)), None)
    if not isinstance(age, dict) or not isinstance(age.get("value"), int | float):
        return None
    days = age_days(float(age["value"]), age.get("code") or age.get("unit"))
    if days is None:
        return None
    try:
        return datetime(birth.year, birth.month, birth.day, tzinfo=UTC) + timedelta(days=days)
    except OverflowError:
        return None


def _observation(ref: str, res: Json, _ctx: _Context) -> Iterator[Item]:
    when, _ = _moment(res, "effective")
    when = when or parse_datetime(res.get("issued"))
    holders = [res, *[c for c in res.get("component", ()) if isinstance(c, dict)]]
    for holder in holders:
        value = _value(holder)
        codes, text = _codes(holder.get("code"))
        concept = holder.get("valueCodeableConcept")
        vcodes, vtext = _codes(concept)
        value_text = holder.get("valueString") if "valueString" in holder else vtext
        yield Item(
            ref, Origin.OBSERVATION, codes, text, value.polarity, value.number,
            value.moment or when, value_codes=vcodes, value_text=value_text, unit=value.unit,
            comparator=value.comparator, value_absent=value.absent,
        )  # fmt: skip
        if isinstance(concept, dict):
            # a finding carried as the value (code "clinical finding", value "sciatica")
            yield Item(ref, Origin.OBSERVATION, vcodes, vtext, Polarity.PRESENT, when=when)


def _span_item(ref: str, origin: Origin, res: Json, concept: Any, prefix: str) -> Item:
    start, end = _moment(res, prefix)
    status = res.get("status")
    polarity = Polarity.HISTORY if status in _HISTORY_STATUS else Polarity.PRESENT
    if status == "not-taken":
        polarity = Polarity.ABSENT
    if end is None and status in {"completed", "stopped"}:
        end = start
    codes, text = _codes(concept)
    return Item(ref, origin, codes, text, polarity, when=start, until=end)


def _procedure(ref: str, res: Json, _ctx: _Context) -> Iterator[Item]:
    yield _span_item(ref, Origin.PROCEDURE, res, res.get("code"), "performed")


def _medication_concept(res: Json, found: Json | None) -> Any:
    """The medication as one CodeableConcept: inline, or the Medication it references (a Bundle
    entry, or a resource ``contained`` in this one: ``#id``) with its code and the codings and
    texts of its ingredients (``Medication.ingredient.itemCodeableConcept``); when the reference
    names nothing in the request, its ``display`` read as text ("Tramadol 50 mg capsules").
    ``found``: the referenced Medication (``referenced_medication``), if any."""
    concept = res.get("medicationCodeableConcept")
    if concept is not None:
        return concept
    if found is not None:
        return _with_ingredients(found)
    holder = res.get("medicationReference")
    display = holder.get("display") if isinstance(holder, dict) else None
    return {"text": display} if isinstance(display, str) and display.strip() else None


def _with_ingredients(medication: Json) -> Any:
    """A Medication's code, with its ingredients' codings and texts added (a compounded or
    uncoded product is often known only by what it contains)."""
    code = medication.get("code")
    concepts = [code] if isinstance(code, dict) else []
    for ingredient in medication.get("ingredient", ()):
        if isinstance(ingredient, dict) and isinstance(ingredient.get("itemCodeableConcept"), dict):
            concepts.append(ingredient["itemCodeableConcept"])
    if len(concepts) <= 1:
        return code
    codings = [c for concept in concepts for c in concept.get("coding", ())]
    texts = [str(c["text"]) for c in concepts if isinstance(c.get("text"), str)]
    merged: Json = {"coding": codings} if codings else {}
    if texts:
        merged["text"] = " | ".join(texts)
    return merged


def _drug(res: Json, ctx: _Context) -> tuple[Any, Dose | None]:
    """A medication entry's drug as one CodeableConcept, and its dosage (the Medication it
    references resolved once for both)."""
    medication = referenced_medication(res, ctx.medications)
    return _medication_concept(res, medication), dose_of(res, medication)


def _medication(ref: str, res: Json, ctx: _Context) -> Iterator[Item]:
    concept, dose = _drug(res, ctx)
    if res.get("resourceType") == "MedicationRequest":
        item = _span_item(ref, Origin.MEDICATION, res, concept, "authoredOn")
        start = parse_datetime(res.get("authoredOn"))
        validity = (res.get("dispenseRequest") or {}).get("validityPeriod") or {}
        end = parse_datetime(validity.get("end"))
        yield Item(
            ref, item.origin, item.codes, item.text, item.polarity, when=start, until=end,
            dose=dose,
        )  # fmt: skip
        return
    item = _span_item(ref, Origin.MEDICATION, res, concept, "effective")
    yield replace(item, dose=dose)


def _dispense(ref: str, res: Json, ctx: _Context) -> Iterator[Item]:
    """A MedicationDispense: the drug is current from its hand-over (``whenHandedOver``, else
    ``whenPrepared``) for its ``daysSupply``; with no days' supply for the knowledge window
    (``Supply.DISPENSED``). A dispense with no date is current while not yet handed over, and
    otherwise history: when it was supplied is unknown."""
    concept, dose = _drug(res, ctx)
    codes, text = _codes(concept)
    handed = parse_datetime(res.get("whenHandedOver")) or parse_datetime(res.get("whenPrepared"))
    if handed is None:
        pending = res.get("status") in _DISPENSE_PENDING
        polarity = Polarity.PRESENT if pending else Polarity.HISTORY
        yield Item(ref, Origin.MEDICATION, codes, text, polarity, dose=dose)
        return
    days = days_supplied(res.get("daysSupply"))
    until = handed + timedelta(days=days) if days is not None else None
    yield Item(
        ref, Origin.MEDICATION, codes, text, when=handed, until=until, dose=dose,
        supply=Supply.DISPENSED,
    )  # fmt: skip


def _administration(ref: str, res: Json, ctx: _Context) -> Iterator[Item]:
    """A MedicationAdministration: current while in progress (or on hold) until its period's
    end; once over (completed, stopped part-way, unknown) for the knowledge window after the
    moment it was given (``Supply.ADMINISTERED``)."""
    concept, dose = _drug(res, ctx)
    codes, text = _codes(concept)
    start, end = _moment(res, "effective")
    if res.get("status") in _ADMINISTRATION_ONGOING:
        yield Item(ref, Origin.MEDICATION, codes, text, when=start, until=end, dose=dose)
        return
    given = end or start
    supply = Supply.ADMINISTERED if given is not None else None
    polarity = Polarity.PRESENT if given is not None else Polarity.HISTORY
    yield Item(ref, Origin.MEDICATION, codes, text, polarity, when=given, dose=dose, supply=supply)


def referenced_medication(res: Json, medications: dict[str, Json]) -> Json | None:
    """The Medication ``medicationReference`` names (contained or a Bundle entry), if any."""
    reference = (res.get("medicationReference") or {}).get("reference")
    if not isinstance(reference, str):
        return None
    if reference.startswith("#"):
        for inner in res.get("contained", ()):
            if (
                isinstance(inner, dict)
                and inner.get("resourceType") == "Medication"
                and inner.get("id") == reference[1:]
            ):
                return inner
        return None
    return medication_of(reference, medications)


def medication_of(reference: str, medications: dict[str, Json]) -> Json | None:
    """The Medication a literal reference names: as written (a fullUrl, ``Medication/id``), or
    as ``Medication/id`` when written absolute or versioned (``https://ehr/fhir/Medication/7``,
    ``Medication/7/_history/2``), the forms servers and Bulk Data exports use."""
    found = medications.get(reference)
    if found is None:
        tail = medication_reference(reference)
        found = medications.get(tail) if tail else None
    return found


def medication_reference(reference: str) -> str | None:
    """``Medication/id`` of a literal reference to a Medication, whatever its base or version."""
    path = reference.split("/_history/")[0].rstrip("/")
    head, _, rid = path.rpartition("/")
    if not rid or not (head == "Medication" or head.endswith("/Medication")):
        return None
    return f"Medication/{rid}"


def _care_plan(ref: str, res: Json, _ctx: _Context) -> Iterator[Item]:
    """Treatment documented as CarePlan activities (a physiotherapy or CBT programme with its
    period) counts like the matching Procedure (RULES §0, rule set 2027.1). Activities not
    started, scheduled, cancelled or of unknown status are not treatment given."""
    period = res.get("period")
    period = period if isinstance(period, dict) else {}
    plan_start, plan_end = parse_datetime(period.get("start")), parse_datetime(period.get("end"))
    for activity in res.get("activity", ()):
        detail = activity.get("detail") if isinstance(activity, dict) else None
        if not isinstance(detail, dict):
            continue
        status = str(detail.get("status"))
        polarity = _ACTIVITY_DONE.get(status) or _ACTIVITY_ONGOING.get(status)
        if polarity is None:
            continue
        start, end = _moment(detail, "scheduled")
        start, end = start or plan_start, end or plan_end
        if end is None and polarity is Polarity.HISTORY:
            end = start
        codes, text = _codes(detail.get("code"))
        yield Item(ref, Origin.PROCEDURE, codes, text, polarity, when=start, until=end)


def _report(ref: str, res: Json, _ctx: _Context) -> Iterator[Item]:
    when, _ = _moment(res, "effective")
    when = when or parse_datetime(res.get("issued"))
    codes, text = _codes(res.get("code"))
    yield Item(ref, Origin.OBSERVATION, codes, text, when=when)
    for conclusion in res.get("conclusionCode", ()):
        ccodes, ctext = _codes(conclusion)
        yield Item(ref, Origin.IMAGING, ccodes, ctext, when=when)


def _imaging_study(ref: str, res: Json, _ctx: _Context) -> Iterator[Item]:
    when = parse_datetime(res.get("started"))
    for concept in res.get("procedureCode", ()):
        codes, text = _codes(concept)
        yield Item(ref, Origin.OBSERVATION, codes, text, when=when)


def _device(ref: str, res: Json, _ctx: _Context) -> Iterator[Item]:
    polarity = Polarity.HISTORY if res.get("status") == "inactive" else Polarity.PRESENT
    codes, text = _codes(res.get("type"))
    yield Item(ref, Origin.DEVICE, codes, text, polarity)
    # what the device's labelling says of MRI (`safety`, e.g. "MR Conditional"), read by its
    # words: the codes sent there name no PainPath concept
    for safety in res.get("safety") or ():
        _, words = _codes(safety)
        if words:
            yield Item(ref, Origin.DEVICE, (), words, polarity)


_EXTRACTORS: dict[str, Callable[[str, Json, _Context], Iterator[Item]]] = {
    "Condition": _condition,
    "Observation": _observation,
    "Procedure": _procedure,
    "CarePlan": _care_plan,
    "MedicationStatement": _medication,
    "MedicationRequest": _medication,
    "MedicationDispense": _dispense,
    "MedicationAdministration": _administration,
    "DiagnosticReport": _report,
    "ImagingStudy": _imaging_study,
    "Device": _device,
}


# --- subject resolution ------------------------------------------------------------------------
# A RESTful fullUrl, ``[base]/[type]/[id]`` (optionally versioned): a relative reference in its
# resource resolves against that base (https://hl7.org/fhir/R4/bundle.html#references)
_RESTFUL = re.compile(
    r"^(?P<base>[A-Za-z][A-Za-z0-9+.\-]*://.+)/[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}"
    r"(?:/_history/[^/]+)?$"
)
_NO_PATIENT = "subject does not resolve to a patient"
_AMBIGUOUS = (
    "subject {reference} could name {count} patients of the Bundle (the same id on different "
    "servers) and the entry's fullUrl does not say which; not assigned to any of them"
)
_SHARED_IDENTIFIER = (
    "subject identifier {system}|{value} is carried by {count} patients of the Bundle; not "
    "assigned to any of them"
)


@dataclass(slots=True)
class _Patients:
    """The Bundle's patients, and which one a ``subject`` (or ``patient``) element names.

    A patient's key is its fullUrl, else ``Patient/{id}``. Its subject, which the results refer
    to it by and derive their ids from, is ``Patient/{id}`` (a ``urn:`` fullUrl stays itself),
    except when another patient of the Bundle has the same id: a patient sent with an absolute
    fullUrl is then that URL, so the same id on two servers is two patients with their own ids.
    """

    exact: dict[str, str] = field(default_factory=dict)  # fullUrl -> key
    claims: dict[str, list[str]] = field(default_factory=dict)  # Patient/{id} -> keys
    identifiers: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # system, value
    located: set[str] = field(default_factory=set)  # keys of patients with an absolute fullUrl
    subjects: dict[str, str] = field(default_factory=dict)
    demographics: dict[str, Demographics] = field(default_factory=dict)
    anonymous: list[str] = field(default_factory=list)
    # the first Patient entry of each key; a later one with other content is not used
    first: dict[str, Json] = field(default_factory=dict)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (entry path, key)
    # no Patient entry: ``Patient/{id}`` -> the absolute URLs its references name (None: a
    # relative reference with no base); set by ``known_by_reference``
    servers: dict[str, set[str | None]] | None = None

    def add(self, where: str, full_url: str | None, res: Json) -> None:
        rid = res.get("id")
        if not rid and not full_url:
            # Nothing can refer to it, and its results would have no subject to point at.
            self.anonymous.append(where)
            return
        key = full_url or f"Patient/{rid}"
        if key in self.first:  # the same patient again: a repeat is harmless, a conflict is not
            if self.first[key] != res:
                self.conflicts.append((where, key))
            return
        self.first[key] = res
        names = {f"Patient/{rid}"} if rid else set()
        if full_url:
            self.exact[full_url] = key
            if "/Patient/" in full_url:
                names.add("Patient/" + full_url.rsplit("/Patient/", 1)[1])
            if "://" in full_url:
                self.located.add(key)
        for name in names:
            self.claims.setdefault(name, []).append(key)
        for ident in res.get("identifier") or ():
            pair = _identifier(ident)
            if pair is not None and key not in self.identifiers.setdefault(pair, []):
                self.identifiers[pair].append(key)

    def settle(self) -> None:
        """Every patient's subject and demographics, once all Patient entries are known."""
        shared = {key for keys in self.claims.values() if len(keys) > 1 for key in keys}
        for key, res in self.first.items():
            rid = res.get("id")
            own = key.startswith("urn:") or not rid or (key in self.located and key in shared)
            subject = key if own else f"Patient/{rid}"
            self.subjects[key] = subject
            birth = parse_date(res.get("birthDate"))
            died = parse_datetime(res.get("deceasedDateTime"))
            deceased = res.get("deceasedBoolean") is True or died is not None
            self.demographics[key] = Demographics(subject, birth, res.get("gender"), deceased, died)

    def known_by_reference(self, entries: list[Json]) -> None:
        """A Bundle without Patient entries: its patients are those its entries refer to, one per
        id, or one per server when references name the same id on different servers."""
        self.servers = {}
        for entry in entries:
            res = entry.get("resource")
            if not isinstance(res, dict) or res.get("resourceType") not in READ_TYPES:
                continue
            holder = res.get("subject") or res.get("patient")
            reference = holder.get("reference") if isinstance(holder, dict) else None
            found = _patient_url(reference, entry.get("fullUrl"))
            if found is not None:
                self.servers.setdefault(found[0], set()).add(found[1])

    def resolve(self, holder: object, full_url: object) -> tuple[str | None, str]:
        """The key of the patient a ``subject`` (or ``patient``) names, or None and why not;
        ``full_url``: the referencing entry's, whose base a relative reference resolves against."""
        if not isinstance(holder, dict):
            return None, _NO_PATIENT
        reference = holder.get("reference")
        if isinstance(reference, str) and reference:
            return self._referenced(reference, full_url if isinstance(full_url, str) else None)
        pair = _identifier(holder.get("identifier"))
        keys = self.identifiers.get(pair, []) if pair is not None else []
        if len(keys) == 1:  # a logical reference to the one Patient that carries the identifier
            return keys[0], ""
        if pair is not None and keys:
            return None, _SHARED_IDENTIFIER.format(system=pair[0], value=pair[1], count=len(keys))
        return None, _NO_PATIENT

    def _referenced(self, reference: str, full_url: str | None) -> tuple[str | None, str]:
        target = reference.split("/_history/")[0].rstrip("/")
        if target in self.exact:  # the entry whose fullUrl it is (at any version)
            return self.exact[target], ""
        found = _patient_url(reference, full_url)
        if found is None:
            return None, _NO_PATIENT
        relative, url = found
        if self.servers is not None:
            return self._by_reference(reference, relative, url)
        if url is not None and url in self.exact:  # relative, against the entry's own base
            return self.exact[url], ""
        return self._by_id(reference, relative, absolute="://" in target)

    def _by_id(self, reference: str, relative: str, *, absolute: bool) -> tuple[str | None, str]:
        """The one patient ``Patient/{id}`` can name (an absolute URL that is no patient's
        fullUrl never names a patient sent with another absolute one); ambiguous otherwise."""
        claimants = self.claims.get(relative, [])
        if absolute:
            claimants = [key for key in claimants if key not in self.located]
        if len(claimants) == 1:
            return claimants[0], ""
        if claimants:
            return None, _AMBIGUOUS.format(reference=reference, count=len(claimants))
        return None, _NO_PATIENT  # the Bundle carries its patients; this one is not among them

    def _by_reference(
        self, reference: str, relative: str, url: str | None
    ) -> tuple[str | None, str]:
        """A patient known only by reference: ``Patient/{id}``, or its absolute URL when
        references name that id on more than one server."""
        servers = {s for s in (self.servers or {}).get(relative, ()) if s is not None}
        if len(servers) <= 1:
            key = relative
        elif url is not None:
            key = url
        else:
            return None, _AMBIGUOUS.format(reference=reference, count=len(servers))
        self.subjects.setdefault(key, key)
        return key, ""


def _identifier(value: object) -> tuple[str, str] | None:
    """(system, value) of an Identifier that has both."""
    if not isinstance(value, dict):
        return None
    system, code = value.get("system"), value.get("value")
    if isinstance(system, str) and system and isinstance(code, str) and code:
        return system, code
    return None


def _patient_url(reference: object, full_url: object) -> tuple[str, str | None] | None:
    """(``Patient/{id}``, the absolute URL the reference names, or None when it is relative and
    the referencing entry has no RESTful fullUrl) of a Patient reference; None otherwise."""
    if not isinstance(reference, str):
        return None
    target = reference.split("/_history/")[0].rstrip("/")
    relative = _relative_patient(target)
    if relative is None:
        return None
    if "://" in target:
        return relative, target
    match = _RESTFUL.match(full_url) if isinstance(full_url, str) else None
    return relative, f"{match['base']}/{relative}" if match else None


def _relative_patient(reference: str) -> str | None:
    """``Patient/{id}`` for a relative or absolute Patient reference; None otherwise."""
    if reference.startswith(("urn:", "#")):
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return f"Patient/{parts[-1]}"
    return None


def _ignored_reason(rtype: str, res: Json) -> str | None:
    if rtype == "Condition":
        verification = _first_code(res.get("verificationStatus"))
        if verification in _IGNORED_VERIFICATION:
            return f"Condition ignored: verificationStatus is {verification}"
        return None
    status = res.get("status")
    if status in _IGNORED_STATUS.get(rtype, ()):
        return f"{rtype} ignored: status is {status}"
    intent = res.get("intent")
    if rtype == "MedicationRequest" and intent in _NOT_ORDERED:
        return (
            f"MedicationRequest ignored: intent is {intent} (a suggestion or plan, not an order "
            "the patient takes the drug by)"
        )
    return None


def ingest(
    bundle: Json,
    relevant: Callable[[Json], bool] | None = None,
    *,
    selected: Collection[int] | None = None,
) -> Ingested:
    """Split a validated Bundle into per-patient records, reporting whatever is not used.

    ``selected``: the indexes of the entries ``relevant`` accepts, when validation has already
    asked it (``TriageRequest.selected``); it stands in for ``relevant``, asked once per entry.
    """
    listed = bundle.get("entry")
    entries = [e if isinstance(e, dict) else {} for e in listed] if isinstance(listed, list) else []
    patients = _Patients()
    for index, entry in enumerate(entries):
        res = entry.get("resource") or {}
        if res.get("resourceType") == "Patient":
            patients.add(f"Bundle.entry[{index}]", entry.get("fullUrl"), res)
    patients.settle()
    if not patients.first and not patients.anonymous:
        patients.known_by_reference(entries)
    medications = medication_catalogue(entries)
    keep: Callable[[int, Json], bool] | None = None
    if selected is not None:
        keep = lambda index, _res: index in selected  # noqa: E731
    elif relevant is not None:
        keep = lambda _index, res: relevant(res)  # noqa: E731
    return _collect(entries, patients, _Readers(medications, keep))


def medication_catalogue(entries: list[Json]) -> dict[str, Json]:
    """The Bundle's Medication entries by every reference that may name them (fullUrl and
    ``Medication/id``)."""
    medications: dict[str, Json] = {}
    for entry in entries:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Medication":
            for alias in _aliases(entry, res):
                medications[alias] = res
    return medications


def _aliases(entry: Json, res: Json) -> list[str]:
    rid = res.get("id")
    return [a for a in (entry.get("fullUrl"), f"{res['resourceType']}/{rid}" if rid else None) if a]


def _ref_of(index: int, entry: Json, res: Json) -> str:
    rid = res.get("id")
    full_url = entry.get("fullUrl")
    if full_url and (full_url.startswith("urn:") or not rid):
        return str(full_url)
    return f"{res['resourceType']}/{rid}" if rid else f"Bundle.entry[{index}]"


def _collect(entries: list[Json], patients: _Patients, readers: _Readers) -> Ingested:
    items: dict[str, list[Item]] = {key: [] for key in patients.subjects}
    answers: dict[str, list[QuestionnaireAnswers]] = {}
    skipped = [Skip(where, _ANONYMOUS) for where in patients.anonymous]
    skipped += [
        Skip(where, _CONFLICT.format(subject=patients.subjects[key]), patients.subjects[key])
        for where, key in patients.conflicts
    ]
    unused: Counter[str] = Counter()
    ref_types: dict[str, str] = {}
    entry_paths: dict[str, str] = {}
    read: dict[str, list[tuple[str, int]]] = {}
    unassigned: list[int] = []
    for index, entry in enumerate(entries):
        res = entry.get("resource")
        if not isinstance(res, dict):
            skipped.append(
                Skip(f"Bundle.entry[{index}]", "entry has no resource (request-only entry)")
            )
            continue
        rtype = res["resourceType"]
        if rtype in {"Patient", "Medication"}:
            continue
        if rtype == "OperationOutcome" and _search_mode(entry) == "outcome":
            skipped.append(Skip(f"Bundle.entry[{index}]", _search_outcome(res)))
            continue
        if rtype not in READ_TYPES:  # most of a whole record (claims, encounters): counted only
            unused[rtype] += 1
            continue
        where = f"Bundle.entry[{index}]"
        key, why = patients.resolve(res.get("subject") or res.get("patient"), entry.get("fullUrl"))
        if key is None:
            skipped.append(Skip(where, f"{rtype}: {why}"))
            unassigned.append(index)
            continue
        items.setdefault(key, [])
        ref = _ref_of(index, entry, res)
        ref_types[ref] = rtype
        entry_paths[ref] = where
        reason = _ignored_reason(rtype, res)
        if reason:
            skipped.append(Skip(where, reason, patients.subjects[key], "information"))
        elif rtype == "QuestionnaireResponse":
            answers.setdefault(key, []).append(_answers(ref, res))
        else:
            birth = patients.demographics.get(key, _UNKNOWN).birth_date
            items[key].extend(readers.items(index, ref, res, birth))
            read.setdefault(patients.subjects[key], []).append((ref, index))
    records = [
        PatientRecord(
            subject=patients.subjects[key],
            demographics=patients.demographics.get(key, Demographics(patients.subjects[key])),
            items=tuple(found),
        )
        for key, found in sorted(items.items(), key=lambda pair: patients.subjects[pair[0]])
    ]
    answered = {patients.subjects[k]: v for k, v in answers.items()}
    return Ingested(
        records, skipped, unused, ref_types, answered, entry_paths, read, entries,
        readers.medications, unassigned,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Readers:
    """The extractors, and which entries they may skip."""

    medications: dict[str, Json]
    # (entry index, resource): may a rule use it? Relevance only ever says no to a Condition or
    # Observation whose codes and text no concept matches.
    keep: Callable[[int, Json], bool] | None

    def items(self, index: int, ref: str, res: Json, birth: date | None) -> Iterable[Item]:
        if self.keep is not None and not self.keep(index, res):
            return ()
        return _EXTRACTORS[res["resourceType"]](ref, res, _Context(self.medications, birth))


_UNKNOWN = Demographics()
_ANONYMOUS = "Patient has neither id nor fullUrl: nothing can refer to it; not evaluated"
_CONFLICT = (
    "Patient {subject} appears again with different content; the first entry of it is used, "
    "this one is not"
)


def _search_mode(entry: Json) -> str | None:
    search = entry.get("search")
    return search.get("mode") if isinstance(search, dict) else None


def _search_outcome(res: Json) -> str:
    """The issues a searchset's outcome entry reports (e.g. truncated results), in one line."""
    issues = [
        f"{i.get('severity')} {i.get('code')}"
        + (f": {i['diagnostics']}" if "diagnostics" in i else "")
        for i in res.get("issue", ())
        if isinstance(i, dict)
    ]
    return "Search outcome from the source (the input may be incomplete): " + "; ".join(issues)


def _answers(ref: str, res: Json) -> QuestionnaireAnswers:
    found: list[tuple[str, str | float | bool]] = []
    dates: list[tuple[str, datetime]] = []

    def walk(groups: list[Json]) -> None:
        for item in groups:
            for answer in item.get("answer", ()):
                value = _answer_value(answer)
                moment = parse_datetime(answer.get("valueDateTime", answer.get("valueDate")))
                if value is not None:
                    found.append((str(item.get("linkId")), value))
                elif moment is not None:
                    dates.append((str(item.get("linkId")), moment))
                walk(answer.get("item", ()))
            walk(item.get("item", ()))

    walk(res.get("item", []))
    return QuestionnaireAnswers(
        ref,
        str(res.get("questionnaire", "")),
        parse_datetime(res.get("authored")),
        tuple(found),
        tuple(dates),
    )


def _answer_value(answer: Json) -> str | float | bool | None:
    if "valueBoolean" in answer:
        return bool(answer["valueBoolean"])
    for key in ("valueInteger", "valueDecimal"):
        if key in answer:
            return float(answer[key])
    coding = answer.get("valueCoding")
    if isinstance(coding, dict) and coding.get("code"):
        return str(coding["code"])
    return None


def _unused_note(unused: Counter[str]) -> str | None:
    if not unused:
        return None
    parts = ", ".join(f"{name} ({count})" for name, count in sorted(unused.items()))
    return f"Entries not used by the rules: {parts}"
