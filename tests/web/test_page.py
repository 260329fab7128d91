"""End to end in headless Chromium: the page at ``/`` evaluates a red-flag and a routine sample
patient and shows pain type, red-flag banner, stage ladder and proposal cards (screenshots in
``test-artifacts/web-*.png``)."""

from __future__ import annotations

from typing import Any

import httpx

RED_FLAG = "cauda-equina-saddle-anaesthesia"  # the samples conftest.py drives
ROUTINE = "mechanical-low-back-pain-fever-screened-absent"


def test_page_loads_with_samples_and_accessible_controls(shown: dict[str, Any]) -> None:
    assert shown["title"] == "PainPath: back pain decision support"
    assert len(shown["sampleOptions"]) >= 5  # the prompt + the bundled samples
    assert shown["firstFocus"] == "Skip to results"
    assert shown["unlabelled"] == []
    assert shown["console"] == []


def test_page_loads_nothing_from_elsewhere(shown: dict[str, Any], base_url: str) -> None:
    assert shown["requests"]
    assert all(url.startswith(base_url) for url in shown["requests"])


def test_red_flag_patient(shown: dict[str, Any]) -> None:
    page = shown["samples"][RED_FLAG]
    assert page["loaded"] == f"sample:{RED_FLAG}"
    assert "Condition/cond-sciatica" in page["inputs"]  # this sample's data was evaluated
    assert page["error"] is None
    assert page["status"].startswith("Evaluated 1 patient")
    assert page["banner"] is not None
    assert page["banner"].startswith("Red flag: urgent assessment needed")
    assert "Cauda equina" in page["banner"]
    assert page["painType"] == "Neuropathic pain"
    assert page["certainty"] == "Probable"
    assert page["recommendedText"] == "recommended: Urgent referral"
    assert page["stages"] == {
        "conservative": "Deferred (red flag)",
        "injection": "Not eligible",
        "surgical-referral": "Eligible",
    }
    services = {p["service"]: p["priority"] for p in page["proposals"]}
    assert services["spine-surgery-referral"] == "stat"
    assert services["mri-lumbar"] == "stat"
    assert page["proposals"][0]["priority"] == "stat"  # most urgent first
    assert all(p["reason"] for p in page["proposals"])
    assert page["evidenceLinks"]
    assert all(href.startswith("#input-") for href in page["evidenceLinks"])
    assert page["evidenceOpens"] is True
    assert page["timeline"].startswith("Symptoms for 0.7 weeks")
    assert page["resultsLive"] == "polite"


def test_routine_patient(shown: dict[str, Any]) -> None:
    page = shown["samples"][ROUTINE]
    assert page["loaded"] == f"sample:{ROUTINE}"
    # evaluated after the red-flag sample: its own data, not the previous patient's
    assert "Condition/cond-lbp" in page["inputs"]
    assert "Condition/cond-sciatica" not in page["inputs"]
    assert page["error"] is None
    assert page["banner"] is None
    assert page["painType"] == "Mechanical (nociceptive) pain"
    assert page["certainty"] == "Unlikely"
    assert page["recommendedStep"] == ["conservative"]
    assert page["recommendedText"] == "recommended: Conservative care"
    assert page["stages"]["injection"] == "Not eligible"
    assert [p["service"] for p in page["proposals"]] == ["physiotherapy"]
    assert page["proposals"][0]["priority"] == "routine"


def test_raw_bundle_is_collapsible_and_copyable(shown: dict[str, Any]) -> None:
    for page in shown["samples"].values():
        assert page["rawHidden"] is False
        assert page["rawBundleType"] == "Bundle"
        assert page["copyStatus"] == "Copied to the clipboard."


def test_page_assets_are_served_with_a_strict_policy(base_url: str) -> None:
    for path, media in (("/", "text/html"), ("/ui/painpath.js", "text/javascript")):
        response = httpx.get(base_url + path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media)
        assert "default-src 'self'" in response.headers["content-security-policy"]
    assert httpx.get(base_url + "/ui/nothing.js").status_code == 404
