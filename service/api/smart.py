"""SMART App Launch 2.x of the web page: ``GET /smart/launch`` and ``GET /smart/callback``.

- ``/smart/launch?launch=...&iss=...`` (EHR launch) or ``/smart/launch[?iss=...]`` (standalone
  launch; ``PAINPATH_SMART_APP_DEFAULT_ISS`` when no ``iss``): the ``iss`` must be an allowed FHIR
  base; its ``.well-known/smart-configuration`` is read, a launch cookie is set
  (``service.api.smart_session``) and the browser is sent to the EHR's authorization endpoint.
- ``/smart/callback?code=...&state=...``: the cookie named by ``state`` must be there and
  valid; the code is exchanged, the patient in context read with the user's token and evaluated
  (``service.server.smart_app``), and the page answers with the decision trace and the result
  Bundle in it, rendered as for a pasted Bundle.

A launch that cannot go on answers the page with why in it (400 the request, 403 refused, 424
the EHR failed), never a 5xx. Tokens, codes and patient ids are not logged (the access log has
the route only, with the patient id hashed).
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
from service.server.connection import config_from_settings
from service.server.smart_app import (
    LaunchError,
    authorize_url,
    check_iss,
    code_challenge,
    discover,
    evaluate_patient,
    exchange_code,
    launch_scope,
    new_state,
    new_verifier,
)
from service.settings import Settings

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Param = Annotated[str | None, Query(max_length=4096)]


def _failed(exc: LaunchError) -> Response:
    return page_with({"smart": {"error": exc.message, "status": exc.status}}, status=exc.status)


def _redirect_uri(request: Request, settings: Settings) -> str:
    return settings.smart_app_redirect_url or f"{str(request.base_url).rstrip('/')}/smart/callback"


@router.get("/smart/launch")
async def smart_launch(
    request: Request, settings: SettingsDep, iss: Param = None, launch: Param = None
) -> Response:
    """Start an EHR launch (``launch`` and ``iss``) or a standalone launch."""
    client_id = settings.smart_app_client_id
    try:
        if not client_id:
            raise LaunchError(
                "SMART App Launch is not set up on this PainPath (PAINPATH_SMART_APP_CLIENT_ID)."
            )
        if launch is not None and not iss:
            raise LaunchError("An EHR launch must name its FHIR server (iss).")
        given = iss or settings.smart_app_default_iss
        if not given:
            raise LaunchError(
                "A standalone launch needs a FHIR server: iss, or PAINPATH_SMART_APP_DEFAULT_ISS."
            )
        base = check_iss(given, settings.smart_app_allowed_issuers)
        endpoints = await discover(
            base, transport=get_fhir_transport(request), timeout=settings.fhir_timeout_seconds
        )
    except LaunchError as exc:
        return _failed(exc)
    state, verifier = new_state(), new_verifier()
    redirect_uri = _redirect_uri(request, settings)
    scope = launch_scope(settings.smart_app_scope, standalone=launch is None, v1=endpoints.v1_only)
    url = authorize_url(
        endpoints, client_id=client_id, redirect_uri=redirect_uri, scope=scope, state=state,
        challenge=code_challenge(verifier), aud=base, launch=launch,
    )  # fmt: skip
    cookies = get_launch_cookies(request)
    sealed = cookies.seal(
        {"verifier": verifier, "iss": base, "token": endpoints.token_endpoint,
         "issuer": endpoints.issuer, "redirect": redirect_uri,
         "flow": "standalone" if launch is None else "ehr"}
    )  # fmt: skip
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        str(cookie_name(state)), sealed, max_age=cookies.ttl, path=COOKIE_PATH, httponly=True,
        samesite="lax", secure=redirect_uri.startswith("https:"),
    )  # fmt: skip
    return response


class CallbackQuery(BaseModel):
    """The authorization response (RFC 6749 §4.1.2): a code, or an error; always the state."""

    state: str | None = Field(default=None, max_length=4096)
    code: str | None = Field(default=None, max_length=4096)
    error: str | None = Field(default=None, max_length=4096)
    error_description: str | None = Field(default=None, max_length=4096)
    iss: str | None = Field(default=None, max_length=4096)  # RFC 9207: who answered


@router.get("/smart/callback")
async def smart_callback(
    request: Request,
    settings: SettingsDep,
    pipeline: PipelineDep,
    query: Annotated[CallbackQuery, Query()],
) -> Response:
    """The EHR's answer: exchange the code, read and evaluate the patient, show the page."""
    state, code, error = query.state, query.code, query.error
    name = cookie_name(state)
    launch = get_launch_cookies(request).open(request.cookies.get(name) if name else None)
    try:
        if launch is None:
            raise LaunchError(
                "This answer from the EHR matches no launch started in this browser (the state "
                "is unknown or the launch expired): start the launch again from the EHR."
            )
        if query.iss and launch.get("issuer") and query.iss != launch["issuer"]:
            raise LaunchError(
                "This answer names another authorization server than the EHR's (iss): it was "
                "not accepted."
            )
        if error:
            described = query.error_description
            said = f" ({described[:300]})" if described else ""
            raise LaunchError(
                f"The EHR did not authorize PainPath: {error[:100]}{said}.", status=403
            )
        if not code:
            raise LaunchError("The EHR's answer carries no authorization code.")
        transport = get_fhir_transport(request)
        secret = settings.smart_app_client_secret
        grant = await exchange_code(
            launch["token"], code=code, verifier=launch["verifier"],
            redirect_uri=launch["redirect"], client_id=str(settings.smart_app_client_id),
            client_secret=secret.get_secret_value() if secret else None,
            transport=transport, timeout=settings.fhir_timeout_seconds,
        )  # fmt: skip
        request.state.patients = [f"Patient/{grant.patient}"]  # hashed in the access log
        result = await evaluate_patient(
            grant, pipeline, config_from_settings(settings, launch["iss"]),
            everything=settings.fhir_everything, now=datetime.now(UTC), transport=transport,
        )  # fmt: skip
    except LaunchError as exc:
        response = _failed(exc)
    else:
        view = await anyio.to_thread.run_sync(lambda: trace_view(pipeline, result))
        view["result"] = result.bundle
        context = {"iss": launch["iss"], "patient": grant.patient, "flow": launch["flow"],
                   "scope": grant.scope}  # fmt: skip
        response = page_with({"smart": {"launch": context, "trace": view}})
    if name:
        response.delete_cookie(name, path=COOKIE_PATH)
    return response
