"""CDS Hooks 2.0 cards rendered from the assessment and the result resources (pure; no web code).

patient-view: one card per evaluated patient with something to say - ``critical`` when a red flag
calls for stat/asap/urgent action, ``warning`` for a routine red flag (inflammatory back pain),
``info`` for routine proposals. Its suggestion creates the result resources exactly as ``$triage``
emits them (the pain-type and stage Observations the CarePlan cites, the CarePlan and its
ServiceRequests), so the references inside the suggestion resolve. When a decision is open
(RULES §9), ``record_suggestion`` adds one suggestion per PainPath Questionnaire that records what
would change it, creating the response ``$populate`` pre-filled (``selectionBehavior`` ``any``).

order-select / order-sign: one ``warning`` card per draft order the rules contradict, with a
``delete`` (or, for MRI with an MRI-unsafe implant, an ``update`` to CT) suggestion on the draft;
an urgent red flag is also shown (``critical``), the routine plan is not (it belongs to
patient-view). No ``systemActions``: every PainPath action needs a clinician's acceptance.

Card and suggestion uuids are UUIDv5 of the ``hookInstance``, the patient, the card kind, the
rules that fired and the evaluation date: the same call gives the same uuids (deterministic), and
feedback names the one call whose card it was (CDS Hooks 2.0: a card's uuid identifies it for
the feedback endpoint). Specification: https://cds-hooks.hl7.org/2.0/#cds-service-response.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from service.app.pipeline import Pipeline, TriageResult
from service.domain.assessment import Assessment, Finding, ProposedService
from service.domain.engine import match_facts
from service.domain.facts import Matcher
from service.domain.forms import questionnaire_title
from service.domain.knowledge import KnowledgeBase, Prompt
from service.domain.model import Code, Polarity
from service.domain.open_questions import open_forms, open_questions
from service.domain.orders import OrderCheck, OrderKind, When
from service.domain.vocabulary import STAGES, URGENT, most_urgent, urgency_rank
from service.fhir.canonicals import canonical
from service.fhir.emit import IDENTIFIER_SYSTEM, make_id
from service.fhir.systems import cs, normalise_code, normalise_system
from service.fhir.types import Json

__all__ = [
    "OVERRIDE_CODES",
    "OVERRIDE_SYSTEM",
    "SUMMARY_MAX",
    "assessment_of",
    "flag_proposals",
    "order_cards",
    "override_reasons",
    "patient_cards",
    "record_suggestion",
    "red_flag_urgency",
    "smart_link",
]

SUMMARY_MAX = 139  # "<140-character summary"
OVERRIDE_CODES = "cds-override-reason"  # catalogue.toml [displays.cds-override-reason]
OVERRIDE_SYSTEM = cs(OVERRIDE_CODES)


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


def red_flag_urgency(kb: KnowledgeBase, assessment: Assessment, flag: Finding) -> str:
    """The highest priority of the proposals the red flag's rules made (``routine`` if none)."""
    found = [p.priority for p in flag_proposals(assessment, flag)]
    return most_urgent([*found, kb.catalogue.red_flags[flag.code].urgency])


def flag_proposals(assessment: Assessment, flag: Finding) -> list[ProposedService]:
    """The proposals a red flag's rules made; for a flag whose referral other rules propose
    (RULES §8 pathways), the urgent proposals of the plan."""
    linked = [p for p in assessment.proposals if set(p.rules) & set(flag.rules)]
    return linked or [p for p in assessment.proposals if p.priority in URGENT]


def _indicator(kb: KnowledgeBase, assessment: Assessment) -> str:
    urgencies = [red_flag_urgency(kb, assessment, f) for f in assessment.red_flags]
    if any(u in URGENT for u in urgencies):
        return "critical"
    return "warning" if urgencies else "info"


