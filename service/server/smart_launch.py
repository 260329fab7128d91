"""The SMART launch of the web page as two steps, for the thin routes of ``service.api.smart``:

- :func:`start_launch` (``/smart/launch``): the checks of the launch request (set up, ``iss``
  given and allowed), discovery, and the authorization URL, with the :class:`PendingLaunch`
  the browser keeps (in the launch cookie) until the EHR answers;
- :func:`finish_launch` (``/smart/callback``): the checks of the authorization response against
  the pending launch (there is one for the ``state``, the ``iss`` is the authorization
  server's, no error, a code), the code exchange, and the read and evaluation of the patient in
  context.

The protocol pieces (PKCE, scopes, discovery, the token request, the read) are in
``service.server.smart_app``; every failure is its :class:`LaunchError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from service.app.pipeline import Pipeline, TriageResult
from service.server.connection import config_from_settings
from service.server.smart_app import (
    LaunchError,
    TokenGrant,
    Transport,
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

__all__ = [
    "AuthorizationAnswer",
    "Launched",
    "PendingLaunch",
    "StartedLaunch",
    "finish_launch",
    "start_launch",
]


@dataclass(frozen=True, slots=True)
class PendingLaunch:
    """What a launch must remember until the EHR answers (never a token)."""

    verifier: str  # the PKCE code_verifier
    iss: str  # the FHIR base
    token: str  # the token endpoint
    issuer: str  # the authorization server's issuer ("" when not advertised)
    redirect: str  # the redirect URI sent (the token request repeats it)
    flow: str  # "ehr" or "standalone"

    def as_dict(self) -> dict[str, str]:
        """For the launch cookie."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PendingLaunch | None:
        """From the launch cookie (None when there is none)."""
        return cls(**data) if data is not None else None


@dataclass(frozen=True, slots=True)
class StartedLaunch:
    """Where to send the browser, and what to keep under which ``state``."""

    authorize_url: str
    state: str
    pending: PendingLaunch


@dataclass(frozen=True, slots=True)
class AuthorizationAnswer:
    """The authorization response (RFC 6749 §4.1.2; ``iss`` from RFC 9207)."""

    code: str | None = None
    error: str | None = None
    error_description: str | None = None
    iss: str | None = None


@dataclass(frozen=True, slots=True)
class Launched:
    """A finished launch: the patient in context, evaluated."""

    pending: PendingLaunch
    grant: TokenGrant
    result: TriageResult

    def context(self) -> dict[str, str]:
        """Where the patient came from, for the page."""
        return {"iss": self.pending.iss, "patient": self.grant.patient,
                "flow": self.pending.flow, "scope": self.grant.scope}  # fmt: skip


def _redirect_uri(settings: Settings, base_url: str) -> str:
    return settings.smart_app_redirect_url or f"{base_url.rstrip('/')}/smart/callback"


async def start_launch(
    settings: Settings,
    *,
    iss: str | None,
    launch: str | None,
    base_url: str,
    transport: Transport | None,
) -> StartedLaunch:
    """An EHR launch (``launch`` and ``iss``) or a standalone one (``iss`` or the default);
    ``base_url`` is PainPath's as the request reached it (the default redirect URI)."""
    client_id = settings.smart_app_client_id
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
    endpoints = await discover(base, transport=transport, timeout=settings.fhir_timeout_seconds)
    state, verifier = new_state(), new_verifier()
    redirect_uri = _redirect_uri(settings, base_url)
    scope = launch_scope(settings.smart_app_scope, standalone=launch is None, v1=endpoints.v1_only)
    url = authorize_url(
        endpoints, client_id=client_id, redirect_uri=redirect_uri, scope=scope, state=state,
        challenge=code_challenge(verifier), aud=base, launch=launch,
    )  # fmt: skip
    pending = PendingLaunch(
        verifier=verifier, iss=base, token=endpoints.token_endpoint, issuer=endpoints.issuer,
        redirect=redirect_uri, flow="standalone" if launch is None else "ehr",
    )  # fmt: skip
    return StartedLaunch(url, state, pending)


async def finish_launch(  # noqa: PLR0913 - the launch, its answer, how and when, by keyword
    settings: Settings,
    pipeline: Pipeline,
    pending: PendingLaunch | None,
    answer: AuthorizationAnswer,
    *,
    now: datetime,
    transport: Transport | None,
) -> Launched:
    """Check the EHR's answer against the pending launch, exchange the code, read and evaluate
    the patient in context."""
    if pending is None:
        raise LaunchError(
            "This answer from the EHR matches no launch started in this browser (the state "
            "is unknown or the launch expired): start the launch again from the EHR."
        )
    if answer.iss and pending.issuer and answer.iss != pending.issuer:
        raise LaunchError(
            "This answer names another authorization server than the EHR's (iss): it was "
            "not accepted."
        )
    if answer.error:
        described = answer.error_description
        said = f" ({described[:300]})" if described else ""
        raise LaunchError(
            f"The EHR did not authorize PainPath: {answer.error[:100]}{said}.", status=403
        )
    if not answer.code:
        raise LaunchError("The EHR's answer carries no authorization code.")
    secret = settings.smart_app_client_secret
    grant = await exchange_code(
        pending.token, code=answer.code, verifier=pending.verifier,
        redirect_uri=pending.redirect, client_id=str(settings.smart_app_client_id),
        client_secret=secret.get_secret_value() if secret else None,
        transport=transport, timeout=settings.fhir_timeout_seconds,
    )  # fmt: skip
    result = await evaluate_patient(
        grant, pipeline, config_from_settings(settings, pending.iss),
        everything=settings.fhir_everything, now=now, transport=transport,
    )  # fmt: skip
    return Launched(pending, grant, result)
