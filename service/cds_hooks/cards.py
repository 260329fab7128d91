"""CDS Hooks 2.0 cards rendered from the assessment and the result resources (pure; no web code).

patient-view: one card per evaluated patient with something to say - ``critical`` when a red flag
calls for stat/asap/urgent action, ``warning`` for a routine red flag (inflammatory back pain),
``info`` for routine proposals. Its suggestion creates the result resources exactly as ``$triage``
emits them (the pain-type and stage Observations the CarePlan cites, the CarePlan and its
ServiceRequests), so the references inside the suggestion resolve.

order-select / order-sign: one ``warning`` card per draft order the rules contradict, with a
``delete`` (or, for MRI with an MRI-unsafe implant, an ``update`` to CT) suggestion on the draft;
an urgent red flag is also shown (``critical``), the routine plan is not (it belongs to
patient-view). No ``systemActions``: every PainPath action needs a clinician's acceptance.

Card and suggestion uuids are UUIDv5 of the patient, the card kind, the rules that fired and the
evaluation date - not of ``hookInstance`` - so the same advice keeps the same uuid across hooks and
feedback can be matched to it. Specification: https://cds-hooks.hl7.org/2.0/#cds-service-response.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from service.app.pipeline import Pipeline, TriageResult
from service.domain.assessment import Assessment, Finding
from service.domain.engine import match_facts
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Code, Polarity
from service.fhir.emit import make_id
from service.fhir.systems import cs, normalise_code, normalise_system

__all__ = [
    "OVERRIDE_CODES",
    "OVERRIDE_SYSTEM",
    "SUMMARY_MAX",
    "assessment_of",
    "order_cards",
    "override_reasons",
    "patient_cards",
    "red_flag_urgency",
]

Json = dict[str, Any]
SUMMARY_MAX = 139  # "<140-character summary"
OVERRIDE_CODES = "cds-override-reason"  # catalogue.toml [displays.cds-override-reason]
OVERRIDE_SYSTEM = cs(OVERRIDE_CODES)
_URGENT = {"stat": 3, "asap": 2, "urgent": 1}
_RANK = {"routine": 0, **_URGENT}
_LOINC = "http://loinc.org"
_SNOMED = "http://snomed.info/sct"
# the MRI and CT members of valuesets.toml ``lumbar-imaging`` (LOINC and SNOMED CT)
_MRI = {(_LOINC, c) for c in ("30679-5", "24968-0", "24967-2", "30678-7", "36111-3")} | {
    (_SNOMED, "241648005")
}
_CT = {(_LOINC, c) for c in ("30620-9", "24963-1", "24964-9", "36402-6", "24965-6")} | {
    (_SNOMED, "241580002")
}
_SERVICE_KIND = {"mri-lumbar": "mri", "ct-lumbar": "ct", "epidural-steroid-injection": "epidural"}
_CONCEPT_KIND = {"epidural-injection": "epidural", "gabapentinoid": "gabapentinoid"}
_TEXT_KIND = (
    (re.compile(r"\b(mri|mr)\b", re.I), "mri"),
    (re.compile(r"\bct\b", re.I), "ct"),
    (re.compile(r"\bepidural\b", re.I), "epidural"),
    (re.compile(r"\b(gabapentin|pregabalin)\b", re.I), "gabapentinoid"),
)


def _fit(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _lower_first(title: str) -> str:
    """``Referral to…`` -> ``referral to…``; ``MRI lumbar…`` stays (an acronym)."""
    word = title.split(" ", 1)[0]
    return title if word.isupper() else title[:1].lower() + title[1:]


def _md(text: str) -> str:
    """Text safe inside Markdown (no emphasis, links or tables by accident)."""
    return re.sub(r"([\\`*_\[\]|<>#])", r"\\\1", text)


def assessment_of(assessments: Iterable[Assessment], patient_id: str) -> Assessment | None:
    """The assessment of ``Patient/{patient_id}``."""
    found = list(assessments)
    for assessment in found:
        if assessment.subject.rstrip("/").endswith(f"Patient/{patient_id}"):
            return assessment
    return found[0] if len(found) == 1 else None


def red_flag_urgency(assessment: Assessment, flag: Finding) -> str:
    """The highest priority of the proposals the red flag's rules made (``routine`` if none)."""
    rules = set(flag.rules)
    found = [p.priority for p in assessment.proposals if rules & set(p.rules)]
    return max(found, key=_RANK.__getitem__, default="routine")


def _indicator(assessment: Assessment) -> str:
    urgencies = [red_flag_urgency(assessment, f) for f in assessment.red_flags]
    if any(u in _URGENT for u in urgencies):
        return "critical"
    return "warning" if urgencies else "info"


