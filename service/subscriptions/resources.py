"""The Subscription resources ``painpath subscribe`` creates on a FHIR server (no I/O here).

- R4 criteria subscriptions (https://hl7.org/fhir/R4/subscription.html): one per watched type,
  ``criteria: "{Type}?"``, ``channel.type: rest-hook``, ``payload: application/fhir+json`` so the
  server PUTs the changed resource to ``{endpoint}/{Type}/{id}`` (HAPI, sekmet-fhir).
- Topic-based (Subscriptions R5 Backport IG, https://hl7.org/fhir/uv/subscriptions-backport/):
  PainPath's SubscriptionTopic, represented on R4 as a ``Basic`` with the cross-version
  ``extension-SubscriptionTopic.*`` extensions, and one backport Subscription on it with
  ``full-resource`` payload.

Ids are deterministic (endpoint + criteria), so running the command twice updates in place.
"""

from __future__ import annotations

from service.fhir.emit import make_id
from service.fhir.systems import BASE
from service.fhir.types import Json

__all__ = [
    "BACKPORT_PROFILE",
    "HOOK_PATH",
    "TOPIC_URL",
    "WATCHED_TYPES",
    "criteria_subscription",
    "hook_endpoint",
    "topic_basic",
    "topic_subscription",
]

WATCHED_TYPES = ("Condition", "Observation", "QuestionnaireResponse")
HOOK_PATH = "/hooks/fhir"  # where PainPath receives notifications (service.api.subscriptions)
TOPIC_URL = f"{BASE}/SubscriptionTopic/patient-data-changed"
_BP = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_PROFILE = f"{_BP}/backport-subscription"
_ST = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic"
_REASON = "PainPath: re-evaluate the patient when data the back-pain rules read changes"


def hook_endpoint(painpath_url: str) -> str:
    """The notification endpoint for PainPath's base URL (or the endpoint itself)."""
    url = painpath_url.rstrip("/")
    return url if url.endswith(HOOK_PATH) else url + HOOK_PATH


def _id(endpoint: str, criteria: str) -> str:
    return "painpath-" + make_id("subscription", endpoint, criteria)


def _headers(token: str | None) -> list[str]:
    return [f"Authorization: Bearer {token}"] if token else []


def criteria_subscription(rtype: str, endpoint: str, token: str | None = None) -> Json:
    """An R4 rest-hook Subscription on every create/update of ``rtype``."""
    criteria = f"{rtype}?"
    channel: Json = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "payload": "application/fhir+json",
    }
    if token:
        channel["header"] = _headers(token)
    return {
        "resourceType": "Subscription",
        "id": _id(endpoint, criteria),
        "status": "requested",
        "reason": _REASON,
        "criteria": criteria,
        "channel": channel,
    }


def _trigger(rtype: str) -> Json:
    return {
        "url": f"{_ST}.resourceTrigger",
        "extension": [
            {"url": "description", "valueMarkdown": f"A {rtype} was created or updated"},
            {"url": "resource", "valueUri": f"http://hl7.org/fhir/StructureDefinition/{rtype}"},
            {"url": "supportedInteraction", "valueCode": "create"},
            {"url": "supportedInteraction", "valueCode": "update"},
        ],
    }


def topic_basic(types: tuple[str, ...] = WATCHED_TYPES) -> Json:
    """PainPath's SubscriptionTopic as an R4 ``Basic`` (backport IG cross-version form)."""
    return {
        "resourceType": "Basic",
        "id": "painpath-topic-patient-data-changed",
        "modifierExtension": [{"url": f"{_ST}.status", "valueCode": "active"}],
        "extension": [
            {"url": f"{_ST}.url", "valueUri": TOPIC_URL},
            {"url": f"{_ST}.version", "valueString": "1.0.0"},
            {"url": f"{_ST}.name", "valueString": "painpath_patient_data_changed"},
            {"url": f"{_ST}.title", "valueString": "Patient data PainPath reads changed"},
            *[_trigger(rtype) for rtype in types],
            *[
                {
                    "url": f"{_ST}.canFilterBy",
                    "extension": [
                        {"url": "resource", "valueUri": rtype},
                        {"url": "filterParameter", "valueString": "patient"},
                    ],
                }
                for rtype in types
            ],
        ],
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]
        },
    }


def topic_subscription(endpoint: str, token: str | None = None) -> Json:
    """A backport Subscription on PainPath's topic, full-resource payload."""
    channel: Json = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "payload": "application/fhir+json",
        "_payload": {
            "extension": [{"url": f"{_BP}/backport-payload-content", "valueCode": "full-resource"}]
        },
    }
    if token:
        channel["header"] = _headers(token)
    return {
        "resourceType": "Subscription",
        "id": _id(endpoint, TOPIC_URL),
        "meta": {"profile": [BACKPORT_PROFILE]},
        "status": "requested",
        "reason": _REASON,
        "criteria": TOPIC_URL,
        "channel": channel,
    }
