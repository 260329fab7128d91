"""Small outbound HTTP helpers for the rest of the service: httpx is imported only in
``service.server`` (an import-linter contract), so callers elsewhere use these.

- :data:`Transport`: the injectable httpx transport type (tests put fault injectors there).
- :func:`get_json`: one GET of a JSON document (a JWKS for inbound token checks).
- :func:`json_object`: an answer's JSON object, or nothing (token and discovery answers).
- :func:`probe_metadata`: the readiness probe of the configured FHIR server (``GET /metadata``).
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["FetchError", "Transport", "get_json", "json_object", "probe_metadata"]

Transport = httpx.AsyncBaseTransport


class FetchError(Exception):
    """A document could not be read (network failure, HTTP error status or not JSON)."""


async def get_json(url: str, *, transport: Transport | None, timeout: float) -> Any:
    """GET ``url`` and parse its JSON body; :class:`FetchError` on any failure."""
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as http:
            response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise FetchError(f"{type(exc).__name__}") from exc


def json_object(answer: httpx.Response) -> dict[str, object]:
    """The answer's JSON object, or ``{}`` when it is not JSON or not an object."""
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def probe_metadata(base: str, *, transport: Transport | None, timeout: float) -> str:
    """``ok`` when ``{base}/metadata`` answers 200; else ``HTTP nnn``, ``timeout`` or
    ``unreachable (…)`` (no URL or body in the answer: it is shown on /readyz)."""
    url = f"{base.rstrip('/')}/metadata"
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            answer = await client.get(url, headers={"Accept": "application/fhir+json"})
    except httpx.TimeoutException:
        return "timeout"
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}"
