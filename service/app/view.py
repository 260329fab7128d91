"""The decision trace as plain JSON, for people: the web page (``POST /ui/summary``) and the CLI
(``painpath triage --json-summary`` / ``painpath explain``).

Nothing here decides anything: it reads the engine's :class:`Assessment` (conclusions, rules fired,
evidence) and, for the symptom timeline, the dates of the input resources the engine used. Each
evidence item names its input resource by reference and by its place in the input Bundle
(``inputs``), so a reader can open the exact resource behind a conclusion.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from service.app.pipeline import Pipeline, TriageResult
from service.domain.assessment import Assessment, Conclusion, Finding, ProposedService
from service.domain.engine import supplied_until
from service.domain.explanation import patient_explanation
from service.domain.facts import Matcher
from service.domain.forms import questionnaire_title
from service.domain.knowledge import KnowledgeBase
from service.domain.model import PatientRecord, Polarity
from service.domain.open_questions import open_questions
from service.domain.trace import Evidence, RuleRef
from service.domain.vocabulary import STAGES, urgency_rank
from service.fhir.canonicals import canonical
from service.fhir.types import Json

__all__ = ["trace_view"]

_STAGE_DETAIL = {
    "injection": (("esi", "Epidural steroid injection"), ("mbb", "Medial branch block"))
}
_DAY_S = 86400.0


def _label(kb: KnowledgeBase, system: str, code: str | None) -> str:
    return kb.catalogue.displays.get(system, {}).get(code or "", code or "unknown")


def _form(kb: KnowledgeBase, questionnaire: str | None) -> dict[str, str] | None:
    """The PainPath Questionnaire that records a prompt (RULES §9): its id, title, canonical,
    where the page reads it and where ``$populate`` pre-fills it."""
    if questionnaire is None:
        return None
    read = f"/fhir/Questionnaire/{questionnaire}"
    return {
        "id": questionnaire,
        "title": questionnaire_title(kb, questionnaire),
        "url": canonical("Questionnaire", questionnaire),
        "read": read,
        "populate": f"{read}/$populate",
    }


def _rule(rule: RuleRef) -> Json:
    return {"id": rule.id, "version": rule.version, "source": rule.source, "url": rule.url}


def _evidence(kb: KnowledgeBase, items: tuple[Evidence, ...]) -> list[Json]:
    concepts = kb.valuesets.concepts
    return [
        {
            "ref": e.ref,
            "concept": e.concept,
            "title": concepts[e.concept].title if e.concept in concepts else e.concept,
            "code": e.code,
            "value": e.value,
            "fromText": e.lower_certainty,
        }
        for e in items
    ]


def _conclusion(kb: KnowledgeBase, system: str, found: Conclusion | None) -> Json | None:
    if found is None:
        return None
    return {
        "code": found.value,
        "display": _label(kb, system, found.value),
        "reason": found.reason,
        "rule": _rule(found.rule),
        "evidence": _evidence(kb, found.evidence),
    }


def _finding(kb: KnowledgeBase, item: Finding, title: str) -> Json:
    return {
        "code": item.code,
        "title": title,
        "reasons": list(item.reasons),
        "rules": [_rule(r) for r in item.rules],
        "evidence": _evidence(kb, item.evidence),
    }


def _proposal(kb: KnowledgeBase, item: ProposedService, *, held: bool) -> Json:
    return {
        "service": item.service,
        "title": kb.catalogue.services[item.service].title,
        "priority": item.priority,
        "held": held,  # routine care waiting for the urgent assessment (RULES §8)
        "reasons": list(item.reasons),
        "rules": [_rule(r) for r in item.rules],
        "evidence": _evidence(kb, item.evidence),
    }


def _headline(kb: KnowledgeBase, assessment: Assessment) -> str:
    """The first thing a reader sees: under a stat/urgent red flag the flag (RULES §8), else the
    pain type."""
    if assessment.hold is not None and assessment.red_flags:
        titles = [kb.catalogue.red_flags[f.code].title for f in assessment.red_flags]
        return f"Red flag: {'; '.join(titles)} - urgent assessment first"
    pain = assessment.value("pain-type")
    return f"Pain type: {kb.catalogue.displays['pain-type'].get(pain or '', pain or 'unknown')}"


def _stages(kb: KnowledgeBase, assessment: Assessment) -> list[Json]:
    recommended = assessment.value("recommended-stage")
    out = []
    for stage in STAGES:
        entry = _conclusion(kb, "eligibility", assessment.slots.get(f"stage:{stage}")) or {}
        entry.update(
            stage=stage,
            title=_label(kb, "treatment-stage", stage),
            recommended=stage == recommended,
            detail=[
                {"name": name, **(_conclusion(kb, "eligibility", assessment.slots[slot]) or {})}
                for slot, name in _STAGE_DETAIL.get(stage, ())
                if slot in assessment.slots
            ],
        )
        out.append(entry)
    return out


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _weeks(start: datetime, as_of: datetime) -> float:
    return round((as_of - _aware(start)).total_seconds() / _DAY_S / 7, 1)


def _timeline(
    kb: KnowledgeBase, matcher: Matcher, assessment: Assessment, record: PatientRecord | None
) -> Json:
    """Symptom duration (the onset the engine used) against the acute and chronic windows, with
    the treatments tried."""
    facts = [  # a dispensed or given drug spans its supply (``supplied_until``)
        (fact.concept, supplied_until(kb, fact.item))
        for item in (record.items if record else ())
        for fact in matcher.match(item)[0]
    ]
    onset = assessment.onset
    as_of = assessment.as_of
    treatments: dict[tuple[str, str], Json] = {}
    for concept, item in facts:
        if concept in kb.rules_file.treatments and item.polarity is not Polarity.ABSENT:
            if item.when is None:
                continue
            key = (item.ref, concept)
            until = min(_aware(item.until), as_of) if item.until else as_of
            treatments[key] = {
                "ref": item.ref,
                "concept": concept,
                "title": kb.valuesets.concepts[concept].title,
                "start": _aware(item.when).isoformat(),
                "end": until.isoformat(),
                "ongoing": item.until is None or _aware(item.until) >= as_of,
                "startWeeksAgo": _weeks(item.when, as_of),
                "endWeeksAgo": _weeks(until, as_of),
            }
    return {
        "asOf": as_of.isoformat(),
        "onset": onset.isoformat() if onset else None,
        "onsetRef": assessment.onset_ref,
        "durationWeeks": _weeks(onset, as_of) if onset else None,
        "acuteMaxWeeks": kb.param("acute_max_weeks"),
        "chronicMinWeeks": kb.param("chronic_min_weeks"),
        "trialWeeks": kb.param("trial_weeks"),
        "treatments": sorted(treatments.values(), key=lambda t: (t["start"], t["ref"])),
    }


def _patient(
    kb: KnowledgeBase, matcher: Matcher, assessment: Assessment, record: PatientRecord | None
) -> Json:
    notes = kb.catalogue.notes
    out: Json = {
        "subject": assessment.subject,
        "inScope": assessment.in_scope,
        "asOf": assessment.as_of.isoformat(),
        "profile": assessment.profile,
        "ruleset": assessment.ruleset_version,
        "notes": [
            {"code": n.code, "severity": notes[n.code].severity, "text": notes[n.code].text}
            for n in assessment.notes
        ],
        "firings": [
            {**_rule(f.rule), "fired": f.fired, "evidence": _evidence(kb, f.evidence)}
            for f in assessment.firings
        ],
    }
    out["explanation"] = _explanation(kb, assessment)  # None out of scope
    if not assessment.in_scope:
        return out
    flags = kb.catalogue.red_flags
    out.update(
        painType=_conclusion(kb, "pain-type", assessment.slots.get("pain-type")),
        certainty=_conclusion(kb, "neuropathic-certainty", assessment.slots.get("certainty")),
        headline=_headline(kb, assessment),
        # RULES §8: a stat/urgent red flag leads every view; routine care waits behind it
        urgent=assessment.hold is not None and bool(assessment.red_flags),
        whatWouldChange=[
            {
                "about": entry.about,
                "prompts": [
                    {
                        "text": p.text,
                        "system": kb.valuesets.systems[p.system],
                        "code": p.code,
                        "questionnaire": _form(kb, p.questionnaire),
                    }
                    for p in entry.prompts
                ],
            }
            for entry in open_questions(kb, assessment)
        ],
        medicationIssues=[
            {
                **_finding(kb, f, kb.catalogue.medication_issues[f.code].title),
                "severity": kb.catalogue.medication_issues[f.code].severity,
            }
            for f in assessment.medication_issues
        ],
        redFlags=[
            {**_finding(kb, f, flags[f.code].title), "severity": flags[f.code].severity}
            for f in assessment.red_flags
        ],
        stages=_stages(kb, assessment),
        recommended=_conclusion(kb, "treatment-stage", assessment.slots.get("recommended-stage")),
        proposals=[
            _proposal(kb, p, held=assessment.held(p.priority))
            for p in sorted(
                assessment.proposals, key=lambda p: (-urgency_rank(p.priority), p.service)
            )
        ],
        activities=[
            {
                **_finding(kb, a, kb.catalogue.activities[a.code].title),
                "doNotPerform": kb.catalogue.activities[a.code].do_not_perform,
            }
            for a in assessment.activities
        ],
        timeline=_timeline(kb, matcher, assessment, record),
    )
    return out


def _explanation(kb: KnowledgeBase, assessment: Assessment) -> Json | None:
    found = patient_explanation(kb, assessment)
    if found is None:
        return None
    return {
        "title": found.title,
        "sections": [
            {
                "key": s.key,
                "heading": s.heading,
                "paragraphs": list(s.paragraphs),
                "items": list(s.items),
            }
            for s in found.sections
        ],
        "draftNote": found.draft_note,
        "text": found.text(),
    }


def _age(birth: date | None, as_of: datetime) -> int | None:
    if birth is None:
        return None
    day = as_of.date()
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _name(patient: Json) -> str | None:
    """The patient's name as the record gives it: the official (else first) HumanName's text,
    else its prefix, given and family names."""
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    if not names:
        return None
    chosen = next((n for n in names if n.get("use") == "official"), names[0])
    if chosen.get("text"):
        return str(chosen["text"])
    parts = [*chosen.get("prefix", []), *chosen.get("given", []), chosen.get("family")]
    joined = " ".join(str(p) for p in parts if p)
    return joined or None


def _identifiers(patient: Json) -> list[Json]:
    """Each identifier as given: its type's text (or display) and value, with its system."""
    out = []
    for ident in patient.get("identifier") or []:
        if not isinstance(ident, dict) or not ident.get("value"):
            continue
        kind = ident.get("type") or {}
        label = kind.get("text") or next(
            (c.get("display") or c.get("code") for c in kind.get("coding") or []), None
        )
        out.append({"label": label, "value": ident["value"], "system": ident.get("system")})
    return out


