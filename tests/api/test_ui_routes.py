"""The web page's routes: ``GET /`` and its assets, the bundled samples (built from golden
cases) and ``POST /ui/summary`` (the decision trace as JSON; the same errors as ``$triage``)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from fhir_testkit import CASES, ROOT

SAMPLES = ROOT / "service" / "web" / "samples"


def test_page_and_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/ui/painpath.js"' in page.text
    assert client.get("/ui/painpath.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/../app.py").status_code == 404


def test_samples_are_golden_inputs(client: TestClient) -> None:
    index = client.get("/ui/samples/index.json").json()["samples"]
    assert 4 <= len(index) <= 7
    for sample in index:
        case = json.loads((CASES / f"{sample['id']}.json").read_text(encoding="utf-8"))
        assert client.get(f"/ui/samples/{sample['id']}.json").json() == case["bundle"]
        assert sample["asOf"] == case["asOf"]
        assert sample["profile"] == case["profile"]
    assert {p.name for p in SAMPLES.glob("*.json")} == {"index.json"} | {
        f"{s['id']}.json" for s in index
    }


def test_summary_matches_the_result_bundle(client: TestClient) -> None:
    body = (SAMPLES / "cauda-equina-saddle-anaesthesia.json").read_bytes()
    params = {"asOf": "2026-11-24T10:00:00+01:00"}
    headers = {"content-type": "application/fhir+json"}
    view = client.post("/ui/summary", content=body, params=params, headers=headers).json()
    (patient,) = view["patients"]
    assert patient["painType"]["code"] == "neuropathic"
    assert [f["code"] for f in patient["redFlags"]] == ["cauda-equina"]
    assert patient["recommended"]["code"] == "urgent-referral"
    assert patient["timeline"]["durationWeeks"] == 0.7
    refs = {e["ref"] for e in patient["painType"]["evidence"]}
    assert refs <= view["inputs"].keys()
    # the page's one call also carries what $triage answers for the same body and options
    triage = client.post("/fhir/$triage", content=body, params=params, headers=headers)
    assert view["result"] == triage.json()


def test_summary_errors_are_operation_outcomes(client: TestClient) -> None:
    headers = {"content-type": "application/fhir+json"}
    bad = client.post("/ui/summary", content=b"{not json", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["resourceType"] == "OperationOutcome"
