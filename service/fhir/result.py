"""The result Bundle: emitted resources per patient, the OperationOutcomes, collection or
transaction (docs/interface.md "The result Bundle"; https://hl7.org/fhir/R4/bundle.html).

The emitter (``emit.py``) makes each resource; this module decides which resources a patient
gets, in which order, how they refer to each other (``urn:uuid`` fullUrls inside the Bundle) and
what the OperationOutcome tells about the input. Ids come from the digest that the evaluation
path computes, so the same input and evaluation date give the same Bundle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

import orjson

from service.domain.assessment import Assessment
from service.domain.facts import OutOfRange
from service.domain.knowledge import KnowledgeBase
from service.domain.open_questions import open_questions
from service.fhir.emit import Emitter, make_id
from service.fhir.errors import Problem
from service.fhir.ingest import Ingested, Skip
from service.fhir.narrative import describe
from service.fhir.outcome import issue, operation_outcome
from service.fhir.systems import BASE
from service.fhir.types import Json
from service.fhir.unrecognised import (
    MAX_PATHS,
    Group,
    Unrecognised,
    unassigned_findings,
    unrecognised,
)

__all__ = [
    "carried_inputs", "general_outcome", "incomplete_search", "no_patient_reason",
    "patient_entries", "result_bundle",
]  # fmt: skip


def no_patient_reason(skipped: Sequence[Skip]) -> str:
    """Why no patient could be evaluated, naming the first entries that were skipped."""
    text = "The Bundle names no patient: no Patient entry and no subject"
    reasons = [f"{s.expression}: {s.reason}" for s in skipped[:5]]
    return text + (f" ({'; '.join(reasons)})" if reasons else "")


def patient_entries(
    emitter: Emitter, assessment: Assessment, found: Ingested, problems: list[str]
) -> list[Json]:
    """The Bundle entries for one evaluated patient (results, Provenance, OperationOutcome)."""
    resources: list[Json] = []
    if assessment.in_scope:
        pain = emitter.pain_type(assessment)
        stages = emitter.stages(assessment, _urn(pain))
        requests = [
            emitter.service_request(assessment, p)
            for p in assessment.proposals
            if not assessment.held(p.priority)
        ]
        plan = emitter.care_plan(
            assessment, [_urn(r) for r in requests], [_urn(pain), _urn(stages)]
        )
        for request in requests:
            request["basedOn"] = [{"reference": _urn(plan)}]
        issues = [emitter.detected_issue(assessment, flag) for flag in assessment.red_flags]
        issues += [emitter.medication_issue(assessment, f) for f in assessment.medication_issues]
        resources = [pain, stages, plan, *requests, *issues]
        explanation = emitter.explanation(assessment, _urn(plan))
        if explanation is not None:
            resources.append(explanation)
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
    missed = unrecognised(found, assessment)
    # entries no patient could be found for may be this one's when the Bundle holds no other
    elsewhere = unassigned_findings(found) if len(found.records) == 1 else []
    issues = [
        _note(emitter.kb, n.code, missed, assessment.out_of_range, elsewhere)
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
    issues += [_not_recognised(group) for group in missed.groups]
    issues += [
        issue(
            "information", "informational", describe(entry, emitter.kb), detail="what-would-change"
        )
        for entry in open_questions(emitter.kb, assessment)
    ]
    if not issues:
        return None
    for entry in issues:
        entry["diagnostics"] = f"{assessment.subject}: {entry['diagnostics']}"
    rid = make_id(emitter.digest, assessment.as_of.isoformat(), assessment.subject, "outcome")
    return operation_outcome(rid, issues)


_SCREEN_NOTE = "red-flag-screen-not-documented"
_SCREEN_UNREAD = "red-flag-screen-unrecognised-entries"


_FINDING = frozenset({None, "boolean"})  # value types of findings (not scores or measures)


def _note(
    kb: KnowledgeBase,
    code: str,
    missed: Unrecognised,
    unread: Sequence[OutOfRange] = (),
    unassigned: Sequence[str] = (),
) -> Json:
    """A rule's note; an undocumented red-flag screen names the entries PainPath could not read
    that might have been a red-flag finding (RULES §0: never "not documented" because of coding),
    and ``unassigned``: entries that might have been one but no patient could be found for."""
    candidates: list[str] = []
    if code == _SCREEN_NOTE:
        candidates += [f"{g.rtype} {g.label}" for g in missed.findings()]
        candidates += [  # a finding recognised whose answer could not be read
            f"{o.concept} ({o.reason})"
            for o in unread
            if o.reason is not None and kb.valuesets.concepts[o.concept].value_type in _FINDING
        ]
        candidates += unassigned
    if candidates:
        code = _SCREEN_UNREAD
    note = kb.catalogue.notes[code]
    text = note.text
    if candidates:
        names = "; ".join(candidates[:MAX_PATHS])
        more = f" and {len(candidates) - MAX_PATHS} more" if len(candidates) > MAX_PATHS else ""
        text = f"{text} {names}{more}."
    return issue(note.severity, note.code, text, detail=code)


def _not_recognised(group: Group) -> Json:
    """One ``code-not-recognised`` issue for the entries that carry one unrecognised code."""
    count = len(group.paths)
    entries = f"{count} {group.rtype} entr{'y' if count == 1 else 'ies'}"
    if group.unresolved:  # a drug PainPath cannot see is a drug it cannot check: a warning
        text = (
            f"{entries} with {group.label}: the medication could not be read, so it was not "
            "checked for interactions or contraindications; send the Medication in the Bundle"
        )
        found = issue("warning", "not-found", text, detail="code-not-recognised")
    else:
        text = f"{entries} with {group.label}: no PainPath concept recognises this code; not used"
        found = issue("information", "code-invalid", text, detail="code-not-recognised")
    found["expression"] = group.paths[:MAX_PATHS]
    return found


def _rejected_value(kb: KnowledgeBase, found: Ingested, rejected: OutOfRange) -> Json:
    where = _resource_path(found, rejected.ref)
    if rejected.reason is not None or rejected.value is None:
        text = f"{rejected.concept}: {rejected.reason or 'no value'}; not used"
        severity = "information" if rejected.absent else "warning"
        return issue(severity, "value", text, expression=where, detail="value-not-read")
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


def incomplete_search(bundle: Json) -> str | None:
    """Why a searchset body is one page of a larger result (a ``next`` link, or a ``total``
    above the matches it holds): the record it carries may be incomplete. None otherwise."""
    if bundle.get("type") != "searchset":
        return None
    links = bundle.get("link")
    if isinstance(links, list) and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in links
    ):
        return "The searchset has a 'next' link: it is one page of a larger result"
    entries = bundle.get("entry")
    listed = entries if isinstance(entries, list) else []
    matches = sum(
        1
        for e in listed
        if isinstance(e, dict) and (e.get("search") or {}).get("mode", "match") == "match"
    )
    total = bundle.get("total")
    if isinstance(total, int) and total > matches:
        return f"The searchset's total is {total} but it holds {matches} matches"
    return None


def general_outcome(  # noqa: PLR0913 - what concerns no single patient, by keyword
    found: Ingested,
    digest: str,
    as_of: datetime,
    invalid: Sequence[Problem] = (),
    ignored: Sequence[Problem] = (),
    *,
    incomplete: str | None = None,
) -> Json | None:
    """The Bundle-level OperationOutcome entry: what concerns no single patient.

    ``invalid``: problems of input entries of types PainPath does not read, let through by
    lenient validation (``BundleCheck.warnings``), one ``warning`` issue each. ``ignored``:
    request parameters the operation does not take (``QueryOptions.ignored``), one ``warning``
    ``not-supported`` issue each. ``incomplete``: why the input is one page of a search
    (:func:`incomplete_search`); the patients were evaluated on what was sent.
    """
    issues = [
        issue("warning", "not-supported", p.diagnostics, expression=p.expression) for p in ignored
    ]
    issues += [
        issue("warning", "invalid", p.diagnostics, expression=p.expression, detail="entry-invalid")
        for p in invalid
    ]
    issues += [
        issue("warning", "processing", s.reason, expression=s.expression, detail="skipped-entry")
        for s in found.skipped
        if s.patient is None
    ]
    if incomplete is not None:
        text = f"{incomplete}; the record may be incomplete: evaluated on the entries sent only"
        issues.append(
            issue("warning", "incomplete", text, expression="Bundle", detail="search-incomplete")
        )
    if found.unused:
        parts = ", ".join(f"{name} ({count})" for name, count in sorted(found.unused.items()))
        issues.append(
            issue("information", "informational", f"Entries not used by the rules: {parts}",
                  detail="entries-not-used")
        )  # fmt: skip
    if not issues:
        return None
    outcome = operation_outcome(make_id(digest, as_of.isoformat(), "outcome"), issues)
    return {"fullUrl": _urn(outcome), "resource": outcome}


_ENTRY_REF = re.compile(r"^Bundle\.entry\[(\d+)\]$")


def _references(node: object) -> list[Json]:
    """Every Reference (a dict with a string ``reference``) in a JSON tree (one explicit stack,
    not a generator per level: a whole record's Provenance names hundreds of inputs)."""
    found: list[Json] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            if isinstance(item.get("reference"), str):
                found.append(item)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            stack.extend(v for v in item if type(v) is dict or type(v) is list)
    return found


def carried_inputs(entries: list[Json], found: Ingested, digest: str) -> list[Json]:
    """The input entries the result names only by a Bundle-local reference, to carry along.

    A ``urn:uuid`` (or ``urn:oid``) resolves only inside its own Bundle, so a result that refers
    to an input resource (the patient, the evidence) by such a fullUrl carries that input entry
    under the same fullUrl, and so on for what the carried resources refer to in the same way.
    An input with neither id nor fullUrl (named ``Bundle.entry[i]`` in the trace) gets a
    deterministic ``urn:uuid`` fullUrl here and the result's references are rewritten to it.
    References that already dangled in the input stay as they were (docs/interface.md).
    """
    by_url: dict[str, tuple[int, Json]] = {}
    local: dict[str, str] = {}
    for index, entry in enumerate(found.entries):  # one pass: a whole record has thousands
        resource = entry.get("resource")
        if type(resource) is not dict:
            continue
        url = entry.get("fullUrl")
        if not url:
            url = f"urn:uuid:{make_id(digest, 'entry', str(index))}"
            local[f"Bundle.entry[{index}]"] = url
            by_url[url] = (index, resource)  # a generated fullUrl wins over any input's
        elif isinstance(url, str) and url.startswith("urn:") and url not in by_url:
            by_url[url] = (index, resource)
    present = {e["fullUrl"] for e in entries}
    carried: dict[int, Json] = {}
    pending = [r for e in entries for r in _references(e["resource"])]
    while pending:
        ref = pending.pop()
        target = ref["reference"]
        if _ENTRY_REF.match(target) and target in local:
            target = ref["reference"] = local[target]
        if target in present or target not in by_url:
            continue
        index, resource = by_url[target]
        present.add(target)
        found_refs = _references(resource)
        if any(r["reference"] in local for r in found_refs):
            # the rewrite above must not reach the input: this one is carried as a copy (orjson,
            # ~10x deepcopy); the rest are carried as they are (nothing writes to a result)
            resource = orjson.loads(orjson.dumps(resource))
            found_refs = _references(resource)
        carried[index] = {"fullUrl": target, "resource": resource}
        pending += found_refs
    return [carried[index] for index in sorted(carried)]


def result_bundle(  # noqa: PLR0913 - the options of the answer, by keyword
    entries: list[Json],
    digest: str,
    *,
    as_of: datetime,
    profile: str,
    transaction: bool,
    carried: Sequence[Json] = (),
) -> Json:
    """The result Bundle: a collection, or a transaction of conditional creates; ``carried``
    (:func:`carried_inputs`) come last, so every reference in it resolves in it."""
    bundle: Json = {
        "resourceType": "Bundle",
        "id": make_id(digest, as_of.isoformat(), "bundle"),
        "meta": {"tag": [{"system": f"{BASE}/CodeSystem/painpath-meta", "code": profile}]},
        "type": "collection",
        "timestamp": as_of.isoformat(),
        "entry": [*entries, *carried],
    }
    if transaction:
        _to_transaction(bundle, {e["fullUrl"] for e in carried})
    return bundle


def _to_transaction(bundle: Json, carried: set[str]) -> None:
    """Make the Bundle a transaction of conditional creates keyed on the result identifiers;
    the carried inputs are created too, conditionally on their own identifier when they have
    one."""
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
        if entry["fullUrl"] in carried:
            entry["request"] = _carry_request(resource)
        else:
            entry["request"] = _write_request(resource)
    if not bundle["entry"]:
        del bundle["entry"]  # nothing to write (out of scope); FHIR JSON has no empty arrays


# Written by PUT at their deterministic id, not by a conditional create: a DetectedIssue
# identifier search is optional on servers (sekmet-fhir 0.1.1 has none and refuses the whole
# transaction), and the id already keys this result.
_PUT_TYPES = frozenset({"DetectedIssue"})


def _write_request(resource: Json) -> Json:
    """Conditional create on the result identifier; Provenance (no identifier) and DetectedIssue
    (``_PUT_TYPES``) by PUT at their id.

    Both make a re-post of the same transaction idempotent.
    """
    identifiers = resource.get("identifier")
    if not identifiers or resource["resourceType"] in _PUT_TYPES:
        return {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    ident = identifiers[0]
    return {
        "method": "POST",
        "url": resource["resourceType"],
        "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
    }


def _carry_request(resource: Json) -> Json:
    """A carried input (named only by ``urn:uuid``, so not on any server yet): a create,
    conditional on its first identifier with a system and a value, so a re-post matches it."""
    request: Json = {"method": "POST", "url": resource["resourceType"]}
    for ident in resource.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            key = f"{ident['system']}|{ident['value']}"
            request["ifNoneExist"] = f"identifier={quote(key, safe=':/|.-_~')}"
            break
    return request