def _person(record: PatientRecord | None, patients: dict[str, Json], as_of: datetime) -> Json:
    """Who the patient is, only as the record says: name, age, sex, identifiers."""
    demographics = record.demographics if record else None
    patient = patients.get(demographics.ref or "", {}) if demographics else {}
    return {
        "ref": demographics.ref if demographics else None,
        "name": _name(patient),
        "age": _age(demographics.birth_date if demographics else None, as_of),
        "birthDate": patient.get("birthDate"),
        "sex": patient.get("gender"),
        "identifiers": _identifiers(patient),
    }


def _codings(node: Any) -> list[Json]:
    """Every Coding (a dict with a ``code``) in a resource, depth first, in document order."""
    found: list[Json] = []
    if isinstance(node, dict):
        if "code" in node and isinstance(node["code"], str) and "system" in node:
            found.append(node)
        for value in node.values():
            found += _codings(value)
    elif isinstance(node, list):
        for value in node:
            found += _codings(value)
    return found


def _display(resource: Any, code: str | None) -> str | None:
    """The input's own text for the coded element that matched: the display of the Coding with
    that code, else the text of the resource's ``code`` (or ``medicationCodeableConcept``)."""
    if not isinstance(resource, dict):
        return None
    system, _, bare = (code or "").rpartition("|")
    for coding in _codings(resource):
        same = coding["code"] == bare and (not system or coding.get("system") == system)
        if bare and same and coding.get("display"):
            return str(coding["display"])
    for key in ("code", "medicationCodeableConcept", "valueCodeableConcept"):
        element = resource.get(key)
        if isinstance(element, dict):
            if element.get("text"):
                return str(element["text"])
            first = next((c for c in element.get("coding") or [] if c.get("display")), None)
            if first:
                return str(first["display"])
    return None


def _label_evidence(node: Any, inputs: Json, labels: dict[str, str]) -> None:
    """Give every evidence item of the view the input's own display text (``display``; the
    value-set title when the input has none) and the type of resource it came from; the value-set
    title stays as ``title``. ``labels`` collects each cited input's first label."""
    if isinstance(node, dict):
        if "ref" in node and "concept" in node and "fromText" in node:
            found = inputs.get(node["ref"]) or {}
            resource = found.get("resource")
            node["display"] = _display(resource, node.get("code")) or node["title"]
            node["resourceType"] = (
                resource.get("resourceType") if isinstance(resource, dict) else None
            )
            labels.setdefault(node["ref"], node["display"])
        for value in node.values():
            _label_evidence(value, inputs, labels)
    elif isinstance(node, list):
        for value in node:
            _label_evidence(value, inputs, labels)


def trace_view(pipeline: Pipeline, result: TriageResult) -> Json:
    """The assessments of one evaluation as JSON, with the input resources they cite (the run's
    own reading of the input and the pipeline's compiled matcher: nothing is read twice)."""
    kb, matcher, found = pipeline.kb, pipeline.matcher, result.found
    bundle, assessments = result.input_bundle, result.assessments
    records = {r.subject: r for r in found.records}
    entries = bundle.get("entry") or []
    inputs: Json = {}
    for ref, path in found.entry_paths.items():
        index = int(path.rsplit("[", 1)[1].rstrip("]"))
        if 0 <= index < len(entries):
            inputs[ref] = {"path": path, "resource": entries[index].get("resource")}
    people: dict[str, Json] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            people[f"Patient/{resource.get('id')}"] = resource
            if entry.get("fullUrl"):
                people[str(entry["fullUrl"])] = resource
    patients = []
    for assessment in assessments:
        record = records.get(assessment.subject)
        patient = _patient(kb, matcher, assessment, record)
        patient["person"] = _person(record, people, assessment.as_of)
        patients.append(patient)
    cited: dict[str, str] = {}
    _label_evidence(patients, inputs, cited)
    for ref, item in inputs.items():
        resource = item.get("resource")
        if isinstance(resource, dict):
            item["type"] = resource.get("resourceType")
            label = _name(resource) if item["type"] == "Patient" else _display(resource, None)
            item["label"] = label or cited.get(ref) or item["type"]
    return {"patients": patients, "inputs": inputs}
