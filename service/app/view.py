"""The decision trace as plain JSON, for people: the web page (``POST /ui/summary``) and the CLI
(``painpath triage --json-summary`` / ``painpath explain``).

Nothing here decides anything: it reads the engine's :class:`Assessment` (conclusions, rules fired,
evidence) and, for the symptom timeline, the dates of the input resources the engine used. Each
evidence item names its input resource by reference and by its place in the input Bundle
(``inputs``), so a reader can open the exact resource behind a conclusion.
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.app.pipeline import Pipeline, TriageResult
from service.domain.assessment import Assessment, Conclusion, Finding, ProposedService
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase
from service.domain.model import PatientRecord, Polarity
from service.domain.open_questions import open_questions
from service.domain.trace import Evidence, RuleRef
from service.domain.vocabulary import STAGES, urgency_rank
from service.fhir.types import Json

__all__ = ["trace_view"]

_STAGE_DETAIL = {
    "injection": (("esi", "Epidural steroid injection"), ("mbb", "Medial branch block"))
}
_DAY_S = 86400.0


def _label(kb: KnowledgeBase, system: str, code: str | None) -> str:
    return kb.catalogue.displays.get(system, {}).get(code or "", code or "unknown")


def _rule(rule: RuleRef) -> Json:
    return {"id": rule.id, "version": rule.version, "source": rule.source}


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
    facts = [
        (fact.concept, fact.item)
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
    if not assessment.in_scope:
        return out
    flags = kb.catalogue.red_flags
    out.update(
        painType=_conclusion(kb, "pain-type", assessment.slots.get("pain-type")),
        certainty=_conclusion(kb, "neuropathic-certainty", assessment.slots.get("certainty")),
        headline=_headline(kb, assessment),
        whatWouldChange=[
            {
                "about": entry.about,
                "prompts": [
                    {
                        "text": p.text,
                        "system": kb.valuesets.systems[p.system],
                        "code": p.code,
                        "questionnaire": p.questionnaire,
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
    return {
        "patients": [_patient(kb, matcher, a, records.get(a.subject)) for a in assessments],
        "inputs": inputs,
    }
