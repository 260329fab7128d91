"""PainPath's web page as a SMART App Launch 2.x app: the EHR side of the launch.

https://hl7.org/fhir/smart-app-launch/app-launch.html (STU 2.2). The routes (``service.api.smart``)
keep the browser's side (the launch cookie, the page), ``service.server.smart_launch`` runs the
two steps of a launch, and this module holds the protocol and talks to the EHR:

1. :func:`discover`: ``GET {iss}/.well-known/smart-configuration``: the authorization and token
   endpoints, the authorization server's ``issuer`` (an authorization response naming another
   ``iss``, RFC 9207, is refused) and the capabilities (``permission-v1`` alone: the EHR is
   asked for SMART v1 scopes).
2. :func:`authorize_url`: the authorization request of the authorization code grant with PKCE
   (``code_challenge_method=S256``, :func:`new_verifier`, :func:`code_challenge`), a random
   ``state`` (:func:`new_state`), ``aud`` = the FHIR base, and ``launch`` for an EHR launch;
   scopes from :func:`launch_scope` (``launch`` for an EHR launch, ``launch/patient`` for a
   standalone launch; v2 ``.rs`` turned into v1 ``.read`` for a v1-only EHR).
3. :func:`exchange_code`: the code and the PKCE verifier POSTed to the token endpoint (public
   client, or ``client_secret_basic`` when a secret is configured); the answer's
   ``access_token`` and ``patient`` (the patient in context) are kept, nothing is stored.
4. :func:`evaluate_patient`: the patient read from the EHR's FHIR server with the user's access
   token (the same pull and paging as ``Patient/{id}/$triage``: the Patient, then every type the
   rules read) and evaluated by the one Pipeline, with no write-back.

Every failure is a :class:`LaunchError` whose text says why for the page (never a token, code
or URL query); ``status`` is 400 (the request: iss not allowed, no launch), 403 (refused: the
user, the token endpoint or the FHIR server said no) or 424 (the EHR failed otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx

from service.app.pipeline import Pipeline, TriageResult
from service.fhir.errors import InputError
from service.fhir.ids import is_fhir_id
from service.server.credentials import BearerAuth
from service.server.errors import UpstreamError, UpstreamStatusError, redact_url
from service.server.fhir_server import ClientConfig, FhirServerClient
from service.server.http import json_object
from service.server.patient_triage import PatientTriage

__all__ = [
    "LaunchError",
    "SmartEndpoints",
    "TokenGrant",
    "authorize_url",
    "check_iss",
    "code_challenge",
    "discover",
    "evaluate_patient",
    "exchange_code",
    "launch_scope",
    "new_state",
    "new_verifier",
]

Transport = httpx.AsyncBaseTransport
_REFUSED = 403
_EHR_FAILED = 424


class LaunchError(Exception):
    """A launch that cannot go on; ``message`` is shown in the page."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class SmartEndpoints:
    """What PainPath uses of an EHR's ``.well-known/smart-configuration``."""

    authorization_endpoint: str
    token_endpoint: str
    capabilities: tuple[str, ...] = ()
    issuer: str = ""  # the authorization server's issuer, when the configuration says

    @property
    def v1_only(self) -> bool:
        """The EHR advertises SMART v1 scopes and not v2."""
        caps = set(self.capabilities)
        return "permission-v1" in caps and "permission-v2" not in caps


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """The token response: the access token, the patient in context and the granted scopes."""

    access_token: str
    patient: str
    scope: str


# --- PKCE, state, scopes and the authorization URL (pure) --------------------------------------
def new_state() -> str:
    """An unguessable ``state`` (256 bits, base64url)."""
    return secrets.token_urlsafe(32)


def new_verifier() -> str:
    """A PKCE ``code_verifier``: 43 characters of the unreserved set (RFC 7636 §4.1)."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    """The S256 ``code_challenge``: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def launch_scope(scope: str, *, standalone: bool, v1: bool) -> str:
    """The scopes to ask for: ``launch`` becomes ``launch/patient`` in a standalone launch (the
    EHR then picks the patient), and v2 ``.rs`` becomes v1 ``.read`` for a v1-only EHR."""
    asked = []
    for item in scope.split():
        if standalone and item == "launch":
            item = "launch/patient"
        if v1 and item.startswith(("patient/", "user/")) and item.endswith(".rs"):
            item = item[: -len(".rs")] + ".read"
        asked.append(item)
    return " ".join(asked)


