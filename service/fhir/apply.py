"""``PlanDefinition/$apply`` (FHIR R4 Clinical Reasoning) on PainPath's pathway.

https://hl7.org/fhir/R4/operation-plandefinition-apply.html. The request is a Parameters
resource; the answer is one CarePlan, built from the same result ``$triage`` gives:

    Parameters ─ read_apply_request ─▶ ApplyRequest (subject, data, options, ignored names)
    result Bundle of the Pipeline ─ apply_care_plan ─▶ CarePlan
        contained: RequestGroup (one action per proposal, in the triage CarePlan's order),
                   the ServiceRequests, the pain-type and stage Observations, the
                   DetectedIssues and the OperationOutcome(s) of that patient
        activity:  one reference to the contained RequestGroup

As HAPI FHIR's clinical-reasoning ``$apply`` does for R4, every generated resource is contained
in the CarePlan and the RequestGroup actions point at them (``#id``): nothing is persisted and the
answer stands on its own. ``urn:uuid`` references between results become ``#id`` references, and
a reference to the triage CarePlan itself becomes ``#`` (the container). The CarePlan keeps the
triage CarePlan's id, identifiers, stage category, subject and supporting information, but not its
``meta.profile``: its activities are the RequestGroup, not the profile's activity list.

``data`` (a Bundle of the patient's data) is a PainPath extension of the R4 operation (R5 and the
CPG IG define it); ``asOf``, ``profile`` and ``validation`` are ``$triage``'s. The R4 context
parameters PainPath does not use (``encounter``, ``practitioner``, ...) are accepted, and the
CarePlan carries a note naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.fhir.canonicals import PLAN_DEFINITION
from service.fhir.emit import make_id
from service.fhir.errors import InputError, Problem
from service.fhir.ids import ID_RULE, is_fhir_id
from service.fhir.limits import DEFAULT_MAX_DEPTH
from service.fhir.request import (
    Relevant,
    TriageRequest,
    checked_bundle,
    checked_parameters,
    option_value,
    parse_json,
)
from service.fhir.types import Json

__all__ = [
    "APPLY_IGNORED",
    "APPLY_OPTIONS",
    "REQUEST_GROUP_ID",
    "ApplyRequest",
    "apply_care_plan",
    "patient_subject",
    "read_apply_request",
]

# R4 $apply context parameters PainPath accepts and does not use
APPLY_IGNORED = (
    "encounter", "practitioner", "organization", "userType", "userLanguage", "userTaskContext",
    "setting", "settingContext",
)  # fmt: skip
APPLY_OPTIONS = ("asOf", "profile", "validation")  # $triage's options that $apply takes
REQUEST_GROUP_ID = "request-group"
_PLAN_VALUES = ("valueCanonical", "valueUri", "valueString", "valueUrl")
_CONTAINED_TYPES = ("Observation", "ServiceRequest", "DetectedIssue")


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """An ``$apply`` request as read: which plan, which patient, which data."""

    plan: str | None = None  # type level: the canonical (planDefinition / url), maybe |version
    subject: str | None = None  # the Patient id of ``subject``
    data: TriageRequest | None = None  # the ``data`` Bundle, validated like a $triage body
    options: dict[str, str | bool] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


def patient_subject(value: object, where: str) -> str:
    """The id of a ``Patient/{id}`` subject (400 for anything else)."""
    text = value if isinstance(value, str) else ""
    rtype, _, rid = text.partition("/")
    if rtype != "Patient" or not rid or "/" in rid:
        raise InputError.one("invalid", "subject must be a Patient reference (Patient/{id})", where)
    if not is_fhir_id(rid):
        raise InputError.one("invalid", f"subject's id must be {ID_RULE}", where)
    return rid


def read_apply_request(  # noqa: PLR0913 - the limits and the validation policy, by keyword
    body: bytes,
    *,
    max_bytes: int,
    max_entries: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    relevant: Relevant | None = None,
    strict: bool = False,
    targets: tuple[str, str] = ("planDefinition", "url"),
    ignored_names: tuple[str, ...] = APPLY_IGNORED,
) -> ApplyRequest:
    """Parse and check an ``$apply`` Parameters body (an empty body is no parameters).

    ``targets``: the names of the type-level parts naming the definition (a resource, then a
    canonical); ``ignored_names``: the parts accepted and not used. ``$populate`` reads its
    Parameters with the same function (``questionnaire``, ``canonical``)."""
    if not body.strip():
        return ApplyRequest()
    resource = parse_json(body, max_bytes=max_bytes, max_depth=None)
    if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
        raise InputError.one(
            "invalid", "Send a Parameters resource (or an empty body)", "resourceType"
        )
    parts = checked_parameters(resource, max_depth)
    found, ignored, data = _read_parts(parts, targets, ignored_names)
    if all(t in found for t in targets):
        raise InputError.one(
            "invalid", f"Send {targets[0]} or {targets[1]}, not both", "Parameters.parameter"
        )
    options = {k: v for k, v in found.items() if k in APPLY_OPTIONS}
    request = None
    if data is not None:
        bundle, prefix = data
        if "validation" in options:
            strict = options["validation"] == "strict"
        check = checked_bundle(
            bundle,
            max_entries=max_entries,
            prefix=prefix,
            relevant=relevant,
            strict=strict,
            max_depth=max_depth - 3,  # Parameters, parameter list, part: the Bundle's levels
        )
        request = TriageRequest(bundle, options, check.selected, check.warnings)
    plan = found.get(targets[0], found.get(targets[1]))
    return ApplyRequest(plan, found.get("subject"), request, options, tuple(ignored))


def _read_parts(
    parts: list[Json], targets: tuple[str, str], ignored_names: tuple[str, ...]
) -> tuple[dict[str, Any], list[str], tuple[Json, str] | None]:
    """The parts by name (one each), the ignored names and the ``data`` Bundle with its path."""
    found: dict[str, Any] = {}
    ignored: list[str] = []
    data: tuple[Json, str] | None = None
    for index, part in enumerate(parts):
        where = f"Parameters.parameter[{index}]"
        name = part.get("name")
        if name in found or (name == "data" and data is not None):
            raise InputError.one(
                "invalid", f"Parameter {name!r} is repeated (one subject per call)", where + ".name"
            )
        if name == "data":
            data = _data_part(part, where), where + ".resource"
        elif name == "subject":
            found[name] = patient_subject(_subject_value(part), where)
        elif name in targets:
            found[name] = _plan_value(part, str(name), where, resource_part=targets[0])
        elif name in APPLY_OPTIONS:
            found[name] = option_value(part, str(name), where)
        elif name in ignored_names:
            if name not in ignored:
                ignored.append(str(name))
        elif name is None:
            raise InputError.one("invalid", "Missing required element 'name'", where + ".name")
        else:
            taken = ", ".join(("data", "subject", *targets, *APPLY_OPTIONS, *ignored_names))
            # the caller's name is not repeated: the expression locates the part
            raise InputError.one(
                "invalid", f"Unknown parameter; this operation takes {taken}", where + ".name"
            )
    return found, ignored, data


def _data_part(part: Json, where: str) -> Json:
    resource = part.get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") != "Bundle":
        raise InputError.one("invalid", "The 'data' part must carry a Bundle", where + ".resource")
    return resource


def _subject_value(part: Json) -> object:
    if "valueReference" in part:
        return (part["valueReference"] or {}).get("reference")
    return part.get("valueString")


def _plan_value(part: Json, name: str, where: str, *, resource_part: str) -> str:
    """The canonical a ``planDefinition`` or ``url`` part names (a PlanDefinition resource
    names its ``url``; a reference ``PlanDefinition/{id}`` names PainPath's canonical of it)."""
    resource = part.get("resource")
    rtype = resource_part[0].upper() + resource_part[1:]
    if name == resource_part and isinstance(resource, dict):
        if resource.get("resourceType") != rtype or not resource.get("url"):
            raise InputError.one("invalid", f"{name} must be a {rtype} with a url", where)
        return str(resource["url"])
    if name == resource_part and "valueReference" in part:
        reference = str((part["valueReference"] or {}).get("reference", ""))
        if reference.startswith(f"{rtype}/"):
            return f"{PLAN_DEFINITION.rsplit('/', 2)[0]}/{reference}"
        return reference
    for key in _PLAN_VALUES:
        if isinstance(part.get(key), str):
            return str(part[key])
    raise InputError(
        "invalid",
        [Problem(f"Parameter {name!r} needs {' or '.join(_PLAN_VALUES)}", where)],
    )


# --- the answer ---------------------------------------------------------------------------------


def apply_care_plan(result: Json, subject: str, ignored: tuple[str, ...] = ()) -> Json:
    """The ``$apply`` CarePlan of ``subject`` (``Patient/{id}``) from a ``$triage`` result."""
    resources = [e["resource"] for e in result.get("entry", ())]
    triage_plan = next(
        (r for r in resources if r["resourceType"] == "CarePlan" and _about(r) == subject), None
    )
    contained = [
        r for r in resources if r["resourceType"] in _CONTAINED_TYPES and _about(r) == subject
    ]
    contained += [r for r in resources if _outcome_of(r, subject)]
    if triage_plan is not None:
        plan = {k: v for k, v in triage_plan.items() if k not in ("meta", "activity", "text")}
    else:
        plan = _empty_plan(result, subject)
    local = {r["id"] for r in contained} | {REQUEST_GROUP_ID}
    own = str(plan["id"])
    rewrite = _rewriter(local, own)
    group = _request_group(plan, triage_plan, contained)
    plan = rewrite(plan)
    supporting = list(plan.get("supportingInfo", []))
    referenced = {s.get("reference") for s in supporting}
    supporting += [
        {"reference": f"#{r['id']}"}
        for r in contained
        if r["resourceType"] in ("DetectedIssue", "OperationOutcome")
        and f"#{r['id']}" not in referenced
    ]
    ordered: Json = {"resourceType": "CarePlan", "id": own}
    ordered["contained"] = [group, *(rewrite(r) for r in contained)]
    ordered.update({k: v for k, v in plan.items() if k not in ("resourceType", "id")})
    if supporting:
        ordered["supportingInfo"] = supporting
    ordered["activity"] = [{"reference": {"reference": f"#{REQUEST_GROUP_ID}"}}]
    if ignored:
        ordered["note"] = [
            *plan.get("note", []),
            {"text": "Parameters accepted and not used by PainPath: " + ", ".join(ignored)},
        ]
    return ordered


def _about(resource: Json) -> str | None:
    holder = resource.get("subject") or resource.get("patient") or {}
    reference = holder.get("reference") if isinstance(holder, dict) else None
    return str(reference) if reference else None


def _outcome_of(resource: Json, subject: str) -> bool:
    """A patient's OperationOutcome (every issue names the patient) or the general one (no
    issue names a patient)."""
    if resource["resourceType"] != "OperationOutcome":
        return False
    texts = [str(i.get("diagnostics", "")) for i in resource.get("issue", ())]
    mine = [t.startswith(f"{subject}: ") for t in texts]
    return all(mine) or not any(t.startswith("Patient/") for t in texts)


def _empty_plan(result: Json, subject: str) -> Json:
    """The CarePlan of a patient ``$triage`` proposes nothing for (out of scope)."""
    return {
        "resourceType": "CarePlan",
        "id": make_id(str(result.get("id", "")), subject, "apply-careplan"),
        "instantiatesCanonical": [PLAN_DEFINITION],
        "status": "draft",
        "intent": "proposal",
        "title": "PainPath back pain care plan (proposal)",
        "description": "No care plan is proposed; the OperationOutcome says why.",
        "subject": {"reference": subject},
        **({"created": result["timestamp"]} if result.get("timestamp") else {}),
    }


def _request_group(plan: Json, triage_plan: Json | None, contained: list[Json]) -> Json:
    """The RequestGroup: one action per triage CarePlan activity, in its order."""
    by_urn = {f"urn:uuid:{r['id']}": r for r in contained}
    actions: list[Json] = []
    for activity in (triage_plan or {}).get("activity", ()):
        reference = (activity.get("reference") or {}).get("reference")
        request = by_urn.get(str(reference))
        if request is not None:
            action: Json = {"title": request["code"].get("text", "")}
            if request.get("priority"):
                action["priority"] = request["priority"]
            action["code"] = [request["code"]]
            action["resource"] = {"reference": f"#{request['id']}"}
            actions.append(action)
        elif "detail" in activity:
            detail = activity["detail"]
            action = {"title": detail.get("code", {}).get("text", "")}
            if detail.get("description"):
                action["description"] = detail["description"]
            if detail.get("code"):
                action["code"] = [detail["code"]]
            actions.append(action)
    group: Json = {
        "resourceType": "RequestGroup",
        "id": REQUEST_GROUP_ID,
        "instantiatesCanonical": [PLAN_DEFINITION],
        "status": "draft",
        "intent": "proposal",
        "subject": plan["subject"],
    }
    if plan.get("created"):
        group["authoredOn"] = plan["created"]
    if actions:
        group["action"] = actions
    return group


def _rewriter(local: set[str], own: str) -> Any:
    """Rewrite ``urn:uuid`` references: contained ones to ``#id``, the CarePlan's to ``#``."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items()}
            reference = out.get("reference")
            if isinstance(reference, str) and reference.startswith("urn:uuid:"):
                rid = reference.removeprefix("urn:uuid:")
                if rid == own:
                    out["reference"] = "#"
                elif rid in local:
                    out["reference"] = f"#{rid}"
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk
