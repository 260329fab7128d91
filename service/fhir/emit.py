"""Assessment -> FHIR R4 resources of the result Bundle (docs/interface.md "The result Bundle").

Plain dicts are built directly (no model dumps on the hot path); tests prove each is valid R4
against the JSON Schema and fhir.resources. Per evaluated patient, in contract order: pain-type
Observation, stage-eligibility Observation, CarePlan, ServiceRequests, DetectedIssues, Provenance,
and an OperationOutcome when there is anything to tell. Ids are UUIDv5 of the input digest, the
evaluation date, the subject and the resource's role, so the same input gives the same Bundle.

Specifications: CarePlan https://hl7.org/fhir/R4/careplan.html, ServiceRequest
https://hl7.org/fhir/R4/servicerequest.html, DetectedIssue https://hl7.org/fhir/R4/detectedissue.html,
Provenance https://hl7.org/fhir/R4/provenance.html, narrative https://hl7.org/fhir/R4/narrative.html.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from service import __version__
from service.domain.assessment import Assessment, Finding, ProposedService
from service.domain.explanation import patient_explanation
from service.domain.knowledge import Coding, KnowledgeBase
from service.domain.trace import Evidence
from service.domain.vocabulary import STAGES
from service.fhir import canonicals as cn
from service.fhir.narrative import (
    careplan_narrative,
    explanation_narrative,
    issue_narrative,
    summary_narrative,
)
from service.fhir.systems import ACT_CODE, BASE, cs
from service.fhir.types import Json

__all__ = ["IDENTIFIER_SYSTEM", "KEY_SYSTEM", "Emitter", "make_id", "result_key"]

_NAMESPACE = uuid.UUID("6f1d8d4e-2b7a-5c43-9a1e-0b5f3c2d7e11")
# R4 Observation.derivedFrom may point only at these types (observation-definitions.html)
DERIVED_FROM_TYPES = frozenset(
    {"DocumentReference", "ImagingStudy", "Media", "QuestionnaireResponse", "Observation",
     "MolecularSequence"}
)  # fmt: skip
# R4 core extension (Reference(Any), context Observation): "Other resources from the patient
# record ... used to create the instance"; carries the inputs derivedFrom may not name
SUPPORTING_INFO_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo"
IDENTIFIER_SYSTEM = f"{BASE}/identifier/result"
KEY_SYSTEM = f"{BASE}/identifier/result-key"


def make_id(*parts: str) -> str:
    """A deterministic UUIDv5 from the given parts."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def result_key(subject: str, ruleset_version: str, role: str) -> str:
    """The PainPath identifier value of a result: the same for every run on the same patient and
    rule-set version, whatever the data, so a write-back replaces the earlier result in place."""
    return make_id("result", subject, ruleset_version, role)


def _coding(system: str, code: str, display: str | None = None) -> Json:
    coding: Json = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _standard(coding: Coding) -> Json:
    return _coding(coding.system, coding.code, coding.display)


def _refs(evidence: tuple[Evidence, ...]) -> list[Json]:
    return [{"reference": ref} for ref in sorted({e.ref for e in evidence})]


def _evidence_text(evidence: tuple[Evidence, ...]) -> str:
    parts = []
    for item in evidence:
        weak = " (text match)" if item.lower_certainty else ""
        parts.append(f"{item.concept}={item.value} [{item.ref}]{weak}" if item.value else item.ref)
    return "; ".join(parts)


def _all_evidence(assessment: Assessment) -> tuple[Evidence, ...]:
    """Every input the assessment used: conclusions, red flags, proposals and activities."""
    used = tuple(sorted({e for c in assessment.slots.values() for e in c.evidence}))
    return used + tuple(
        e
        for group in (assessment.red_flags, assessment.proposals, assessment.activities)
        for item in group
        for e in item.evidence
    )


