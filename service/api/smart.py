"""SMART App Launch 2.x of the web page: ``GET /smart/launch`` and ``GET /smart/callback``.

- ``/smart/launch?launch=...&iss=...`` (EHR launch) or ``/smart/launch[?iss=...]`` (standalone
  launch; ``PAINPATH_SMART_APP_DEFAULT_ISS`` when no ``iss``): the ``iss`` must be an allowed FHIR
  base; its ``.well-known/smart-configuration`` is read, a launch cookie is set
  (``service.api.smart_session``) and the browser is sent to the EHR's authorization endpoint.
- ``/smart/callback?code=...&state=...``: the cookie named by ``state`` must be there and
  valid; the code is exchanged, the patient in context read with the user's token and evaluated
  (``service.server.smart_app``), and the page answers with the decision trace and the result
  Bundle in it, rendered as for a pasted Bundle.

Thin: the steps are ``service.server.smart_launch``'s. A launch that cannot go on answers the
page with why in it (400 the request, 403 refused, 424 the EHR failed), never a 5xx. Tokens,
codes and patient ids are not logged (the access log has the route only, with the patient id
hashed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from service.api.deps import PipelineDep, SettingsDep, get_fhir_transport, get_launch_cookies
from service.api.smart_session import COOKIE_PATH, cookie_name
from service.api.ui import page_with
from service.app.view import trace_view
from service.server.smart_app import LaunchError
from service.server.smart_launch import (
    AuthorizationAnswer,
    PendingLaunch,
    finish_launch,
    start_launch,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Param = Annotated[str | None, Query()]  # no length limit: any launch answers the page


def _failed(exc: LaunchError) -> Response:
    return page_with({"smart": {"error": exc.message, "status": exc.status}}, status=exc.status)


@router.get("/smart/launch")
async def smart_launch(
    request: Request, settings: SettingsDep, iss: Param = None, launch: Param = None
) -> Response:
    """Start an EHR launch (``launch`` and ``iss``) or a standalone launch."""
    try:
        started = await start_launch(
            settings, iss=iss, launch=launch, base_url=str(request.base_url),
            transport=get_fhir_transport(request),
        )  # fmt: skip
    except LaunchError as exc:
        return _failed(exc)
    cookies = get_launch_cookies(request)
    response = RedirectResponse(started.authorize_url, status_code=302)
    response.set_cookie(
        str(cookie_name(started.state)), cookies.seal(started.pending.as_dict()),
        max_age=cookies.ttl, path=COOKIE_PATH, httponly=True, samesite="lax",
        secure=started.pending.redirect.startswith("https:"),
    )  # fmt: skip
    return response


class CallbackQuery(BaseModel):
    """The authorization response (RFC 6749 §4.1.2): a code, or an error; always the state."""

    state: str | None = None
    code: str | None = None
    error: str | None = None
    error_description: str | None = None
    iss: str | None = Field(default=None, description="RFC 9207: who answered")


@router.get("/smart/callback")
async def smart_callback(
    request: Request,
    settings: SettingsDep,
    pipeline: PipelineDep,
    query: Annotated[CallbackQuery, Query()],
) -> Response:
    """The EHR's answer: exchange the code, read and evaluate the patient, show the page."""
    name = cookie_name(query.state)
    sealed = request.cookies.get(name) if name else None
    pending = PendingLaunch.from_dict(get_launch_cookies(request).open(sealed))
    answer = AuthorizationAnswer(query.code, query.error, query.error_description, query.iss)
    try:
        launched = await finish_launch(
            settings, pipeline, pending, answer, now=datetime.now(UTC),
            transport=get_fhir_transport(request),
        )  # fmt: skip
    except LaunchError as exc:
        response = _failed(exc)
    else:
        request.state.patients = [f"Patient/{launched.grant.patient}"]  # hashed in the log
        view = await anyio.to_thread.run_sync(lambda: trace_view(pipeline, launched.result))
        view["result"] = launched.result.bundle
        response = page_with({"smart": {"launch": launched.context(), "trace": view}})
    if name:
        response.delete_cookie(name, path=COOKIE_PATH)
    return response