@dataclass(frozen=True, slots=True)
class _Ctx:
    kb: KnowledgeBase
    assessment: Assessment

    def source(self) -> Json:
        profile = self.kb.catalogue.profiles[self.assessment.profile]
        return {"label": profile.guideline, "url": profile.url}

    def label(self, system: str, code: str | None) -> str:
        return self.kb.catalogue.displays.get(system, {}).get(code or "", code or "unknown")

    def uuid(self, *parts: str) -> str:
        fired = sorted({f.rule.id for f in self.assessment.firings if f.fired})
        return make_id(
            "cds-card", self.assessment.subject, self.assessment.profile,
            self.assessment.as_of.date().isoformat(), *parts, *fired,
        )  # fmt: skip


def override_reasons(kb: KnowledgeBase) -> list[Json]:
    """The cards' ``overrideReasons``: the catalogue's cds-override-reason codes (published as
    the CodeSystem of the same name by the conformance package)."""
    reasons = kb.catalogue.displays[OVERRIDE_CODES]
    return [{"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in reasons.items()]


# --- patient-view --------------------------------------------------------------------------------
def patient_cards(kb: KnowledgeBase, assessment: Assessment, result_bundle: Json) -> list[Json]:
    """The patient-view cards (none when there is nothing to say)."""
    if not assessment.in_scope:
        return []
    nothing = (
        not assessment.red_flags
        and not assessment.proposals
        and assessment.value("pain-type") in {None, "indeterminate"}
    )
    if nothing:
        return []
    ctx = _Ctx(kb, assessment)
    uid = ctx.uuid("patient-view")
    card: Json = {
        "uuid": uid,
        "summary": _patient_summary(ctx),
        "indicator": _indicator(assessment),
        "detail": patient_detail(kb, assessment),
        "source": ctx.source(),
    }
    resources = _plan_resources(result_bundle, assessment.subject)
    if resources:
        card["suggestions"] = [
            {
                "label": "Create the PainPath care plan and service requests (proposals)",
                "uuid": make_id(uid, "create-plan"),
                "isRecommended": True,
                "actions": [_create(ctx, r) for r in resources],
            }
        ]
        card["selectionBehavior"] = "at-most-one"
    card["overrideReasons"] = override_reasons(kb)
    return [card]


def _patient_summary(ctx: _Ctx) -> str:
    assessment = ctx.assessment
    flags = sorted(
        assessment.red_flags,
        key=lambda f: (-_RANK[red_flag_urgency(assessment, f)], f.code),
    )
    if flags:
        top = flags[0]
        title = ctx.kb.catalogue.red_flags[top.code].title
        urgency = red_flag_urgency(assessment, top)
        more = f" (+{len(flags) - 1} more)" if len(flags) > 1 else ""
        services = [
            _lower_first(ctx.kb.catalogue.services[p.service].title)
            for p in assessment.proposals
            if set(p.rules) & set(top.rules)
        ]
        action = f": {urgency} {' and '.join(services)}" if services else ""
        return _fit(f"Red flag{more}: {title}{action}")
    pain = ctx.label("pain-type", assessment.value("pain-type"))
    certainty = ctx.label("neuropathic-certainty", assessment.value("certainty")).lower()
    stage = ctx.label("treatment-stage", assessment.value("recommended-stage")).lower()
    return _fit(f"{pain} (neuropathic component {certainty}); recommended stage: {stage}")


def _why(conclusion: Any) -> str:
    return f"{_md(conclusion.reason)} _({_md(conclusion.rule.id)})_"


def patient_detail(kb: KnowledgeBase, assessment: Assessment) -> str:
    """GitHub-flavoured Markdown explanation rendered from the trace."""
    ctx = _Ctx(kb, assessment)
    lines = [*_typing_lines(ctx), *_flag_lines(ctx), *_stage_lines(ctx), *_plan_lines(ctx)]
    profile = kb.catalogue.profiles[assessment.profile]
    lines.append(
        f"\n_Rule set {assessment.ruleset_version}, profile {_md(profile.title)}, evaluated "
        f"{assessment.as_of.date().isoformat()}. PainPath proposes; a clinician decides._"
    )
    return "\n".join(lines)


def _typing_lines(ctx: _Ctx) -> list[str]:
    lines = []
    pain, certainty = ctx.assessment.slots.get("pain-type"), ctx.assessment.slots.get("certainty")
    if pain is not None:
        lines.append(f"**Pain type: {_md(ctx.label('pain-type', pain.value))}** - {_why(pain)}")
    if certainty is not None:
        label = ctx.label("neuropathic-certainty", certainty.value)
        lines.append(f"\n**Neuropathic component: {label}** - {_why(certainty)}")
    return lines


def _flag_lines(ctx: _Ctx) -> list[str]:
    if not ctx.assessment.red_flags:
        return []
    lines = ["\n**Red flags**\n"]
    for flag in ctx.assessment.red_flags:
        title = ctx.kb.catalogue.red_flags[flag.code].title
        urgency = red_flag_urgency(ctx.assessment, flag)
        lines.append(f"- **{_md(title)}** ({urgency}): {_md(' '.join(flag.reasons))}")
    return lines


def _stage_lines(ctx: _Ctx) -> list[str]:
    lines = ["\n**Treatment stages**\n\n| Stage | Eligibility | Why |\n|---|---|---|"]
    for stage in ("conservative", "injection", "surgical-referral"):
        c = ctx.assessment.slots.get(f"stage:{stage}")
        if c is not None:
            lines.append(
                f"| {ctx.label('treatment-stage', stage)} | {ctx.label('eligibility', c.value)} "
                f"| {_why(c)} |"
            )
    recommended = ctx.assessment.value("recommended-stage")
    if recommended:
        lines.append(f"\n**Recommended stage: {ctx.label('treatment-stage', recommended)}**")
    return lines


def _plan_lines(ctx: _Ctx) -> list[str]:
    lines = []
    if ctx.assessment.proposals:
        lines.append("\n**Proposed**\n")
        for p in ctx.assessment.proposals:
            title = ctx.kb.catalogue.services[p.service].title
            lines.append(f"- {_md(title)} ({p.priority}): {_md(' '.join(p.reasons))}")
    if ctx.assessment.activities:
        lines.append("\n**Care plan activities**\n")
        for a in ctx.assessment.activities:
            definition = ctx.kb.catalogue.activities[a.code]
            prefix = "Do not: " if definition.do_not_perform else ""
            lines.append(f"- {prefix}{_md(definition.title)}")
    return lines


def _plan_resources(bundle: Json, subject: str) -> list[Json]:
    """The patient's pain-type and stage Observations, CarePlan and ServiceRequests, as emitted."""
    wanted = {"Observation", "CarePlan", "ServiceRequest"}
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] in wanted
        and (e["resource"].get("subject") or {}).get("reference") == subject
    ]


