"""``/docs`` in headless Chromium with the network outside PainPath cut off: Swagger UI renders
from PainPath's own files and shows every operation, with the request-body examples of
``$triage``, ``Patient/{id}/$triage`` and the CDS services (screenshot
``test-artifacts/docs-offline.png``)."""

from __future__ import annotations

import json
from typing import Any

from service.api.docs import request_bodies


def test_docs_render_offline_from_painpaths_own_files(
    docs_page: dict[str, Any], base_url: str
) -> None:
    assert docs_page["blocked"] == []  # nothing was even tried outside PainPath
    assert docs_page["failed"] == []
    assert docs_page["console"] == []
    assert f"{base_url}/docs-assets/swagger-ui-bundle.js" in docs_page["requests"]
    assert all(url.startswith(base_url) for url in docs_page["requests"])
    assert docs_page["title"].startswith("PainPath")


def test_docs_show_the_operations(docs_page: dict[str, Any]) -> None:
    operations = set(docs_page["operations"])
    assert {
        "GET /fhir/metadata",
        "POST /fhir/$triage",
        "POST /fhir/Patient/{patient_id}/$triage",
        "GET /cds-services",
        "POST /cds-services/{service_id}",
    } <= operations


def test_docs_offer_the_request_examples(docs_page: dict[str, Any]) -> None:
    bodies = request_bodies()
    for key, path, media in (
        ("triage", "/fhir/$triage", "application/fhir+json"),
        ("patientTriage", "/fhir/Patient/{patient_id}/$triage", "application/fhir+json"),
        ("cds", "/cds-services/{service_id}", "application/json"),
    ):
        examples = bodies[path]["content"][media]["examples"]
        shown = docs_page[key]
        assert shown["examples"] == [e["summary"] for e in examples.values()], key
        first = next(iter(examples.values()))["value"]
        assert json.loads(shown["shown"]) == first, key  # the first example, ready to send
