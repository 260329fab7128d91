"""CDS Hooks prefetch fallback: read what the client's prefetch lacks from its ``fhirServer``.

Uses the same FHIR client as ``Patient/$triage`` (paging, retries, typed errors) with the
request's ``fhirAuthorization`` bearer token - short-lived, never logged, never stored - and a
tighter time budget than the write-back path (CDS Hooks services should answer in about 500 ms;
Da Vinci CRD allows 5 s). Searches are concurrent. A failure raises
:class:`~service.server.errors.UpstreamError`; the API answers 412 (spec "Prefetch": data missing
and no FHIR access).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio

from service.cds_hooks.request import CdsRequest
from service.fhir.types import Json
from service.server.credentials import Auth, BearerAuth, NoAuth
from service.server.errors import UpstreamError, UpstreamNotFoundError
from service.server.fhir_server import ClientConfig, FhirServerClient
from service.server.http import Transport
from service.server.pull import search_params
from service.settings import Settings

__all__ = ["fetch_missing"]


async def fetch_missing(
    settings: Settings,
    cds: CdsRequest,
    missing: Mapping[str, str],
    next_pages: Mapping[str, str],
    *,
    transport: Transport | None = None,
) -> dict[str, list[Json]]:
    """Resources per prefetch key: ``missing`` maps key -> resource type (Patient is read by id,
    the others searched by patient); ``next_pages`` maps key -> a prefetch searchset's next link.
    """
    if cds.fhir_server is None:
        raise ValueError("the request names no fhirServer")
    patient_id, token = cds.patient_id, cds.access_token
    config = ClientConfig(
        base_url=cds.fhir_server,
        connect_timeout=min(
            settings.fhir_connect_timeout_seconds, settings.cds_fhir_timeout_seconds
        ),
        timeout=settings.cds_fhir_timeout_seconds,
        retries=min(settings.fhir_retries, 1),
        backoff=settings.fhir_backoff_seconds,
        backoff_max=settings.fhir_backoff_max_seconds,
        page_size=settings.fhir_page_size,
        max_pages=settings.fhir_max_pages,
    )
    auth: Auth = BearerAuth(token) if token else NoAuth()
    found: dict[str, list[Json]] = {}
    client = FhirServerClient(config, auth=auth, transport=transport)
    try:
        async with client, anyio.create_task_group() as group:
            for key, rtype in missing.items():
                group.start_soon(_fetch, client, found, key, rtype, patient_id)
            for key, url in next_pages.items():
                group.start_soon(_rest, client, found, key, url)
    except BaseExceptionGroup as failed:
        raise _first_upstream(failed) from None
    return found


def _first_upstream(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first FHIR server failure of a task group (the group itself if there is none)."""
    for exc in group.exceptions:
        if isinstance(exc, UpstreamError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_upstream(exc)
            if found is not exc:
                return found
    return group


async def _fetch(
    client: FhirServerClient, found: dict[str, list[Json]], key: str, rtype: str, patient_id: str
) -> None:
    if rtype == "Patient":
        try:
            found[key] = [await client.read("Patient", patient_id)]
        except UpstreamNotFoundError:
            found[key] = []
        return
    found[key] = await client.search(rtype, search_params(rtype, patient_id))


async def _rest(client: FhirServerClient, found: dict[str, list[Json]], key: str, url: str) -> None:
    """The remaining pages of a prefetch searchset (its ``next`` link onwards)."""
    resources: Sequence[Json] = []
    async for page in client.pages(url):
        resources = [
            *resources,
            *(
                e["resource"]
                for e in page.get("entry", [])
                if isinstance(e, dict)
                and isinstance(e.get("resource"), dict)
                and (e.get("search") or {}).get("mode") != "outcome"
            ),
        ]
    found[key] = list(resources)