def _create(ctx: _Ctx, resource: Json) -> Json:
    rtype = resource["resourceType"]
    if rtype == "ServiceRequest":
        what = f"{resource['code'].get('text', 'service request')} ({resource['priority']})"
    elif rtype == "CarePlan":
        what = str(resource.get("title", "care plan"))
    else:
        what = str(resource["code"].get("text") or resource["code"]["coding"][0].get("display"))
    return {"type": "create", "description": f"Create {rtype}: {what}", "resource": resource}


# --- order-select / order-sign -------------------------------------------------------------------
def _codes_of(order: Json) -> tuple[list[Code], str]:
    concepts = []
    if order["resourceType"] == "MedicationRequest":
        concepts.append(order.get("medicationCodeableConcept"))
    else:
        concepts.append(order.get("code"))
        concepts += order.get("category") or []
    codes, texts = [], []
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        texts.append(str(concept.get("text") or ""))
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and coding.get("system") and coding.get("code"):
                system = normalise_system(str(coding["system"]))
                codes.append(Code(system, normalise_code(system, str(coding["code"]))))
                texts.append(str(coding.get("display") or ""))
    return codes, " ".join(texts)


def order_kinds(matcher: Matcher, order: Json) -> set[str]:
    """What a draft order is, for the checks: ``mri``, ``ct``, ``epidural``, ``gabapentinoid``."""
    codes, text = _codes_of(order)
    kinds: set[str] = set()
    for code in codes:
        if code.system == cs("service") and code.code in _SERVICE_KIND:
            kinds.add(_SERVICE_KIND[code.code])
        elif (code.system, code.code) in _MRI:
            kinds.add("mri")
        elif (code.system, code.code) in _CT:
            kinds.add("ct")
        elif (concept := matcher.concept_of(code)) in _CONCEPT_KIND:
            kinds.add(_CONCEPT_KIND[str(concept)])
    if not kinds:  # coded orders are trusted; free text is a fallback only
        kinds = {kind for pattern, kind in _TEXT_KIND if pattern.search(text)}
    return kinds


def has_mri_unsafe_implant(matcher: Matcher, result: TriageResult, subject: str) -> bool:
    """True when the patient's record (as the evaluation read it) states a current MRI-unsafe
    implant or device."""
    for record in result.found.records:
        if record.subject != subject:
            continue
        facts, _ = match_facts(matcher, record.items)
        return any(f.item.polarity is Polarity.PRESENT for f in facts.get("mri-unsafe-implant", []))
    return False


@dataclass(frozen=True, slots=True)
class _Problem:
    kind: str
    summary: str
    detail: str
    suggestion: Json | None


