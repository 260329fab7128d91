"""Structured logs: one JSON line per request, patient ids hashed, and no PHI from the input -
names, birth dates, free text, identifiers - in any log line or error body."""

from __future__ import annotations

import copy
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir_testkit import CAUDA, FHIR_JSON, Json, case_bundle

from service.api.app import create_app
from service.api.observability import JsonFormatter, PatientHasher
from service.settings import Settings

PHI = {
    "name": "Quorglebottom",
    "given": "Zephyrine",
    "birth": "1959-07-23",
    "mrn": "MRN-Q7X4-99812",
    "ssn": "987-65-4329",
    "note": "lives with her daughter Ximenia near Pfeffernusskirche",
    "patient": "pt-quorgle-4242",
    "phone": "+44 7700 900461",
}


def phi_bundle() -> Json:
    bundle = case_bundle(CAUDA)
    text = json.dumps(bundle).replace("patient-1", PHI["patient"])
    bundle = dict(json.loads(text))
    patient = bundle["entry"][0]["resource"]
    patient["name"] = [{"family": PHI["name"], "given": [PHI["given"]]}]
    patient["birthDate"] = PHI["birth"]
    patient["identifier"] = [
        {"system": "https://ehr.example.org/mrn", "value": PHI["mrn"]},
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": PHI["ssn"]},
    ]
    patient["telecom"] = [{"system": "phone", "value": PHI["phone"]}]
    bundle["entry"][1]["resource"]["note"] = [{"text": PHI["note"]}]
    return bundle


def broken(bundle: Json) -> list[Json]:
    """PHI in places that make the body invalid (so it reaches the error path)."""
    variants = []
    for path, value in [
        (("entry", 0, "resource", "name"), PHI["name"]),  # string, not array
        (("entry", 0, "resource", "birthDate"), PHI["birth"] + "T" + PHI["given"]),
        (("entry", 0, "resource", "gender"), PHI["mrn"]),  # not in the value set
        (("entry", 0, "resource", "identifier", 0, "value"), {"v": PHI["ssn"]}),
        (("entry", 1, "resource", "note"), PHI["note"]),
        (("entry", 1, "resource", "code", "text"), [PHI["note"]]),
        (("entry", 0, "resource", "telecom", 0, "period"), PHI["phone"]),
    ]:
        copied = copy.deepcopy(bundle)
        node: Any = copied
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        variants.append(copied)
    return variants


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every record of every logger, formatted as production formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(PatientHasher(b"test-salt")))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _client() -> TestClient:
    settings = Settings(_env_file=None, fhir_server=None, log_level="DEBUG", log_salt="test-salt")
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_no_phi_in_logs_or_error_bodies(json_log: io.StringIO) -> None:
    bodies: list[str] = []
    with _client() as client:
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)  # the app's lifespan set its own level
        ok = client.post("/fhir/$triage", json=phi_bundle(), headers={"X-Request-ID": "phi-1"})
        assert ok.status_code == 200, ok.text
        for index, variant in enumerate(broken(phi_bundle())):
            answer = client.post("/fhir/$triage", json=variant)
            assert answer.status_code == 400, (index, answer.text)
            bodies.append(answer.text)
        as_params = {"resourceType": "Parameters", "parameter": [
            {"name": "bundle", "resource": broken(phi_bundle())[0]}]}  # fmt: skip
        bodies.append(client.post("/fhir/$triage", json=as_params).text)
        bodies.append(client.post("/fhir/$triage", content=json.dumps(phi_bundle())[:-3],
                                  headers={"Content-Type": FHIR_JSON}).text)  # fmt: skip
    logs = json_log.getvalue()
    lines = [json.loads(line) for line in logs.splitlines()]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) == 10
    assert requests[0]["request_id"] == "phi-1"
    assert requests[0]["route"] == "/fhir/$triage"
    assert requests[0]["status"] == 200
    assert requests[0]["duration_ms"] > 0
    assert requests[0]["patients"] == [PatientHasher(b"test-salt")(f"Patient/{PHI['patient']}")]
    assert {r["outcome"] for r in requests[1:]} == {"invalid"}
    for label, secret in PHI.items():
        for text in (logs, *bodies):
            assert secret not in text, f"{label} leaked: {text[:300]}"


def test_patient_path_ids_are_hashed_and_request_id_echoed(json_log: io.StringIO) -> None:
    with _client() as client:
        logging.getLogger().setLevel(logging.DEBUG)
        answer = client.post(f"/fhir/Patient/{PHI['patient']}/$triage")
    assert answer.status_code == 422  # no FHIR server configured
    assert len(answer.headers["x-request-id"]) == 32
    logs = json_log.getvalue()
    assert PHI["patient"] not in logs
    (line,) = [json.loads(x) for x in logs.splitlines() if '"event":"request"' in x]
    assert line["route"] == "/fhir/Patient/{patient_id}/$triage"
    assert len(line["patients"]) == 1


def test_formatter_redacts_patient_references() -> None:
    hasher = PatientHasher(b"k")
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "GET %s", ("a/Patient/123",), None
    )
    line = json.loads(JsonFormatter(hasher).format(record))
    assert line["msg"] == f"GET a/Patient/#{hasher('123')}"


def test_formatter_redacts_url_encoded_patient_references() -> None:
    """httpx logs each outbound request's URL: a search's ``patient=Patient%2F<id>`` is hashed."""
    hasher = PatientHasher(b"k")
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "GET %s", ("/fhir/Condition?patient=Patient%2F123",),
        None,
    )  # fmt: skip
    line = json.loads(JsonFormatter(hasher).format(record))
    assert line["msg"] == f"GET /fhir/Condition?patient=Patient/#{hasher('123')}"
