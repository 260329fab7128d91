"""Async FHIR R4 REST client for the configured server (httpx; the transport is injectable).

- Reads, searches and ``Patient/$everything`` follow ``Bundle.link[next]`` verbatim
  (https://hl7.org/fhir/R4/http.html#paging), except that a next link pointing at another
  scheme/host/port than the configured base (HAPI behind a proxy, hapi-fhir #2885) is rebased on
  the configured base. Paging is bounded (``max_pages``) and a link that repeats stops it. A
  search whose pages end before the ``total`` the server reported (a server that pages without
  next links) is an error, never a silently shorter record.
- Timeouts, connection errors, 429 and 5xx are retried with exponential backoff and jitter, a
  bounded number of times (``Retry-After`` honoured up to the cap). A request that may have reached
  the server is retried only when it is idempotent (GET, PUT, and PainPath's transactions, which
  are PUTs at deterministic ids); a 401 drops a cached token and is retried once.
- Failures raise the typed errors of :mod:`service.server.errors`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlsplit

import anyio
import httpx
import orjson

from service.fhir.ids import path_segment
from service.fhir.types import Json
from service.server.credentials import Auth, NoAuth
from service.server.errors import (
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from service.server.paging import next_link, rebase

__all__ = ["ClientConfig", "FhirServerClient"]

Params = Sequence[tuple[str, str]]
FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
log = logging.getLogger("painpath.fhir_server")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Connection settings of one FHIR server."""

    base_url: str
    connect_timeout: float = 5.0
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 0.25
    backoff_max: float = 4.0
    page_size: int = 100
    max_pages: int = 100


def _outcome_of(response: httpx.Response) -> Json | None:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return (
        body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None
    )


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("retry-after", "") if response is not None else ""
    return float(value) if value.strip().isdigit() else None