def order_cards(
    pipeline: Pipeline, result: TriageResult, assessment: Assessment, orders: Iterable[Json]
) -> list[Json]:
    """Warning cards for draft orders the rules contradict, plus urgent red flags."""
    kb, matcher = pipeline.kb, pipeline.matcher
    ctx = _Ctx(kb, assessment)
    cards: list[Json] = []
    if assessment.in_scope and _indicator(assessment) == "critical":
        cards.append(
            {
                "uuid": ctx.uuid("red-flag"),
                "summary": _patient_summary(ctx),
                "indicator": "critical",
                "detail": patient_detail(kb, assessment),
                "source": ctx.source(),
                "overrideReasons": override_reasons(kb),
            }
        )
    if not assessment.in_scope:
        return cards
    implant = has_mri_unsafe_implant(matcher, result, assessment.subject)
    for order in orders:
        for problem in _problems(ctx, order_kinds(matcher, order), order, implant=implant):
            ref = f"{order['resourceType']}/{order['id']}"
            card: Json = {
                "uuid": ctx.uuid("order", problem.kind, ref),
                "summary": _fit(problem.summary),
                "indicator": "warning",
                "detail": problem.detail,
                "source": ctx.source(),
            }
            if problem.suggestion is not None:
                suggestion = {"uuid": make_id(card["uuid"], "fix"), **problem.suggestion}
                card["suggestions"] = [suggestion]
                card["selectionBehavior"] = "at-most-one"
            card["overrideReasons"] = override_reasons(kb)
            cards.append(card)
    return cards


def _delete(order: Json, label: str) -> Json:
    ref = f"{order['resourceType']}/{order['id']}"
    return {
        "label": label,
        "actions": [{"type": "delete", "description": f"Remove draft {ref}", "resourceId": ref}],
    }


def _problems(ctx: _Ctx, kinds: set[str], order: Json, *, implant: bool) -> list[_Problem]:
    assessment = ctx.assessment
    activities = {a.code: a for a in assessment.activities}
    found = []
    imaging = kinds & {"mri", "ct"}
    if imaging and "no-routine-imaging" in activities and not assessment.red_flags:
        what = "MRI" if "mri" in imaging else "CT"
        why = activities["no-routine-imaging"]
        found.append(
            _Problem(
                "imaging-not-indicated",
                f"Lumbar {what} not indicated now: no red flag and no failed conservative-care "
                "trial",
                f"**Imaging would not change management.** {_md(' '.join(why.reasons))} "
                f"_({', '.join(_md(r.id) for r in why.rules)})_\n\n"
                + patient_detail(ctx.kb, assessment),
                _delete(order, f"Remove the draft lumbar {what} order"),
            )
        )
    elif "mri" in kinds and implant:
        found.append(
            _Problem(
                "mri-unsafe-implant",
                "MRI ordered, but the record shows an MRI-unsafe implant: consider CT lumbar "
                "spine instead",
                "**MRI-unsafe implant or device in the record** (pacemaker, defibrillator, "
                "neurostimulator, cochlear implant or metal fragments). PainPath proposes CT "
                "lumbar spine without contrast in place of MRI; check the device's MR "
                "conditionality before keeping the MRI.",
                _to_ct(ctx, order),
            )
        )
    esi = assessment.slots.get("esi")
    if "epidural" in kinds and esi is not None and esi.value == "not-eligible":
        found.append(
            _Problem(
                "epidural-not-eligible",
                f"Epidural steroid injection not supported: {esi.reason}",
                f"**Epidural injection: not eligible.** {_why(esi)}\n\n"
                + patient_detail(ctx.kb, assessment),
                _delete(order, "Remove the draft epidural injection order"),
            )
        )
    advised = activities.get("no-sciatica-drugs")
    if "gabapentinoid" in kinds and advised is not None:
        profile = ctx.kb.catalogue.profiles[assessment.profile].title
        found.append(
            _Problem(
                "gabapentinoid-sciatica",
                f"Gabapentinoids are not recommended for sciatica ({profile})",
                f"**{_md(ctx.kb.catalogue.activities['no-sciatica-drugs'].title)}.** "
                f"{_md(' '.join(advised.reasons))} "
                f"_({', '.join(_md(r.id) for r in advised.rules)})_",
                _delete(order, "Remove the draft gabapentinoid prescription"),
            )
        )
    return found


def _to_ct(ctx: _Ctx, order: Json) -> Json:
    ct = ctx.kb.catalogue.services["ct-lumbar"]
    updated = copy.deepcopy(order)
    coding = [{"system": cs("service"), "code": "ct-lumbar", "display": ct.title}]
    if ct.code is not None:
        coding.insert(
            0, {"system": ct.code.system, "code": ct.code.code, "display": ct.code.display}
        )
    updated["code"] = {"coding": coding, "text": ct.title}
    ref = f"{order['resourceType']}/{order['id']}"
    return {
        "label": "Change the draft MRI to CT lumbar spine without contrast",
        "actions": [
            {"type": "update", "description": f"Change {ref} to {ct.title}", "resource": updated}
        ],
    }