@dataclass(frozen=True, slots=True)
class Emitter:
    """Builds one patient's output resources."""

    kb: KnowledgeBase
    digest: str
    ref_types: dict[str, str]

    def _id(self, assessment: Assessment, role: str) -> str:
        return make_id(self.digest, assessment.as_of.isoformat(), assessment.subject, role)

    def _identifier(self, assessment: Assessment, role: str, rid: str) -> list[Json]:
        """The result identifier (this result; conditional creates key on it) and the result key
        (the same for every run on this patient and rule set; write-back replaces by it)."""
        key = result_key(assessment.subject, assessment.ruleset_version, role)
        return [{"system": IDENTIFIER_SYSTEM, "value": rid}, {"system": KEY_SYSTEM, "value": key}]

    def _label(self, system: str, code: str) -> str:
        return self.kb.catalogue.displays.get(system, {}).get(code) or code

    def _display(self, system: str, code: str) -> Json:
        return _coding(cs(system), code, self.kb.catalogue.displays.get(system, {}).get(code))

    def _of_type(self, evidence: tuple[Evidence, ...], *types: str) -> list[Json]:
        refs = sorted({e.ref for e in evidence if self.ref_types.get(e.ref) in types})
        return [{"reference": ref} for ref in refs]

    def _derived(self, resource: Json, evidence: tuple[Evidence, ...], *first: str) -> None:
        """``derivedFrom`` the inputs R4 allows there (``first``: result Observations); every
        other input used (Conditions, Procedures, ...) in the ``workflow-supportingInfo``
        extension, so the trace stays whole on the resource (and in the Provenance entities)."""
        refs = sorted({e.ref for e in evidence})
        allowed = [*first, *(r for r in refs if self.ref_types.get(r) in DERIVED_FROM_TYPES)]
        other = [r for r in refs if self.ref_types.get(r) not in DERIVED_FROM_TYPES]
        if other:
            resource["extension"] = [
                {"url": SUPPORTING_INFO_EXTENSION, "valueReference": {"reference": r}}
                for r in other
            ]
        if allowed:
            resource["derivedFrom"] = [{"reference": r} for r in allowed]

    def _base(
        self, assessment: Assessment, rtype: str, role: str, *, profile: str | None = None
    ) -> Json:
        rid = self._id(assessment, role)
        resource: Json = {"resourceType": rtype, "id": rid}
        if profile:
            resource["meta"] = {"profile": [profile]}  # fhir_profiles/profiles (canonicals.py)
        resource["identifier"] = self._identifier(assessment, role, rid)
        return resource

    def pain_type(self, assessment: Assessment) -> Json:
        """The pain-type Observation (docs/interface.md, result Bundle item 1)."""
        pain = assessment.slots["pain-type"]
        certainty = assessment.slots["certainty"]
        evidence = tuple(sorted({*pain.evidence, *certainty.evidence}))
        resource = self._base(assessment, "Observation", "pain-type", profile=cn.PAIN_TYPE_PROFILE)
        why = [self._why(pain), self._why(certainty)]
        heading = (
            f"Pain type: {self._label('pain-type', pain.value)} (neuropathic component: "
            f"{self._label('neuropathic-certainty', certainty.value)})"
        )
        resource.update(
            text=summary_narrative(heading, why),
            status="final",
            code={"coding": [self._display("painpath", "pain-type")], "text": "Pain type"},
            subject={"reference": assessment.subject},
            effectiveDateTime=assessment.as_of.isoformat(),
            valueCodeableConcept={"coding": [self._display("pain-type", pain.value)]},
            component=[
                {
                    "code": {"coding": [self._display("painpath", "neuropathic-certainty")]},
                    "valueCodeableConcept": {
                        "coding": [self._display("neuropathic-certainty", certainty.value)]
                    },
                }
            ],
            note=[{"text": " ".join(why)}],
        )
        self._derived(resource, evidence)
        return resource

    def _why(self, conclusion: Any) -> str:
        trail = _evidence_text(conclusion.evidence)
        rule = f"{conclusion.rule.id} v{conclusion.rule.version}"
        return f"{conclusion.value}: {conclusion.reason} ({rule}; {conclusion.rule.source})" + (
            f" Evidence: {trail}." if trail else "."
        )

    def stages(self, assessment: Assessment, pain_ref: str) -> Json:
        """The stage-eligibility Observation (docs/interface.md, result Bundle item 2)."""
        conclusions = [assessment.slots[f"stage:{stage}"] for stage in STAGES]
        evidence = tuple(sorted({e for c in conclusions for e in c.evidence}))
        resource = self._base(
            assessment, "Observation", "stage-eligibility", profile=cn.STAGE_ELIGIBILITY_PROFILE
        )
        lines = [
            f"{self._label('treatment-stage', stage)}: {self._label('eligibility', c.value)} - "
            f"{self._why(c)}"
            for stage, c in zip(STAGES, conclusions, strict=True)
        ]
        resource.update(
            text=summary_narrative("Treatment-stage eligibility", lines),
            status="final",
            code={"coding": [self._display("painpath", "treatment-stage-eligibility")]},
            subject={"reference": assessment.subject},
            effectiveDateTime=assessment.as_of.isoformat(),
            component=[
                {
                    "code": {"coding": [self._display("treatment-stage", stage)]},
                    "valueCodeableConcept": {
                        "coding": [self._display("eligibility", conclusion.value)]
                    },
                }
                for stage, conclusion in zip(STAGES, conclusions, strict=True)
            ],
            note=[
                {"text": f"{stage}: {self._why(c)}"}
                for stage, c in zip(STAGES, conclusions, strict=True)
            ],
        )
        self._derived(resource, evidence, pain_ref)
        return resource

    def service_request(self, assessment: Assessment, proposal: ProposedService) -> Json:
        """One ServiceRequest proposal (docs/interface.md, result Bundle item 4)."""
        definition = self.kb.catalogue.services[proposal.service]
        category = [{"coding": [_coding(cs("service"), proposal.service, definition.title)]}]
        if definition.category:
            category.append({"coding": [_standard(definition.category)]})
        code = [_standard(definition.code)] if definition.code else category[0]["coding"]
        resource = self._base(
            assessment,
            "ServiceRequest",
            f"service:{proposal.service}",
            profile=cn.SERVICE_REQUEST_PROFILE,
        )
        why = self._reasons(proposal.reasons, proposal.rules, proposal.evidence)
        heading = f"Proposed: {definition.title} ({proposal.priority}); a clinician decides"
        resource.update(
            text=summary_narrative(heading, [why]),
            instantiatesCanonical=[cn.service_definition(proposal.service)],
            instantiatesUri=[self.kb.catalogue.profiles[assessment.profile].url],
            status="draft",
            intent="proposal",
            category=category,
            priority=proposal.priority,
            code={"coding": code, "text": definition.title},
            subject={"reference": assessment.subject},
            authoredOn=assessment.as_of.isoformat(),
            note=[{"text": why}],
        )
        # a proposal resting on Observations alone (a red flag) is still for the patient's back
        # pain: fall back on the Conditions the assessment used, as the CarePlan addresses them
        reasons = self._of_type(proposal.evidence, "Condition") or self._of_type(
            _all_evidence(assessment), "Condition"
        )
        if reasons:
            resource["reasonReference"] = reasons
        if proposal.evidence:
            resource["supportingInfo"] = _refs(proposal.evidence)
        return resource

    def _reasons(
        self, reasons: tuple[str, ...], rules: tuple[Any, ...], evidence: tuple[Evidence, ...]
    ) -> str:
        cited = ", ".join(f"{r.id} v{r.version} ({r.source})" for r in rules)
        trail = _evidence_text(evidence)
        return " ".join(reasons) + f" Rules: {cited}." + (f" Evidence: {trail}." if trail else "")

    def detected_issue(self, assessment: Assessment, flag: Finding) -> Json:
        """One DetectedIssue per red flag (docs/interface.md, result Bundle item 5)."""
        definition = self.kb.catalogue.red_flags[flag.code]
        resource = self._base(
            assessment, "DetectedIssue", f"red-flag:{flag.code}", profile=cn.DETECTED_ISSUE_PROFILE
        )
        resource.update(
            text=issue_narrative(definition.title, flag),
            status="preliminary",
            code={"coding": [_coding(cs("red-flag"), flag.code, definition.title)]},
            severity=definition.severity,
            patient={"reference": assessment.subject},
            identifiedDateTime=assessment.as_of.isoformat(),
            detail=self._reasons(flag.reasons, flag.rules, flag.evidence),
        )
        if flag.evidence:
            resource["implicated"] = _refs(flag.evidence)
        return resource

    def medication_issue(self, assessment: Assessment, finding: Finding) -> Json:
        """One DetectedIssue per medication-safety finding (RULES §7 ⚠): the HL7 v3 ActCode
        detected-issue type beside the PainPath code, ``implicated`` the medication entries."""
        definition = self.kb.catalogue.medication_issues[finding.code]
        resource = self._base(
            assessment,
            "DetectedIssue",
            f"medication-issue:{finding.code}",
            profile=cn.MEDICATION_ISSUE_PROFILE,
        )
        resource.update(
            text=issue_narrative(definition.title, finding),
            status="preliminary",
            code={
                "coding": [
                    _coding(cs("medication-issue"), finding.code, definition.title),
                    _coding(ACT_CODE, definition.actcode, definition.actcode_display),
                ],
                "text": definition.title,
            },
            severity=definition.severity,
            patient={"reference": assessment.subject},
            identifiedDateTime=assessment.as_of.isoformat(),
            detail=self._reasons(finding.reasons, finding.rules, finding.evidence),
            mitigation=[{"action": {"text": definition.mitigation}}],
        )
        if finding.evidence:
            resource["implicated"] = _refs(finding.evidence)
        return resource

    def care_plan(
        self, assessment: Assessment, requests: list[str], observations: list[str]
    ) -> Json:
        """The CarePlan proposal (docs/interface.md, result Bundle item 3)."""
        stage = assessment.slots["recommended-stage"].value
        every = _all_evidence(assessment)
        resource = self._base(assessment, "CarePlan", "careplan", profile=cn.CAREPLAN_PROFILE)
        resource.update(
            text=careplan_narrative(assessment, self.kb),
            instantiatesCanonical=[cn.PLAN_DEFINITION],
            instantiatesUri=[self.kb.catalogue.profiles[assessment.profile].url],
            status="draft",
            intent="proposal",
            category=[{"coding": [self._display("treatment-stage", stage)]}],
            title="PainPath back pain care plan (proposal)",
            description=f"Recommended stage: {stage}. Proposed by PainPath; a clinician decides.",
            subject={"reference": assessment.subject},
            created=assessment.as_of.isoformat(),
            supportingInfo=[{"reference": ref} for ref in observations]
            + self._of_type(
                every,
                "Observation",
                "QuestionnaireResponse",
                "DiagnosticReport",
                "ImagingStudy",
                "Procedure",
                "MedicationStatement",
                "MedicationRequest",
                "MedicationDispense",
                "MedicationAdministration",
                "Device",
            ),
            activity=[{"reference": {"reference": ref}} for ref in requests]
            + [
                self._held_request(assessment, p)
                for p in assessment.proposals
                if assessment.held(p.priority)
            ]
            + [self._activity(activity, assessment.hold) for activity in assessment.activities],
        )
        addresses = self._of_type(every, "Condition")
        if addresses:
            resource["addresses"] = addresses
        return resource

    def _held_request(self, assessment: Assessment, proposal: ProposedService) -> Json:
        """A routine proposal held under a stat/urgent red flag (RULES §8): no ServiceRequest is
        emitted; the plan keeps it as an on-hold activity for after the urgent assessment."""
        definition = self.kb.catalogue.services[proposal.service]
        coding = [_coding(cs("service"), proposal.service, definition.title)]
        if definition.code:  # the code the ServiceRequest would carry (its ActivityDefinition's)
            coding = [_standard(definition.code)]
        held = self.kb.catalogue.hold
        detail: Json = {
            "instantiatesCanonical": [cn.service_definition(proposal.service)],
            "kind": "ServiceRequest",
            "code": {"coding": coding, "text": definition.title},
            "status": "on-hold",
            "statusReason": {"text": held.status_reason},
            "doNotPerform": False,
            "description": f"{held.prefix} {definition.title}. Why: " + " ".join(proposal.reasons),
        }
        return {"detail": detail}

    def _activity(self, activity: Finding, hold: Finding | None = None) -> Json:
        definition = self.kb.catalogue.activities[activity.code]
        coding = [_coding(cs("care-activity"), activity.code, definition.title)]
        if definition.code:
            coding.append(_standard(definition.code))
        description = definition.description
        if definition.caution:
            description += f" Caution: {definition.caution}"
        detail: Json = {
            "instantiatesCanonical": [cn.activity_definition(activity.code)],
            "kind": definition.kind,
            "code": {"coding": coding, "text": definition.title},
            "status": "not-started",
            "doNotPerform": definition.do_not_perform,
            "description": description + " Why: " + " ".join(activity.reasons),
        }
        if hold is not None:
            held = self.kb.catalogue.hold
            detail["status"] = "on-hold"
            detail["statusReason"] = {"text": held.status_reason}
            detail["description"] = f"{held.prefix} {detail['description']}"
        return {"detail": detail}

    def explanation(self, assessment: Assessment, plan_ref: str) -> Json | None:
        """The patient explanation as a preliminary DocumentReference (docs/interface.md, result
        Bundle item 6; docs/patient-explanation.md says why this resource): the plain-language
        text as a UTF-8 text/plain attachment and as the narrative, in the context of the plan."""
        found = patient_explanation(self.kb, assessment)
        if found is None:
            return None
        text = found.text()
        resource = self._base(assessment, "DocumentReference", "patient-explanation")
        resource.update(
            text=explanation_narrative(found),
            status="current",
            docStatus="preliminary",
            type={
                "coding": [self._display("painpath", "patient-explanation")],
                "text": "Patient explanation",
            },
            subject={"reference": assessment.subject},
            date=assessment.as_of.isoformat(),
            description=found.title,
            content=[
                {
                    "attachment": {
                        "contentType": "text/plain;charset=utf-8",
                        "language": "en",
                        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                        "title": found.title,
                    }
                }
            ],
            context={"related": [{"reference": plan_ref}]},
        )
        return resource

    def provenance(self, assessment: Assessment, targets: list[str]) -> Json:
        """Provenance naming the rule-set version and the profile (docs/interface.md, result
        Bundle item 7)."""
        profile = self.kb.catalogue.profiles[assessment.profile]
        resource = self._base(assessment, "Provenance", "provenance")
        del resource["identifier"]
        who = (
            f"PainPath {__version__} (rule set {assessment.ruleset_version}, profile "
            f"{assessment.profile})"
        )
        inputs = assessment.evidence_refs()
        lines = [
            f"Guideline: {profile.url}",
            f"Produced {len(targets)} resource(s) for {assessment.subject}",
            f"From {len(inputs)} input resource(s)" + (f": {', '.join(inputs)}" if inputs else ""),
        ]
        resource.update(
            text=summary_narrative(f"Recorded by {who} on {assessment.as_of.isoformat()}", lines),
            target=[{"reference": ref} for ref in targets],
            recorded=assessment.as_of.isoformat(),
            policy=[
                f"{BASE}/ruleset/{assessment.ruleset_version}",
                f"{BASE}/profile/{assessment.profile}",
                profile.url,
            ],
            activity={
                "coding": [
                    _coding(
                        "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "CREATE", "create"
                    )
                ]
            },
            agent=[
                {
                    "type": {
                        "coding": [
                            _coding(
                                "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                "assembler",
                                "Assembler",
                            )
                        ]
                    },
                    "who": {"display": who},
                }
            ],
            entity=[{"role": "source", "what": {"reference": ref}} for ref in inputs],
        )
        if not resource["entity"]:
            del resource["entity"]
        return resource
