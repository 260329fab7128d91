"""Fixtures of the client tests: the in-memory FHIR server and a recording ``sleep``."""

from __future__ import annotations

import pytest
from fake_fhir_server import SAMPLES, FakeFhirServer, Sleeps


@pytest.fixture
def server() -> FakeFhirServer:
    """A fake server holding the persistent-sciatica sample patient (Patient/patient-1)."""
    fake = FakeFhirServer()
    fake.load_bundle(SAMPLES / "persistent-sciatica.json")
    return fake


@pytest.fixture
def sleeps() -> Sleeps:
    """A fake ``sleep`` recording the delays it was asked for."""
    return Sleeps()