@dataclass(frozen=True, slots=True)
class _Ctx:
    kb: KnowledgeBase
    assessment: Assessment
    hook_instance: str = ""  # none when rendering the detail alone (no card)

    def source(self) -> Json:
        profile = self.kb.catalogue.profiles[self.assessment.profile]
        return {"label": profile.guideline, "url": profile.url}

    def label(self, system: str, code: str | None) -> str:
        return self.kb.catalogue.displays.get(system, {}).get(code or "", code or "unknown")

    def uuid(self, *parts: str) -> str:
        fired = sorted({f.rule.id for f in self.assessment.firings if f.fired})
        return make_id(
            "cds-card", self.hook_instance, self.assessment.subject, self.assessment.profile,
            self.assessment.as_of.date().isoformat(), *parts, *fired,
        )  # fmt: skip


def override_reasons(kb: KnowledgeBase) -> list[Json]:
    """The cards' ``overrideReasons``: the catalogue's cds-override-reason codes (published as
    the CodeSystem of the same name by the conformance package)."""
    reasons = kb.catalogue.displays[OVERRIDE_CODES]
    return [{"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in reasons.items()]


# --- recording what would change the decision -------------------------------------------------
def record_suggestion(kb: KnowledgeBase, card: Json, form: str, response: Json) -> None:
    """Add to a patient-view card the suggestion to record what would change the decision
    (RULES §9) with ``form``: create ``response``, the form pre-filled from the record by
    ``Questionnaire/$populate`` (``in-progress``, each answer naming its source), for the
    clinician to complete. Independent of the plan suggestion, so several may be chosen."""
    title = questionnaire_title(kb, form)
    action = {
        "type": "create",
        "description": f"Create QuestionnaireResponse: {title} (in progress, pre-filled from the "
        "record; complete it and PainPath re-evaluates)",
        "resource": response,
    }
    suggestions = card.setdefault("suggestions", [])
    suggestions.append(
        {
            "label": f"Record what would change the decision: {title}",
            "uuid": make_id(card["uuid"], "record", form),
            "isRecommended": False,  # the plan is; stated, for clients whose card model needs it
            "actions": [action],
        }
    )
    card["selectionBehavior"] = "any" if len(suggestions) > 1 else "at-most-one"


# --- SMART app link ---------------------------------------------------------------------------


def smart_link(kb: KnowledgeBase, assessment: Assessment, hook: str, launch_url: str) -> Json:
    """A ``links`` entry of type ``smart``: PainPath's page, launched with the patient.

    ``appContext`` (a string, CDS Hooks 2.0) is JSON naming the patient, the hook and the
    Questionnaires that would record what would change the decision (RULES §9): those the
    catalogue names for the open prompts (the red-flag screen when it is not documented).
    """
    context = {
        "patient": assessment.subject.rsplit("/", 1)[-1],
        "hook": hook,
        "questionnaires": [canonical("Questionnaire", q) for q in open_forms(kb, assessment)],
    }
    return {
        "label": "Open PainPath: the decision trace and what would change it",
        "url": launch_url,
        "type": "smart",
        "appContext": json.dumps(context, separators=(",", ":")),
    }


# --- patient-view --------------------------------------------------------------------------------
def patient_cards(
    kb: KnowledgeBase, assessment: Assessment, result_bundle: Json, hook_instance: str
) -> list[Json]:
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
    ctx = _Ctx(kb, assessment, hook_instance)
    uid = ctx.uuid("patient-view")
    card: Json = {
        "uuid": uid,
        "summary": _patient_summary(ctx),
        "indicator": _indicator(kb, assessment),
        "detail": patient_detail(kb, assessment),
        "source": ctx.source(),
    }
    resources = _suggestable(_plan_resources(result_bundle, assessment.subject))
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
    return [card, *medication_cards(ctx)]


def medication_cards(ctx: _Ctx) -> list[Json]:
    """One card per medication-safety DetectedIssue (rule set 2027.1): ``critical`` for a high
    severity (90 MME or more, an MAOI interaction), else ``warning``."""
    cards = []
    for finding in ctx.assessment.medication_issues:
        definition = ctx.kb.catalogue.medication_issues[finding.code]
        values = sorted({e.value for e in finding.evidence if e.value and "MME" in e.value})
        drugs = [f"- {_md(e.ref)}" + (f": {_md(e.value)}" if e.value else "")
                 for e in finding.evidence]  # fmt: skip
        detail = (
            f"**{_md(definition.title)}** ({definition.severity}). {_md(definition.mitigation)}"
            f" _({', '.join(_md(r.id) for r in finding.rules)})_\n\n" + "\n".join(drugs)
        )
        more = f" ({'; '.join(values)})" if values else ""
        cards.append(
            {
                "uuid": ctx.uuid("medication", finding.code),
                "summary": _fit(f"Medication safety: {definition.title}{more}"),
                "indicator": "critical" if definition.severity == "high" else "warning",
                "detail": detail,
                "source": ctx.source(),
                "overrideReasons": override_reasons(ctx.kb),
            }
        )
    return cards


def _patient_summary(ctx: _Ctx) -> str:
    assessment = ctx.assessment
    flags = sorted(
        assessment.red_flags,
        key=lambda f: (-urgency_rank(red_flag_urgency(ctx.kb, assessment, f)), f.code),
    )
    if flags:
        top = flags[0]
        title = ctx.kb.catalogue.red_flags[top.code].title
        urgency = red_flag_urgency(ctx.kb, assessment, top)
        more = f" (+{len(flags) - 1} more)" if len(flags) > 1 else ""
        services = [
            _lower_first(ctx.kb.catalogue.services[p.service].title)
            for p in flag_proposals(assessment, top)
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
    lines += _open_lines(ctx)
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
        urgency = red_flag_urgency(ctx.kb, ctx.assessment, flag)
        lines.append(f"- **{_md(title)}** ({urgency}): {_md(' '.join(flag.reasons))}")
    return lines


def _stage_lines(ctx: _Ctx) -> list[str]:
    lines = ["\n**Treatment stages**\n\n| Stage | Eligibility | Why |\n|---|---|---|"]
    for stage in STAGES:
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


def _open_lines(ctx: _Ctx) -> list[str]:
    """RULES §9: what would decide each open question, with the code that records it."""
    lines = []
    for entry in open_questions(ctx.kb, ctx.assessment):
        lines.append(f"\n**What would change the decision: {_md(entry.about)}**\n")
        lines += [f"- {_md(p.text)} ({_md(p.system)} {_md(p.code)}){_form(ctx, p)}"
                  for p in entry.prompts]  # fmt: skip
    return lines


def _form(ctx: _Ctx, prompt: Prompt) -> str:
    """Where a prompt is recorded: the PainPath Questionnaire, linked, and its ``$populate``."""
    if prompt.questionnaire is None:
        return ""
    title = questionnaire_title(ctx.kb, prompt.questionnaire)
    url = canonical("Questionnaire", prompt.questionnaire)
    return (
        f": record it with the Questionnaire [{_md(title)}]({url})"
        f" (`Questionnaire/{prompt.questionnaire}/$populate` pre-fills it from the record)"
    )


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
        and any(i.get("system") == IDENTIFIER_SYSTEM for i in e["resource"].get("identifier", ()))
    ]  # results only: an input carried along under its urn:uuid is not suggested


def _suggestable(resources: list[Json]) -> list[Json]:
    """The suggested resources without the references the EHR cannot resolve: a ``urn:`` that
    names none of the suggested resources is an input known only inside PainPath's result
    Bundle (a prefetched resource sent without id). Such a reference (or the extension that
    holds it) is left out of its list; the resources are copies, the result Bundle is not
    changed."""
    local = {f"urn:uuid:{r['id']}" for r in resources}

    def keep(node: object) -> bool:
        """False for a Reference, or an extension whose value is one, naming no local urn."""
        if not isinstance(node, dict):
            return True
        held = node.get("valueReference", node)
        target = held.get("reference") if isinstance(held, dict) else None
        return not (isinstance(target, str) and target.startswith("urn:") and target not in local)

    def clean(node: object) -> object:
        if isinstance(node, dict):
            cleaned = {k: clean(v) for k, v in node.items()}
            return {k: v for k, v in cleaned.items() if v != []}  # FHIR JSON has no empty arrays
        if isinstance(node, list):
            return [clean(v) for v in node if keep(v)]
        return node

    return [cast(Json, clean(r)) for r in resources]


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
# What an order is and which findings contradict it are knowledge (``knowledge/orders.toml``,
# ``service.domain.orders``); this part only reads the order's codes and renders the cards.
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


def order_kinds(kb: KnowledgeBase, matcher: Matcher, order: Json) -> set[str]:
    """What a draft order is, by the kinds of ``orders.toml`` (``mri``, ``ct``, ``epidural``…)."""
    codes, text = _codes_of(order)
    systems = kb.valuesets.systems
    kinds: set[str] = set()
    for code in codes:
        concept = matcher.concept_of(code)
        kinds |= {
            name for name, kind in kb.orders.kinds.items() if _is_kind(kind, code, concept, systems)
        }
    if order["resourceType"] == "MedicationRequest":  # a drug order: by ingredient, any coding
        classes = _drug_classes(matcher, codes, text)
        kinds |= {name for name, kind in kb.orders.kinds.items() if classes & set(kind.concepts)}
    if not kinds:  # coded orders are trusted; free text is a fallback only
        kinds = {name for pattern, name in kb.order_texts if pattern.search(text)}
    return kinds


def _drug_classes(matcher: Matcher, codes: list[Code], text: str) -> set[str]:
    """The drug classes of an ordered medication's ingredients (codes, then displays/text)."""
    index = matcher.ingredients
    hits = [hit for code in codes if (hit := index.by_code(code.system, code.code))]
    hits = hits or index.in_text([text])
    return {drug_class for hit in hits for drug_class in hit.classes}


def _is_kind(kind: OrderKind, code: Code, concept: str | None, systems: dict[str, str]) -> bool:
    if code.system == cs("service"):
        return code.code in kind.services
    coded = any(systems.get(c.system) == code.system and c.code == code.code for c in kind.codes)
    return coded or (concept is not None and concept in kind.concepts)


def present_facts(matcher: Matcher, result: TriageResult, subject: str) -> set[str]:
    """The concepts the patient's record (as the evaluation read it) states as present."""
    for record in result.found.records:
        if record.subject == subject:
            facts, _ = match_facts(matcher, record.items)
            return {
                concept
                for concept, found in facts.items()
                if any(f.item.polarity is Polarity.PRESENT for f in found)
            }
    return set()


def order_cards(
    pipeline: Pipeline,
    result: TriageResult,
    assessment: Assessment,
    orders: Iterable[Json],
    hook_instance: str,
) -> list[Json]:
    """Warning cards for draft orders the rules contradict, plus urgent red flags."""
    kb, matcher = pipeline.kb, pipeline.matcher
    ctx = _Ctx(kb, assessment, hook_instance)
    cards: list[Json] = []
    if assessment.in_scope and _indicator(kb, assessment) == "critical":
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
    facts = present_facts(matcher, result, assessment.subject)
    for order in orders:
        kinds = order_kinds(kb, matcher, order)
        for check in _fired(ctx, kinds, facts):
            cards.append(_order_card(ctx, check, kinds, order))
    return cards


def _fired(ctx: _Ctx, kinds: set[str], facts: set[str]) -> list[OrderCheck]:
    """The checks that fire for an order of ``kinds`` (the first of each group)."""
    fired: list[OrderCheck] = []
    groups: set[str] = set()
    for check in ctx.kb.orders.checks:
        if check.group in groups or not kinds & set(check.kinds):
            continue
        if _holds(ctx.assessment, check.when, facts):
            fired.append(check)
            if check.group is not None:
                groups.add(check.group)
    return fired


def _holds(assessment: Assessment, when: When, facts: set[str]) -> bool:
    activities = {a.code for a in assessment.activities}
    slot = assessment.slots.get(when.slot) if when.slot else None
    return (
        (when.activity is None or when.activity in activities)
        and (when.slot is None or (slot is not None and slot.value == when.value))
        and (when.fact is None or when.fact in facts)
        and (when.red_flags is None or bool(assessment.red_flags) == when.red_flags)
    )


def _order_card(ctx: _Ctx, check: OrderCheck, kinds: set[str], order: Json) -> Json:
    words = _words(ctx, check, kinds)
    ref = f"{order['resourceType']}/{order['id']}"
    detail = check.detail.format(**words)
    if check.patient_detail:
        detail += "\n\n" + patient_detail(ctx.kb, ctx.assessment)
    card: Json = {
        "uuid": ctx.uuid("order", check.id, ref),
        "summary": _fit(check.summary.format(**words)),
        "indicator": "warning",
        "detail": detail,
        "source": ctx.source(),
    }
    if check.suggestion is not None:
        label = check.suggestion.label.format(**words)
        fix = _delete(order, label) if check.suggestion.action == "delete" else None
        if check.suggestion.action == "replace" and check.suggestion.service:
            fix = _replace(ctx, order, check.suggestion.service, label)
        if fix is not None:
            # the card's one suggestion is the fix it recommends; said explicitly (optional in
            # CDS Hooks 2.0) because some clients' models require it (HealthChain 0.16.1)
            uid = make_id(card["uuid"], "fix")
            card["suggestions"] = [{"uuid": uid, "isRecommended": True, **fix}]
            card["selectionBehavior"] = "at-most-one"
    card["overrideReasons"] = override_reasons(ctx.kb)
    return card


def _words(ctx: _Ctx, check: OrderCheck, kinds: set[str]) -> dict[str, str]:
    """The placeholder values of a check's texts (Markdown-escaped where they go in detail)."""
    kind = next(k for k in check.kinds if k in kinds)
    words = {
        "kind": ctx.kb.orders.kinds[kind].title,
        "profile": ctx.kb.catalogue.profiles[ctx.assessment.profile].title,
    }
    activity = check.when.activity
    found = next((a for a in ctx.assessment.activities if a.code == activity), None)
    if activity is not None and found is not None:
        words["activity_title"] = _md(ctx.kb.catalogue.activities[activity].title)
        words["activity_reasons"] = _md(" ".join(found.reasons))
        words["activity_rules"] = ", ".join(_md(r.id) for r in found.rules)
    slot = ctx.assessment.slots.get(check.when.slot) if check.when.slot else None
    if slot is not None:
        words["slot_reason"] = slot.reason
        words["slot_why"] = _why(slot)
    return words


def _delete(order: Json, label: str) -> Json:
    ref = f"{order['resourceType']}/{order['id']}"
    return {
        "label": label,
        "actions": [{"type": "delete", "description": f"Remove draft {ref}", "resourceId": ref}],
    }


def _replace(ctx: _Ctx, order: Json, service: str, label: str) -> Json:
    """An ``update`` of the draft that swaps its code for a PainPath service (e.g. MRI -> CT)."""
    definition = ctx.kb.catalogue.services[service]
    updated = copy.deepcopy(order)
    coding = [{"system": cs("service"), "code": service, "display": definition.title}]
    if definition.code is not None:
        code = definition.code
        coding.insert(0, {"system": code.system, "code": code.code, "display": code.display})
    updated["code"] = {"coding": coding, "text": definition.title}
    ref = f"{order['resourceType']}/{order['id']}"
    return {
        "label": label,
        "actions": [
            {
                "type": "update",
                "description": f"Change {ref} to {definition.title}",
                "resource": updated,
            }
        ],
    }
