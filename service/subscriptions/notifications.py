"""Reading subscription notifications: which patients to re-evaluate (no I/O here).

Shapes accepted (FHIR R4 Subscription, https://hl7.org/fhir/R4/subscription.html):
- R4 rest-hook with payload: ``PUT {endpoint}/{type}/{id}`` (or POST) with the resource;
- R4 rest-hook without payload: an empty ``POST {endpoint}`` (a "ping": something matched);
- a payload-search transaction/batch Bundle ``POST {endpoint}``;
- topic-based notifications (Subscriptions R5 Backport IG,
  https://hl7.org/fhir/uv/subscriptions-backport/): a ``history`` Bundle whose first entry is a
  ``Parameters`` (R4) or ``SubscriptionStatus`` (R4B) naming the notification type and events
  (``focus``), followed by the focus resources when the payload is ``full-resource``.

Only changes to what the rules read trigger a re-evaluation, and never PainPath's own results
(its write-back would otherwise notify itself forever). When only an id is known (``id-only``
payloads, a resource-less PUT), the caller reads the focus to learn its patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.fhir.ingest import READ_TYPES
from service.fhir.types import Json
from service.server.pull import subject_patient_id
from service.server.writeback import is_painpath_result

__all__ = ["TRIGGER_TYPES", "Notice", "read_notification", "read_resource_notification"]

TRIGGER_TYPES = frozenset(READ_TYPES - {"Medication"})


@dataclass(slots=True)
class Notice:
    """What one notification asks for."""

    kind: str  # "event" | "ping" | "handshake" | "heartbeat" | other backport types
    patients: set[str] = field(default_factory=set)  # patient ids to re-evaluate
    focus: set[str] = field(default_factory=set)  # "Type/id" to read to find the patient
    ignored: list[str] = field(default_factory=list)  # "Type/id" (or type) not acted upon

    def merge(self, other: Notice) -> None:
        """Add another notice's work to this one."""
        self.patients |= other.patients
        self.focus |= other.focus
        self.ignored += other.ignored


def read_resource_notification(rtype: str, rid: str, resource: Json | None) -> Notice:
    """A rest-hook notification about ``{rtype}/{rid}`` carrying ``resource`` (or nothing)."""
    notice = Notice("event")
    ref = f"{rtype}/{rid}"
    if rtype not in TRIGGER_TYPES:
        notice.ignored.append(ref)
    elif resource is None or resource.get("resourceType") != rtype:
        notice.focus.add(ref)
    else:
        _add_resource(notice, resource)
    return notice


def _add_resource(notice: Notice, resource: Json) -> None:
    ref = f"{resource.get('resourceType')}/{resource.get('id')}"
    patient = subject_patient_id(resource)
    wanted = resource.get("resourceType") in TRIGGER_TYPES and not is_painpath_result(resource)
    if wanted and patient is not None:
        notice.patients.add(patient)
    else:
        notice.ignored.append(ref)


def read_notification(body: Json | None) -> Notice:
    """A notification POSTed to the endpoint itself: empty, a backport Bundle or a resource."""
    if not body:
        return Notice("ping")
    if body.get("resourceType") != "Bundle":
        return read_resource_notification(str(body.get("resourceType")), str(body.get("id")), body)
    entries = [e for e in body.get("entry", ()) if isinstance(e, dict)]
    first = (entries[0].get("resource") if entries else None) or {}
    if body.get("type") == "history" and first.get("resourceType") in {
        "Parameters",
        "SubscriptionStatus",
    }:
        return _backport(first, [e.get("resource") or {} for e in entries[1:]])
    notice = Notice("event")
    for entry in entries:
        resource = entry.get("resource")
        if isinstance(resource, dict):
            _add_resource(notice, resource)
    return notice


def _backport(status: Json, resources: list[Json]) -> Notice:
    kind, focus = _status_fields(status)
    notice = Notice(kind or "unknown")
    if kind != "event-notification":
        return notice
    notice.kind = "event"
    carried = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources if r}
    for ref in focus:
        if ref in carried:
            _add_resource(notice, carried[ref])
        elif ref.split("/")[0] in TRIGGER_TYPES:
            notice.focus.add(ref)
        else:
            notice.ignored.append(ref)
    return notice


def _relative(reference: str) -> str:
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])


def _status_fields(status: Json) -> tuple[str | None, list[str]]:
    """(notification type, focus references) of an R4 Parameters or R4B SubscriptionStatus."""
    if status.get("resourceType") == "SubscriptionStatus":
        events = [e for e in status.get("notificationEvent", ()) if isinstance(e, dict)]
        refs = [(e.get("focus") or {}).get("reference") for e in events]
        return _text(status.get("type")), [_relative(str(r)) for r in refs if r]
    kind: str | None = None
    focus: list[str] = []
    for parameter in status.get("parameter", ()):
        name = parameter.get("name")
        if name == "type":
            kind = _text(parameter.get("valueCode"))
        elif name in {"notification-event", "notificationEvent"}:
            for part in parameter.get("part", ()):
                ref = (part.get("valueReference") or {}).get("reference")
                if part.get("name") == "focus" and ref:
                    focus.append(_relative(str(ref)))
    return kind, focus


def _text(value: object) -> str | None:
    return str(value) if value else None