class FhirServerClient:
    """One FHIR server; use as ``async with FhirServerClient(config) as fhir: …``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        auth: Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.base = config.base_url.rstrip("/")
        self.auth = auth or NoAuth()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._warned: set[tuple[str, str]] = set()
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            headers={"Accept": FHIR_JSON},
            trust_env=False,  # settings are the only configuration (no proxy variables)
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def url(self, path: str) -> str:
        """The absolute URL of a path relative to the base (``Patient/1``)."""
        return f"{self.base}/{path.lstrip('/')}" if path else self.base

    # --- reads and searches -------------------------------------------------------------------
    def resource_url(self, rtype: str, rid: str, operation: str = "") -> str:
        """The URL of ``{type}/{id}`` (and an operation on it), each part one percent-encoded
        path segment. An id that is not a segment (``.``, ``..``, empty: it would name another
        path on the server, e.g. its base) can only have come from a server's data here (the
        API refuses it from callers), so it is an :class:`UpstreamStatusError`."""
        try:
            path = f"{path_segment(rtype)}/{path_segment(rid)}"
        except ValueError as exc:
            raise UpstreamStatusError(
                f"a {rtype[:40]} reference has an id that is not a FHIR id",
                request=("GET", self.base),
            ) from exc
        return self.url(f"{path}/{operation}" if operation else path)

    async def read(self, rtype: str, rid: str) -> Json:
        """``GET {type}/{id}``; :class:`UpstreamNotFoundError` for 404/410."""
        return await self._json("GET", self.resource_url(rtype, rid), not_found_is_error=True)

    async def search(self, rtype: str, params: Params = ()) -> list[Json]:
        """Every matching (and included) resource, following next links."""
        query = [*params, ("_count", str(self.config.page_size))]
        return await self._collect(self.url(rtype), query)

    async def everything(self, patient_id: str, types: Sequence[str] = ()) -> list[Json]:
        """``Patient/{id}/$everything`` (optionally ``_type``-limited), every page."""
        query = [("_count", str(self.config.page_size))]
        if types:
            query.append(("_type", ",".join(types)))
        return await self._collect(self.resource_url("Patient", patient_id, "$everything"), query)

    async def pages(self, url: str, params: Params = ()) -> AsyncIterator[Json]:
        """The searchset Bundles of a search, first page from ``url`` + ``params``."""
        seen: set[str] = set()
        next_url: str | None = url
        query: Params | None = params
        for _ in range(self.config.max_pages):
            if next_url is None:
                return
            bundle = await self._json("GET", next_url, params=query)
            if bundle.get("resourceType") != "Bundle":
                raise UpstreamStatusError(
                    f"expected a searchset Bundle, got {bundle.get('resourceType')!r}",
                    request=("GET", next_url),
                )
            yield bundle
            link = next_link(bundle)
            next_url, query = (rebase(link, self.base), None) if link else (None, None)
            if next_url in seen:
                raise UpstreamStatusError("paging repeats a next link", request=("GET", url))
            seen.add(next_url or "")
        if next_url is not None:
            raise UpstreamError(
                f"paging did not end within {self.config.max_pages} pages", request=("GET", url)
            )

    async def _collect(self, url: str, params: Params) -> list[Json]:
        found: dict[tuple[str, str], Json] = {}
        matched: set[tuple[str, str]] = set()
        total: int | None = None
        async for bundle in self.pages(url, params):
            if total is None and type(bundle.get("total")) is int:
                total = bundle["total"]
            for entry in bundle.get("entry", []):
                resource = entry.get("resource")
                if not isinstance(resource, dict):
                    continue
                mode = (entry.get("search") or {}).get("mode")
                if mode == "outcome":
                    self._log_outcome(url, resource)
                    continue
                key = (str(resource.get("resourceType")), str(resource.get("id", len(found))))
                if mode != "include":
                    matched.add(key)
                found.setdefault(key, resource)
        if total is not None and total > len(matched):
            # The pages ended (no next link) short of the matches the server counted: some
            # servers page without links (Medplum's in-memory repository). Evaluating what came
            # would silently leave evidence (a red flag) out, so the read fails instead.
            raise UpstreamStatusError(
                f"the search matched {total} resources but its pages held {len(matched)} and no "
                "next link: the server's paging is incomplete (a larger fhir_page_size may help)",
                request=("GET", url),
            )
        return list(found.values())

    def _log_outcome(self, url: str, outcome: Json) -> None:
        """Log a search's warnings once per path and text (e.g. an ignored search parameter)."""
        for item in outcome.get("issue", []):
            if isinstance(item, dict) and item.get("severity") in {"warning", "error", "fatal"}:
                said = (urlsplit(url).path, str(item.get("diagnostics") or item.get("code")))
                if said not in self._warned:
                    self._warned.add(said)
                    log.warning("search %s: server %s: %s", said[0], item["severity"], said[1])

    # --- writes --------------------------------------------------------------------------------
    async def transaction(self, bundle: Json) -> Json:
        """POST a transaction Bundle to the base; retried, so it must be idempotent."""
        response = await self.request("POST", self.base, body=bundle, idempotent=True)
        return _parsed(response, "POST", not_found_is_error=False)

    async def put(self, rtype: str, rid: str, resource: Json) -> Json:
        """``PUT {type}/{id}`` (update or create at a client-chosen id)."""
        return await self._json("PUT", self.resource_url(rtype, rid), body=resource)

    # --- the request loop ----------------------------------------------------------------------
    async def _json(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Json | None = None,
        not_found_is_error: bool = False,
    ) -> Json:
        response = await self.request(method, url, params=params, body=body)
        return _parsed(response, method, not_found_is_error=not_found_is_error)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Json | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """One logical request with retries; returns the final response (any status < 500)."""
        retryable = method in {"GET", "HEAD", "PUT", "DELETE"} if idempotent is None else idempotent
        content = orjson.dumps(body) if body is not None else None
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            response, error = await self._attempt(method, url, params, content, attempt)
            if response is not None and response.status_code == 401 and not refreshed:
                self.auth.invalidate()
                refreshed = True
                attempt -= 1
                continue
            if error is None and response is not None:
                return response
            error = error or UpstreamError("no answer", request=(method, url))
            if attempt > self.config.retries or not (retryable or _not_sent(error)):
                raise error
            await self._sleep(self._delay(attempt, response))

    async def _attempt(
        self, method: str, url: str, params: Params | None, content: bytes | None, attempt: int
    ) -> tuple[httpx.Response | None, UpstreamError | None]:
        headers = await self.auth.headers(self._http)
        if content is not None:
            headers["Content-Type"] = FHIR_JSON
        try:
            response = await self._http.request(
                method, url, params=list(params) if params else None, content=content,
                headers=headers,
            )  # fmt: skip
        except httpx.TimeoutException as exc:
            kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
            err: UpstreamError = UpstreamTimeoutError(
                f"no answer within the {kind} timeout", request=(method, url), attempts=attempt
            )
            err.__cause__ = exc
            return None, err
        except httpx.TransportError as exc:
            err = UpstreamUnavailableError(
                f"connection failed ({type(exc).__name__})", request=(method, url),
                attempts=attempt,
            )  # fmt: skip
            err.__cause__ = exc
            return None, err
        if response.status_code in RETRY_STATUSES:
            failed = _status_error(response, method, not_found_is_error=False)
            failed.attempts = attempt
            return response, failed
        return response, None

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        cap = self.config.backoff_max
        hinted = _retry_after(response)
        if hinted is not None:
            return min(hinted, cap)
        ceiling = min(cap, self.config.backoff * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)  # "equal jitter"


def _parsed(response: httpx.Response, method: str, *, not_found_is_error: bool) -> Json:
    if response.status_code >= 400:
        raise _status_error(response, method, not_found_is_error=not_found_is_error)
    where = (method, str(response.request.url))
    try:
        parsed = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError as exc:
        raise UpstreamStatusError(
            "the answer is not JSON", request=where, status=response.status_code
        ) from exc
    if not isinstance(parsed, dict):
        raise UpstreamStatusError("the answer is not a FHIR resource", request=where)
    return parsed


def _not_sent(error: UpstreamError | None) -> bool:
    """True when the request never reached the server (safe to retry any method)."""
    cause = error.__cause__ if error else None
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout)


def _status_error(
    response: httpx.Response, method: str, *, not_found_is_error: bool
) -> UpstreamStatusError:
    status = response.status_code
    url = str(response.request.url)
    cls = (
        UpstreamNotFoundError
        if not_found_is_error and status in {404, 410}
        else UpstreamStatusError
    )
    reason = response.reason_phrase or "error"
    return cls(
        f"answered {status} {reason}",
        request=(method, url),
        status=status,
        outcome=_outcome_of(response),
    )
