"""The running app's FHIR-server side, built from the settings in one place.

``connect(settings, pipeline)`` returns ``None`` when ``PAINPATH_FHIR_SERVER`` is unset (the API
then answers 422); otherwise the client (with its auth), the patient-triage use case and the
re-evaluation queue of the subscription receiver, closed together by ``aclose``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from service.app.pipeline import Pipeline
from service.server.connection import client_from_settings
from service.server.fhir_server import FhirServerClient
from service.server.http import Transport
from service.server.patient_triage import PatientTriage
from service.settings import Settings
from service.subscriptions.reevaluation import Reevaluator

__all__ = ["ServerConnection", "connect"]

_PING_OVERLAP = timedelta(seconds=5)  # clock skew between PainPath and the server


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class ServerConnection:
    """The FHIR server side of a running app."""

    client: FhirServerClient
    triage: PatientTriage
    reevaluator: Reevaluator
    watermark: datetime = field(default_factory=_now)

    def take_watermark(self) -> str:
        """The instant from which a payload-less ping must look for changes; advances it."""
        since = self.watermark - _PING_OVERLAP
        self.watermark = _now()
        return since.isoformat().replace("+00:00", "Z")

    async def aclose(self) -> None:
        """Stop the queue, then close the connection pool."""
        await self.reevaluator.aclose()
        await self.client.aclose()


def connect(
    settings: Settings, pipeline: Pipeline, *, transport: Transport | None = None
) -> ServerConnection | None:
    """The FHIR server connection, or None when no server is configured."""
    if not settings.fhir_server:
        return None
    client = client_from_settings(settings, settings.fhir_server, transport=transport)
    triage = PatientTriage(
        client,
        pipeline,
        everything=settings.fhir_everything,
    )
    queue = Reevaluator(triage.reevaluate, delay=settings.subscription_debounce_seconds)
    return ServerConnection(client, triage, queue)
