"""The ``$triage`` use case: validated Bundle in, result Bundle out (CONTRACT.md).

    read body -> validate -> ingest (per patient) -> score questionnaires -> engine.evaluate
    -> emit resources -> result Bundle (collection, or transaction with conditional creates)

Shared by the HTTP API and the CLI. Patients are evaluated independently; entries that could
not be attributed to a patient are reported in a Bundle-level OperationOutcome. The evaluation
date and the input digest fix every generated id, so the output is reproducible.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from service.domain.assessment import Assessment
from service.domain.engine import evaluate
from service.domain.errors import NoPatientError
from service.domain.facts import Matcher, OutOfRange
from service.domain.instruments import score
from service.domain.knowledge import KnowledgeBase
from service.domain.model import PatientRecord
from service.fhir.emit import Emitter, make_id
from service.fhir.errors import InputError
from service.fhir.ingest import Ingested, Skip, ingest
from service.fhir.outcome import issue, operation_outcome
from service.fhir.relevance import Relevance
from service.fhir.systems import BASE
from service.fhir.timeparse import parse_datetime

__all__ = ["Engine", "TriageOptions", "TriageResult"]

Json = dict[str, Any]
log = logging.getLogger("painpath.triage")
RETURN_MODES = ("collection", "transaction")


@dataclass(frozen=True, slots=True)
class TriageOptions:
    """Evaluation options of one request."""

    as_of: datetime
    profile: str
    return_mode: str = "collection"


@dataclass(frozen=True, slots=True)
class TriageResult:
    """The result Bundle and the assessments behind it (for summaries and metrics)."""

    bundle: Json
    assessments: tuple[Assessment, ...]
    found: Ingested  # the input as read (records, entry paths) for views of this run


def resolve_options(
    kb: KnowledgeBase, raw: dict[str, str | bool | None], *, now: datetime
) -> TriageOptions:
    """Options from query/Parameters values, with defaults; 400 for a bad value."""
    as_of = _as_of(raw.get("asOf"), now)
    profile = str(raw.get("profile") or kb.catalogue.default_profile)
    if profile not in kb.catalogue.profiles:
        known = ", ".join(sorted(kb.catalogue.profiles))
        raise InputError.one("invalid", f"Unknown profile {profile!r}; known: {known}", "profile")
    mode = str(raw.get("return") or "collection")
    if mode not in RETURN_MODES:
        raise InputError.one(
            "invalid", f"return must be one of {', '.join(RETURN_MODES)}", "return"
        )
    return TriageOptions(as_of, profile, mode)


def _as_of(text: str | bool | None, now: datetime) -> datetime:
    """The evaluation date in UTC; 400 unless it is a FHIR dateTime that UTC can represent.

    ``0001-01-01T00:00:00+01:00`` is a valid FHIR dateTime but lies before year 1 in UTC.
    """
    if not isinstance(text, str) or not text:
        return now
    parsed = parse_datetime(text)
    try:
        if parsed is not None:
            return parsed.astimezone(UTC)
    except OverflowError:
        pass
    raise InputError.one("invalid", f"asOf {text!r} is not a FHIR dateTime", "asOf")


class Engine:
    """The knowledge base with its compiled matcher, shared across requests."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.matcher = Matcher(kb)
        self.relevance = Relevance(self.matcher)

    def triage(
        self,
        bundle: Json,
        options: TriageOptions,
        *,
        digest: str,
        selected: frozenset[int] | None = None,
    ) -> TriageResult:
        """Evaluate every patient in a validated Bundle (``selected``: the entries validation
        found relevant, ``TriageRequest.selected``; otherwise relevance is asked here)."""
        found = ingest(bundle, self.relevance, selected=selected)
        if not found.records:
            raise NoPatientError(_no_patient(found.skipped))
        emitter = Emitter(self.kb, digest, found.ref_types)
        entries: list[Json] = []
        assessments = []
        for record in found.records:
            assessment, problems = self._assess(record, found, options)
            assessments.append(assessment)
            entries += _patient_entries(emitter, assessment, found, problems)
        general = _general_outcome(found, digest, options)
        if general:
            entries.append(general)
        log.info(
            "triage evaluated patients=%d entries_in=%d entries_out=%d",
            len(found.records), len(bundle.get("entry", ())), len(entries),
        )  # fmt: skip
        result = _bundle(entries, digest, options)
        return TriageResult(result, tuple(assessments), found)

    def _assess(
        self, record: PatientRecord, found: Ingested, options: TriageOptions
    ) -> tuple[Assessment, list[str]]:
        items, problems = score(
            self.kb.scoring,
            found.answers.get(record.subject, []),
            systems=self.kb.valuesets.systems,
        )
        if items:
            record = PatientRecord(record.subject, record.demographics, record.items + tuple(items))
        assessment = evaluate(
            self.kb, record, as_of=options.as_of, profile=options.profile, matcher=self.matcher
        )
        return assessment, problems


def _no_patient(skipped: Sequence[Skip]) -> str:
    """Why no patient could be evaluated, naming the first entries that were skipped."""
    text = "The Bundle names no patient: no Patient entry and no subject"
    reasons = [f"{s.expression}: {s.reason}" for s in skipped[:5]]
    return text + (f" ({'; '.join(reasons)})" if reasons else "")


def digest_of(body: bytes, options: TriageOptions) -> str:
    """The input digest that seeds every generated id."""
    seed = body + f"|{options.as_of.isoformat()}|{options.profile}".encode()
    return hashlib.sha256(seed).hexdigest()


