"""The pathway in CPG-on-FHIR style: a PlanDefinition over ActivityDefinitions.

https://hl7.org/fhir/uv/cpg/ and https://hl7.org/fhir/R4/plandefinition.html: each rule of
rules.toml that proposes something is a recommendation, i.e. a PlanDefinition action (title,
reason, citation), with one sub-action per proposal whose ``definitionCanonical`` is the
ActivityDefinition of that kind of proposal. The rule's logic (``when``/``unless`` in the PainPath
rule language, knowledge/README.md) is the action's ``textEquivalent``, not a ``condition``: the R4
JSON Schema allows only text/cql, text/fhirpath and application/x-fhir-query as an Expression
language, and the rules are none of these. There is one ActivityDefinition per catalogue service
(kind ServiceRequest, the code and category PainPath puts on the ServiceRequest, which carries it
as ``instantiatesCanonical``) and per catalogue activity (a CarePlan activity detail, which names
it the same way).
"""

from __future__ import annotations

import json

from service.domain.knowledge import Catalogue, RuleSpec
from service.fhir import canonicals as cn
from service.fhir.systems import cs
from tools.conformance_package.common import Json, Meta

__all__ = ["activity_definitions", "plan_definition", "service_categories", "service_code"]

_PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"


def _coding(system: str, code: str, display: str) -> Json:
    return {"system": system, "code": code, "display": display}


def service_categories(catalogue: Catalogue, service: str) -> list[Json]:
    """The ServiceRequest.category concepts of a service (as the emitter writes them)."""
    definition = catalogue.services[service]
    found = [{"coding": [_coding(cs("service"), service, definition.title)]}]
    if definition.category:
        category = definition.category
        found.append({"coding": [_coding(category.system, category.code, category.display)]})
    return found


def service_code(catalogue: Catalogue, service: str) -> Json:
    """The ServiceRequest.code of a service: its standard code, else the PainPath service code."""
    definition = catalogue.services[service]
    if definition.code:
        coding = _coding(definition.code.system, definition.code.code, definition.code.display)
    else:
        coding = _coding(cs("service"), service, definition.title)
    return {"coding": [coding], "text": definition.title}


def _cql_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _cql_concepts(categories: list[Json]) -> str:
    def one(coding: Json) -> str:
        fields = ", ".join(
            f"{k}: '{_cql_string(coding[k])}'" for k in ("system", "code", "display")
        )
        return f"Concept {{ codes: {{ Code {{ {fields} }} }} }}"

    return "{ " + ", ".join(one(c["coding"][0]) for c in categories) + " }"


def _service_definition(meta: Meta, service: str) -> Json:
    definition = meta.kb.catalogue.services[service]
    resource = meta.header(
        "ActivityDefinition",
        f"service-{service}",
        title=definition.title,
        description=f"Propose: {definition.title} ({definition.stage}).",
    )
    categories = service_categories(meta.kb.catalogue, service)
    resource.update(
        kind="ServiceRequest",
        profile=cn.SERVICE_REQUEST_PROFILE,
        code=service_code(meta.kb.catalogue, service),
        intent="proposal",
        dynamicValue=[
            {
                "path": "category",
                "expression": {
                    "description": "ServiceRequest.category: the PainPath service code"
                    + (" and the standard category" if len(categories) > 1 else ""),
                    "language": "text/cql",
                    "expression": _cql_concepts(categories),
                },
            }
        ],
    )
    return resource


def _activity_definition(meta: Meta, activity: str) -> Json:
    definition = meta.kb.catalogue.activities[activity]
    codings = [_coding(cs("care-activity"), activity, definition.title)]
    if definition.code:
        code = definition.code
        codings.append(_coding(code.system, code.code, code.display))
    description = definition.description + (
        f" Caution: {definition.caution}" if definition.caution else ""
    )
    resource = meta.header(
        "ActivityDefinition",
        f"activity-{activity}",
        title=definition.title,
        description=description,
    )
    resource.update(
        kind=definition.kind,
        code={"coding": codings, "text": definition.title},
        intent="proposal",
        doNotPerform=definition.do_not_perform,
    )
    return resource


def activity_definitions(meta: Meta) -> list[Json]:
    """One ActivityDefinition per catalogue service, then one per catalogue activity."""
    catalogue = meta.kb.catalogue
    return [_service_definition(meta, s) for s in catalogue.services] + [
        _activity_definition(meta, a) for a in catalogue.activities
    ]


def _citation(rule: RuleSpec) -> Json:
    source = rule.source
    text = f"{source.guideline}, {source.section}" + (
        f" (grade {source.grade})" if source.grade else ""
    )
    citation: Json = {"type": "citation", "display": text}
    if source.url:
        citation["url"] = source.url
    return citation


def _action(meta: Meta, rule: RuleSpec) -> Json:
    logic = {"when": rule.when} | ({"unless": rule.unless} if rule.unless else {})
    catalogue = meta.kb.catalogue
    action: Json = {"id": rule.id, "title": rule.title}
    if rule.reason:
        action["description"] = rule.reason
    action["textEquivalent"] = (
        f"Applies when (rules.toml rule {rule.id} v{rule.version}): "
        + json.dumps(logic, ensure_ascii=False, separators=(",", ":"))
    )
    action["documentation"] = [_citation(rule)]
    action["action"] = [
        {
            "title": catalogue.services[p.service].title,
            "priority": p.priority,
            "definitionCanonical": cn.service_definition(p.service),
        }
        for p in rule.then.propose
    ] + [
        {"title": catalogue.activities[a].title, "definitionCanonical": cn.activity_definition(a)}
        for a in rule.then.activity
    ]
    return action


def plan_definition(meta: Meta) -> Json:
    """The PainPath pathway: one action per rule that proposes a service or an activity."""
    resource = meta.header(
        "PlanDefinition",
        "back-pain-pathway",
        title="PainPath back pain pathway",
        description="The recommendations PainPath applies, in rule order (rules.toml). Each "
        "action is one rule; its condition is the rule's logic in the PainPath rule language "
        "(service/knowledge/README.md); its sub-actions are the proposals it makes.",
    )
    profiles = meta.kb.catalogue.profiles.values()
    resource.update(
        type={"coding": [_coding(_PLAN_TYPE, "clinical-protocol", "Clinical Protocol")]},
        relatedArtifact=[
            {"type": "citation", "display": p.guideline, "url": p.url} for p in profiles
        ],
        action=[
            _action(meta, rule.spec)
            for rule in meta.kb.rules
            if rule.spec.then.propose or rule.spec.then.activity
        ],
    )
    return resource
