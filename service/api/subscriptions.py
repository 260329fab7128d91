"""Subscription notification receiver at ``/hooks/fhir`` (the endpoint PainPath registers).

- ``PUT|POST /hooks/fhir/{type}/{id}``: R4 rest-hook with payload (HAPI, sekmet-fhir);
- ``POST /hooks/fhir``: an empty ping, a payload-search Bundle, or a topic-based (Backport IG)
  notification Bundle (handshake, heartbeat, event-notification);
- ``DELETE /hooks/fhir/{type}/{id}``: acknowledged; nothing to re-evaluate from.

Every notification is answered at once with 200 and an OperationOutcome; the work (re-evaluation
and write-back, coalesced per patient) runs in the background, see
``service.subscriptions.reevaluation``. With ``PAINPATH_SUBSCRIPTION_TOKEN`` set, notifications must
carry ``Authorization: Bearer <token>`` (``painpath subscribe`` puts it in ``channel.header``).
"""

from __future__ import annotations

import hmac
import logging
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from service.api.deps import FhirIdPath, get_settings, server_connection
from service.api.responses import fhir_response
from service.fhir.errors import InputError
from service.fhir.outcome import issue, operation_outcome
from service.subscriptions.connection import ServerConnection
from service.subscriptions.notifications import (
    TRIGGER_TYPES,
    Notice,
    read_notification,
    read_resource_notification,
)
from service.subscriptions.resources import HOOK_PATH

__all__ = ["HOOK_PATH", "router"]

_MAX_NOTIFICATION_BYTES = 10 * 1024 * 1024
log = logging.getLogger("painpath.subscriptions")
router = APIRouter(tags=["subscriptions"])
TypePath = Annotated[str, Path(pattern=r"^[A-Z][A-Za-z]{1,63}$")]
IdPath = FhirIdPath


def _authorised(request: Request) -> ServerConnection:
    server = server_connection(request, "the subscription receiver")
    token = get_settings(request).subscription_token
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}".encode()
        sent = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(sent, expected):
            raise InputError.one("security", "Notification without the subscription's token")
    return server


async def _json_body(request: Request) -> dict[str, Any] | None:
    body = await request.body()
    if len(body) > _MAX_NOTIFICATION_BYTES:
        raise InputError.one("too-costly", "Notification body over 10 MiB")
    if not body.strip():
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError.one("invalid", f"Notification body is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InputError.one("structure", "Notification body is not a FHIR resource")
    return parsed


def _dispatch(server: ServerConnection, notice: Notice) -> Response:
    queue, triage = server.reevaluator, server.triage
    for patient_id in sorted(notice.patients):
        queue.notify(patient_id)
    for ref in sorted(notice.focus):
        queue.notify_later(partial(triage.patient_of, ref), ref)
    if notice.kind == "ping":
        since = server.take_watermark()
        types = tuple(sorted(TRIGGER_TYPES))
        queue.notify_later(partial(triage.changed_since, since, types), f"a ping (since {since})")
    said = (
        f"{notice.kind}: re-evaluating {len(notice.patients)} patient(s), "
        f"reading {len(notice.focus)} focus resource(s), ignored {len(notice.ignored)}"
    )
    log.info(
        "notification %s; patients=%s focus=%s ignored=%s",
        notice.kind, sorted(notice.patients), sorted(notice.focus), notice.ignored,
    )  # fmt: skip
    return fhir_response(operation_outcome(None, [issue("information", "informational", said)]))


@router.post(HOOK_PATH)
async def notification(request: Request) -> Response:
    """Empty ping, payload-search Bundle or topic-based notification Bundle."""
    server = _authorised(request)
    return _dispatch(server, read_notification(await _json_body(request)))


@router.put(HOOK_PATH + "/{rtype}/{rid}")
async def resource_notification(request: Request, rtype: TypePath, rid: IdPath) -> Response:
    """Rest-hook notification carrying the created/updated resource (or nothing)."""
    server = _authorised(request)
    notice = read_resource_notification(rtype, rid, await _json_body(request))
    return _dispatch(server, notice)


@router.post(HOOK_PATH + "/{rtype}/{rid}")
async def resource_notification_post(request: Request, rtype: TypePath, rid: IdPath) -> Response:
    """The same, from servers that POST to the resource URL."""
    return await resource_notification(request, rtype, rid)


@router.delete(HOOK_PATH + "/{rtype}/{rid}")
async def deleted_notification(request: Request, rtype: TypePath, rid: IdPath) -> Response:
    """A deletion: nothing left to read its patient from; acknowledged."""
    _authorised(request)
    log.info("notification delete %s/%s: acknowledged, nothing to re-evaluate", rtype, rid)
    said = f"{rtype}/{rid} deletion acknowledged"
    return fhir_response(operation_outcome(None, [issue("information", "informational", said)]))