def authorize_url(  # noqa: PLR0913 - the parameters of the OAuth request, by keyword
    endpoints: SmartEndpoints,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    challenge: str,
    aud: str,
    launch: str | None,
) -> str:
    """The authorization request (authorization code, PKCE S256) the browser is sent to."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": aud,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if launch is not None:
        params["launch"] = launch
    separator = "&" if urlsplit(endpoints.authorization_endpoint).query else "?"
    return endpoints.authorization_endpoint + separator + urlencode(params)


def check_iss(iss: str, allowed: list[str]) -> str:
    """``iss`` without a trailing slash when it is one of the allowed FHIR bases."""
    base = iss.strip().rstrip("/")
    if base not in {a.rstrip("/") for a in allowed}:
        shown = redact_url(base)[:200] or "(empty)"
        raise LaunchError(
            f"The FHIR server {shown} is not one PainPath is set up to launch from "
            "(PAINPATH_SMART_APP_ISSUERS)."
        )
    return base


# --- talking to the EHR ------------------------------------------------------------------------
def _http(transport: Transport | None, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)


def _endpoint(config: dict[str, object], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or urlsplit(value).scheme not in {"http", "https"}:
        raise LaunchError(f"The EHR's smart-configuration has no usable {key}.", status=_EHR_FAILED)
    return value


async def discover(iss: str, *, transport: Transport | None, timeout: float) -> SmartEndpoints:
    """The EHR's endpoints from ``{iss}/.well-known/smart-configuration``."""
    url = f"{iss}/.well-known/smart-configuration"
    try:
        async with _http(transport, timeout) as http:
            answer = await http.get(url, headers={"Accept": "application/json"})
        config = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise LaunchError(
            f"The EHR's SMART configuration ({redact_url(url)}) could not be read "
            f"({type(exc).__name__}).",
            status=_EHR_FAILED,
        ) from exc
    if not isinstance(config, dict):
        raise LaunchError(
            f"The EHR's SMART configuration ({redact_url(url)}) is not available "
            f"(HTTP {answer.status_code}).",
            status=_EHR_FAILED,
        )
    capabilities = config.get("capabilities")
    return SmartEndpoints(
        authorization_endpoint=_endpoint(config, "authorization_endpoint"),
        token_endpoint=_endpoint(config, "token_endpoint"),
        capabilities=tuple(str(c) for c in capabilities) if isinstance(capabilities, list) else (),
        issuer=str(config.get("issuer") or ""),
    )


async def exchange_code(  # noqa: PLR0913 - the parameters of the OAuth request, by keyword
    token_endpoint: str,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str | None,
    transport: Transport | None,
    timeout: float,
) -> TokenGrant:
    """POST the authorization code and the PKCE verifier; the access token and the patient."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    headers = {"Accept": "application/json"}
    if client_secret is None:
        form["client_id"] = client_id
    else:  # client_secret_basic: each part form-urlencoded first (RFC 6749 §2.3.1)
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    try:
        async with _http(transport, timeout) as http:
            answer = await http.post(token_endpoint, data=form, headers=headers)
    except httpx.HTTPError as exc:
        raise LaunchError(
            f"The EHR's token endpoint could not be reached ({type(exc).__name__}).",
            status=_EHR_FAILED,
        ) from exc
    body = json_object(answer)
    token = body.get("access_token")
    if answer.status_code != 200 or not isinstance(token, str) or not token:
        said = body.get("error_description") or body.get("error") or "no access token"
        status = _REFUSED if 400 <= answer.status_code < 500 else _EHR_FAILED
        raise LaunchError(
            f"The EHR's token endpoint refused the authorization code "
            f"(HTTP {answer.status_code}: {str(said)[:200]}).",
            status=status,
        )
    patient = body.get("patient")
    if not isinstance(patient, str) or not is_fhir_id(patient):
        raise LaunchError(
            "The EHR gave no patient in context (a FHIR id) with the access token: PainPath "
            "needs one (launch from a patient's chart, or choose a patient).",
            status=_EHR_FAILED,
        )
    scope = body.get("scope")
    return TokenGrant(token, patient, scope if isinstance(scope, str) else "")


async def evaluate_patient(  # noqa: PLR0913 - who, with what, how, when, by keyword
    grant: TokenGrant,
    pipeline: Pipeline,
    config: ClientConfig,
    *,
    everything: bool,
    now: datetime,
    transport: Transport | None,
) -> TriageResult:
    """Read the patient in context from the EHR's FHIR server (``config.base_url``, the iss) with
    the user's access token and evaluate it (``Patient/{id}/$triage``'s pull, with
    ``Patient/$everything`` when ``everything``, and evaluation; no write-back)."""
    client = FhirServerClient(config, auth=BearerAuth(grant.access_token), transport=transport)
    async with client:
        triage = PatientTriage(client, pipeline, everything=everything)
        try:
            run = await triage.run(grant.patient, pipeline.options(now=now), writeback=False)
        except (UpstreamError, InputError, ExceptionGroup) as exc:
            raise _read_failure(exc, grant) from exc
    return run.result


def _read_failure(exc: Exception, grant: TokenGrant) -> LaunchError:
    """The page's words for a failed read or evaluation (the first failure of a task group)."""
    leaf: BaseException = exc
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]
    if isinstance(leaf, UpstreamStatusError) and leaf.status in {401, 403}:
        return LaunchError(
            f"The EHR's FHIR server refused the access token (HTTP {leaf.status}) for "
            f"{leaf.method} {leaf.url}; granted scopes: {grant.scope or '(not said)'}.",
            status=_REFUSED,
        )
    if isinstance(leaf, UpstreamError):
        return LaunchError(leaf.describe(), status=_EHR_FAILED)
    if isinstance(leaf, InputError):
        return LaunchError(
            f"The patient's record could not be evaluated: {leaf}", status=_EHR_FAILED
        )
    return LaunchError(f"Reading the patient failed ({type(leaf).__name__}).", status=_EHR_FAILED)