def _patient_entries(
    emitter: Emitter, assessment: Assessment, found: Ingested, problems: list[str]
) -> list[Json]:
    resources: list[Json] = []
    if assessment.in_scope:
        pain = emitter.pain_type(assessment)
        stages = emitter.stages(assessment, _urn(pain))
        requests = [emitter.service_request(assessment, p) for p in assessment.proposals]
        plan = emitter.care_plan(
            assessment, [_urn(r) for r in requests], [_urn(pain), _urn(stages)]
        )
        for request in requests:
            request["basedOn"] = [{"reference": _urn(plan)}]
        issues = [emitter.detected_issue(assessment, flag) for flag in assessment.red_flags]
        resources = [pain, stages, plan, *requests, *issues]
    outcome = _patient_outcome(emitter, assessment, found, problems)
    if resources:
        # the Provenance covers everything produced for the patient, its OperationOutcome too
        targets = [_urn(r) for r in [*resources, *([outcome] if outcome else [])]]
        resources.append(emitter.provenance(assessment, targets))
    if outcome:
        resources.append(outcome)
    return [{"fullUrl": _urn(r), "resource": r} for r in resources]


def _urn(resource: Json) -> str:
    return f"urn:uuid:{resource['id']}"


def _patient_outcome(
    emitter: Emitter, assessment: Assessment, found: Ingested, problems: list[str]
) -> Json | None:
    """The patient's OperationOutcome; each issue names the patient (an OperationOutcome has no
    subject element, and a Bundle may carry several patients)."""
    notes = emitter.kb.catalogue.notes
    issues = [
        issue(notes[n.code].severity, notes[n.code].code, notes[n.code].text, detail=n.code)
        for n in assessment.notes
    ]
    issues += [
        issue(
            s.severity, "informational", s.reason, expression=s.expression, detail="skipped-entry"
        )
        for s in found.skipped
        if s.patient == assessment.subject
    ]
    issues += [_rejected_value(emitter.kb, found, o) for o in assessment.out_of_range]
    issues += [
        issue("warning", "processing", p, detail="questionnaire-not-scored") for p in problems
    ]
    if not issues:
        return None
    for entry in issues:
        entry["diagnostics"] = f"{assessment.subject}: {entry['diagnostics']}"
    rid = make_id(emitter.digest, assessment.as_of.isoformat(), assessment.subject, "outcome")
    return operation_outcome(rid, issues)


def _rejected_value(kb: KnowledgeBase, found: Ingested, rejected: OutOfRange) -> Json:
    where = _resource_path(found, rejected.ref)
    if rejected.unit is None:
        text = f"{rejected.concept} value {rejected.value:g} is out of range; ignored"
        return issue("warning", "value", text, expression=where, detail="value-out-of-range")
    expected = kb.valuesets.concepts[rejected.concept].unit
    text = (
        f"{rejected.concept} value {rejected.value:g} in unit {rejected.unit!r} cannot be "
        f"converted to {expected!r}; ignored"
    )
    return issue("warning", "value", text, expression=where, detail="value-unit-not-understood")


def _resource_path(found: Ingested, ref: str) -> str | None:
    """FHIRPath of an input resource (``Bundle.entry[3].resource``), for ``issue.expression``."""
    where = found.entry_paths.get(ref)
    return f"{where}.resource" if where else None


def _general_outcome(found: Ingested, digest: str, options: TriageOptions) -> Json | None:
    issues = [
        issue("warning", "processing", s.reason, expression=s.expression, detail="skipped-entry")
        for s in found.skipped
        if s.patient is None
    ]
    if found.unused:
        parts = ", ".join(f"{name} ({count})" for name, count in sorted(found.unused.items()))
        issues.append(
            issue("information", "informational", f"Entries not used by the rules: {parts}",
                  detail="entries-not-used")
        )  # fmt: skip
    if not issues:
        return None
    outcome = operation_outcome(make_id(digest, options.as_of.isoformat(), "outcome"), issues)
    return {"fullUrl": _urn(outcome), "resource": outcome}


def _bundle(entries: list[Json], digest: str, options: TriageOptions) -> Json:
    bundle: Json = {
        "resourceType": "Bundle",
        "id": make_id(digest, options.as_of.isoformat(), "bundle"),
        "meta": {"tag": [{"system": f"{BASE}/CodeSystem/painpath-meta", "code": options.profile}]},
        "type": "collection",
        "timestamp": options.as_of.isoformat(),
        "entry": entries,
    }
    if options.return_mode == "transaction":
        _to_transaction(bundle)
    return bundle


def _to_transaction(bundle: Json) -> None:
    """Make the Bundle a transaction of conditional creates keyed on the result identifiers."""
    bundle["type"] = "transaction"
    del bundle["timestamp"]
    # OperationOutcome is not a storable resource: it stays in the default (collection) answer,
    # and the Provenance targets drop it so every urn:uuid reference resolves in the Bundle.
    dropped = {
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "OperationOutcome"
    }
    bundle["entry"] = [e for e in bundle["entry"] if e["fullUrl"] not in dropped]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Provenance":
            resource["target"] = [t for t in resource["target"] if t["reference"] not in dropped]
        entry["request"] = _write_request(resource)
    if not bundle["entry"]:
        del bundle["entry"]  # nothing to write (out of scope); FHIR JSON has no empty arrays


def _write_request(resource: Json) -> Json:
    """Conditional create on the result identifier; Provenance (no identifier) by PUT at its id.

    Both make a re-post of the same transaction idempotent.
    """
    identifiers = resource.get("identifier")
    if not identifiers:
        return {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    ident = identifiers[0]
    return {
        "method": "POST",
        "url": resource["resourceType"],
        "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
    }


def canonical_bytes(resource: Json) -> bytes:
    """Stable JSON bytes (sorted keys) of a resource, for digests."""
    return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
