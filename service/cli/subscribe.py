"""``painpath subscribe``: create PainPath's Subscriptions on a FHIR server.

Criteria mode (default): one R4 rest-hook Subscription per watched type (Condition,
Observation, QuestionnaireResponse), payload ``application/fhir+json``; HAPI FHIR and
sekmet-fhir then PUT each created/updated resource to ``{endpoint}/{Type}/{id}``. Topic mode
(``--topic``): PainPath's SubscriptionTopic (an R4 ``Basic``) and one Backport IG Subscription on
it. Resources are PUT at deterministic ids, so running the command again updates them. The
command waits briefly for the server to move each Subscription out of ``requested``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from service.fhir.types import Json
from service.server.connection import client_from_settings
from service.server.fhir_server import FhirServerClient
from service.settings import Settings
from service.subscriptions.resources import (
    WATCHED_TYPES,
    criteria_subscription,
    hook_endpoint,
    topic_basic,
    topic_subscription,
)

__all__ = ["add_parser", "run_subscribe", "subscribe"]

_ACTIVATION_WAIT_S = 10.0


def add_parser(commands: Any) -> None:
    """Register the ``subscribe`` sub-command."""
    parser = commands.add_parser(
        "subscribe",
        help="create PainPath's Subscriptions on a server",
        description="Create (or update) PainPath's Subscriptions on a FHIR server so that it "
        "notifies PainPath of new and changed records; PainPath then re-evaluates the patient.",
    )
    parser.add_argument("--server", help="FHIR base URL (default PAINPATH_FHIR_SERVER)")
    parser.add_argument(
        "--endpoint",
        help="PainPath's URL as the FHIR server reaches it, e.g. http://painpath:8080 "
        "(/hooks/fhir is appended; default PAINPATH_SUBSCRIPTION_ENDPOINT)",
    )
    parser.add_argument(
        "--types",
        default=",".join(WATCHED_TYPES),
        help="comma-separated resource types to watch (default: %(default)s)",
    )
    parser.add_argument("--topic", action="store_true", help="topic-based (Backport IG) instead")


def _resources(
    endpoint: str, types: tuple[str, ...], *, topic: bool, token: str | None
) -> list[Json]:
    if topic:
        return [topic_basic(types), topic_subscription(endpoint, token)]
    return [criteria_subscription(rtype, endpoint, token) for rtype in types]


async def subscribe(
    client: FhirServerClient,
    endpoint: str,
    *,
    types: tuple[str, ...] = WATCHED_TYPES,
    topic: bool = False,
    token: str | None = None,
) -> list[Json]:
    """PUT the Subscriptions (and topic) and return the Subscriptions as the server last showed."""
    subscriptions = []
    for resource in _resources(hook_endpoint(endpoint), types, topic=topic, token=token):
        stored = await client.put(resource["resourceType"], resource["id"], resource)
        if resource["resourceType"] == "Subscription":
            subscriptions.append(stored or resource)
    deadline = time.monotonic() + _ACTIVATION_WAIT_S
    while time.monotonic() < deadline and any(
        s.get("status") == "requested" for s in subscriptions
    ):
        await asyncio.sleep(0.25)
        subscriptions = [await client.read("Subscription", s["id"]) for s in subscriptions]
    return subscriptions


async def _run(settings: Settings, server: str, endpoint: str, args: argparse.Namespace) -> int:
    token = settings.subscription_token.get_secret_value() if settings.subscription_token else None
    types = tuple(t.strip() for t in args.types.split(",") if t.strip())
    async with client_from_settings(settings, server) as client:
        found = await subscribe(client, endpoint, types=types, topic=args.topic, token=token)
    for sub in found:
        error = f"  ({sub['error']})" if sub.get("error") else ""
        print(f"Subscription/{sub['id']}  {sub.get('criteria')}  -> {sub.get('status')}{error}")
    print(f"Notifications go to {hook_endpoint(endpoint)}")
    return 0 if all(s.get("status") == "active" for s in found) else 1


def run_subscribe(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point of ``painpath subscribe``."""
    server = args.server or settings.fhir_server
    endpoint = args.endpoint or settings.subscription_endpoint
    if not server or not endpoint:
        print("painpath subscribe needs --server (or PAINPATH_FHIR_SERVER) and --endpoint "
              "(or PAINPATH_SUBSCRIPTION_ENDPOINT)")  # fmt: skip
        return 2
    return asyncio.run(_run(settings, server, endpoint, args))
