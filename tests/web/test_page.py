"""End to end in headless Chromium: the page at ``/`` evaluates every bundled sample (and every
file of samples/) and shows who the patient is, the red-flag mode of RULES §8, what would change
the decision (§9), evidence and citations linked, a one-page A4 clinician summary in print, and
the patient explanation; the layout holds at 1400 px and 390 px in every state, and axe-core
finds no serious or critical violation. Screenshots and PDFs: ``test-artifacts/web-*``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # where conftest.py has the driver keep them
SAMPLE_FILES = sorted((ROOT / "samples").glob("*.json"))

RED_FLAG = "cauda-equina-saddle-anaesthesia"
MALIGNANCY = "malignancy-active-breast-cancer"
ROUTINE = "mechanical-low-back-pain-fever-screened-absent"
UNDECIDED = "surgical-insufficient-data-no-imaging"
BLOCKING = {"serious", "critical"}
# A4 is 210 x 297 mm: 595.3 x 841.9 pt; Chromium rounds the page box to its CSS pixels
A4_PT = (595.3, 841.9)


def test_page_loads_with_samples_and_accessible_controls(shown: dict[str, Any]) -> None:
    assert shown["title"] == "PainPath: back pain decision support"
    assert len(shown["sampleOptions"]) >= 7  # the prompt + the bundled samples
    assert shown["firstFocus"] == "Skip to results"
    assert shown["unlabelled"] == []
    assert shown["console"] == []
    assert shown["axeEmpty"]["rulesPassed"] > 10  # axe-core ran on the page
    assert shown["axeEmpty"]["violations"] == []


def test_every_bundled_sample_and_samples_file_was_evaluated(shown: dict[str, Any]) -> None:
    expected = {f"file-{p.stem}" for p in SAMPLE_FILES} | {RED_FLAG, MALIGNANCY, ROUTINE}
    assert expected <= shown["samples"].keys()
    assert len(shown["samples"]) == len(shown["sampleOptions"]) - 1 + len(SAMPLE_FILES)
    for key, page in shown["samples"].items():
        assert page["error"] is None, key
        assert page["status"].startswith("Evaluated 1 patient"), key


def test_page_loads_nothing_from_elsewhere(shown: dict[str, Any], base_url: str) -> None:
    assert shown["requests"]
    assert all(url.startswith(base_url) for url in shown["requests"])


def test_patient_header_names_the_patient_as_the_record_does(shown: dict[str, Any]) -> None:
    page = shown["samples"][RED_FLAG]
    assert page["patientName"] == "Ruth Okafor"
    assert page["patientFacts"] == "45 years · female · born 1981-05-12 · ID MRN-patient-1"
    assert shown["samples"][MALIGNANCY]["patientFacts"].startswith("64 years · female")
    # a record without a name or identifier: the header says so and invents nothing
    opioid = shown["samples"]["file-opioid-review"]
    assert opioid["patientName"] == "Name not recorded"
    assert opioid["patientFacts"] == "58 years · male · born 1968-04-02"
    assert "Ruth Okafor" in page["printSummary"]


def test_medication_safety_is_on_the_page_and_in_print(shown: dict[str, Any]) -> None:
    """A fentanyl patch beside a benzodiazepine is the first thing a routine page shows, and the
    printed summary carries it."""
    opioid = shown["samples"]["file-opioid-review"]
    assert "Medication safety" in opioid["printSummary"]
    assert "Opioid with a benzodiazepine or Z-drug" in opioid["printSummary"]
    assert opioid["firstCard"] == "Medication safety"


def test_red_flag_mode_leads_with_the_emergency(shown: dict[str, Any]) -> None:
    page = shown["samples"][RED_FLAG]
    assert page["loaded"] == f"sample:{RED_FLAG}"
    assert "Condition/cond-sciatica" in page["inputs"]  # this sample's data was evaluated
    assert page["banner"].startswith("Red flag: urgent assessment needed")
    assert "Suspected cauda equina syndrome" in page["banner"]
    assert page["headline"].startswith("Red flag: Suspected cauda equina syndrome")
    # the urgent proposals first, routine care collapsed behind "after urgent assessment"
    order = page["order"]
    assert order.index("headline") < order.index("urgent-0") < order.index("after-urgent")
    assert page["afterUrgent"] == {
        "open": False,
        "summary": "Routine care: after urgent assessment",
        "heldServices": ["physiotherapy"],
    }
    urgent = [p for p in page["proposals"] if not p["held"]]
    assert {p["service"]: p["priority"] for p in urgent} == {
        "mri-lumbar": "stat",
        "spine-surgery-referral": "stat",
    }
    assert all(p["reason"] for p in page["proposals"])
    assert page["greenBadges"] == 0  # no green "eligible" competing with the emergency
    assert page["painType"] == "Neuropathic pain"
    assert page["certainty"] == "Probable"
    assert page["recommendedText"] == "recommended: Urgent referral"
    assert page["stages"] == {
        "conservative": "Deferred (red flag)",
        "injection": "Not eligible",
        "surgical-referral": "Eligible",
    }
    assert page["timeline"].startswith("Symptoms for 0.7 weeks")
    assert page["resultsLive"] == "polite"
    assert "RED FLAG: urgent assessment first" in page["printSummary"]


def test_malignancy_red_flag_mode(shown: dict[str, Any]) -> None:
    page = shown["samples"][MALIGNANCY]
    assert "Suspected spinal malignancy" in page["banner"]
    assert page["headline"].startswith("Red flag: Suspected spinal malignancy")
    urgent = {p["service"]: p["priority"] for p in page["proposals"] if not p["held"]}
    assert urgent == {"oncology-referral": "urgent", "mri-lumbar-contrast": "urgent"}
    assert page["greenBadges"] == 0
    assert page["afterUrgent"]["open"] is False
    # the cancer diagnosis in the record's own words
    assert "Malignant neoplasm of unspecified site of right female breast" in page["banner"]


def test_routine_patient(shown: dict[str, Any]) -> None:
    page = shown["samples"][ROUTINE]
    assert page["loaded"] == f"sample:{ROUTINE}"
    # evaluated after the red-flag samples: its own data, not the previous patient's
    assert "Condition/cond-lbp" in page["inputs"]
    assert "Condition/cond-sciatica" not in page["inputs"]
    assert page["banner"] is None
    assert page["headline"] is None
    assert page["afterUrgent"] is None
    assert page["painType"] == "Mechanical (nociceptive) pain"
    assert page["certainty"] == "Unlikely"
    assert page["recommendedStep"] == ["conservative"]
    assert page["recommendedText"] == "recommended: Conservative care"
    assert page["stages"]["conservative"] == "Eligible"
    assert page["greenBadges"] == 1
    assert page["stages"]["injection"] == "Not eligible"
    assert [p["service"] for p in page["proposals"]] == ["physiotherapy"]
    assert page["proposals"][0]["priority"] == "routine"


def test_evidence_is_the_inputs_own_text_linked_to_the_input(shown: dict[str, Any]) -> None:
    page = shown["samples"][ROUTINE]
    # the record says "Mechanical low back pain", not the value set's group name
    assert "Mechanical low back pain" in page["evidenceLabels"]
    assert not any("spondylolisthesis" in label for label in page["evidenceLabels"])
    assert "Condition: Mechanical low back pain" in page["inputLabels"]
    for key, sample in shown["samples"].items():
        assert sample["evidenceLinks"], key
        assert all(href.startswith("#input-") for href in sample["evidenceLinks"]), key
        assert sample["evidenceOpens"] is True, key


def test_citations_link_to_the_guideline_text(shown: dict[str, Any]) -> None:
    for key, page in shown["samples"].items():
        assert page["citationLinks"], key
        assert all(href.startswith("https://") for href in page["citationLinks"]), key
    assert "https://www.nice.org.uk/guidance/ng59" in shown["samples"][ROUTINE]["citationLinks"]


def test_what_would_change_lists_one_line_prompts(shown: dict[str, Any]) -> None:
    page = shown["samples"][UNDECIDED]
    changes = {c["about"]: c["prompts"] for c in page["whatWouldChange"]}
    prompts = changes["Surgical referral undecided: concordant lumbar imaging is needed"]
    assert prompts[0].startswith("Lumbar spine MRI")
    for about, lines in changes.items():
        assert lines, about
        assert all("\n" not in line and len(line) <= 140 for line in lines)
    assert "What would change the decision" in page["printSummary"]
    assert shown["samples"][ROUTINE]["whatWouldChange"] == []  # nothing undecided
    # RULES §9: each prompt a PainPath Questionnaire records links to it and its $populate
    records = {c["about"]: c["records"] for c in page["whatWouldChange"]}
    assert records["Surgical referral undecided: concordant lumbar imaging is needed"] == []
    screen = records["Red-flag screen not documented"]
    assert len(screen) == len(changes["Red-flag screen not documented"])
    assert screen[0] == {
        "href": "/fhir/Questionnaire/red-flag-screen",
        "text": "PainPath red-flag screen",
        "populate": "/fhir/Questionnaire/red-flag-screen/$populate",
    }


def test_patient_explanation_is_offered(shown: dict[str, Any]) -> None:
    for key in (RED_FLAG, MALIGNANCY, ROUTINE):
        text = shown["samples"][key]["explanation"]
        assert text.startswith("Your back pain: what we found and what happens next"), key
        assert "What kind of pain this is" in text
        assert "Get help straight away" in text
    assert "After the urgent check" in shown["samples"][RED_FLAG]["explanation"]
    assert "After the urgent check" not in shown["samples"][ROUTINE]["explanation"]


def test_no_horizontal_overflow_and_legible_timeline(shown: dict[str, Any]) -> None:
    for key, page in shown["samples"].items():
        states = page["layout"]
        assert "raw-opened" in states, key
        assert "explanation-opened" in states, key
        for state, widths in states.items():
            assert set(widths) == {"1400", "390"}
            for width, found in widths.items():
                where = f"{key} {state} at {width} px"
                assert found["scrollWidth"] <= found["clientWidth"], where
                assert found["wide"] == [], where
                assert found["axisOverlaps"] == [], where
                for label in found["labels"]:
                    assert label["size"] >= 12, where
                    assert not label["overBar"], where
                    assert not label["clipped"], where
    assert shown["samples"][ROUTINE]["layout"]["evaluated"]["390"]["labels"]  # a timeline drawn


def test_axe_finds_no_serious_or_critical_violation(shown: dict[str, Any]) -> None:
    for key, page in shown["samples"].items():
        for run in (page["axe"], page["axeOpened"]):
            assert run["rulesPassed"] > 10, key
            blocking = [v for v in run["violations"] if v["impact"] in BLOCKING]
            assert blocking == [], f"{key}: {blocking}"


def _pdf_pages(data: bytes) -> list[tuple[float, float]]:
    """The page boxes (points) of a PDF whose page tree Chromium writes uncompressed."""
    counts = [int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data)]
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert counts
    assert len(boxes) == max(counts)
    return [(float(w), float(h)) for w, h in boxes]


@pytest.mark.parametrize("name", [RED_FLAG, MALIGNANCY, ROUTINE])
def test_pdf_page_counter_counts(name: str, shown: dict[str, Any]) -> None:
    data = (ARTIFACTS / shown["samples"][name]["pdf"]).read_bytes()
    assert len(_pdf_pages(data)) == 1
    doubled = data.replace(b"/Count 1\n", b"/Count 2\n")
    with pytest.raises(AssertionError):
        _pdf_pages(doubled)


def test_clinician_summary_prints_on_one_a4_page(shown: dict[str, Any]) -> None:
    for key, page in shown["samples"].items():
        boxes = _pdf_pages((ARTIFACTS / page["pdf"]).read_bytes())
        assert len(boxes) == 1, f"{key}: {len(boxes)} pages"
        (width, height), (a4_width, a4_height) = boxes[0], A4_PT
        assert abs(width - a4_width) < 2, key
        assert abs(height - a4_height) < 2, key
        assert page["printSummary"].startswith("PainPath clinician summary"), key


def test_screenshots_are_kept(shown: dict[str, Any]) -> None:
    for key in shown["samples"]:
        for name in ("evaluated-1400", "evaluated-390", "raw-opened-390", "print", "explanation"):
            assert (ARTIFACTS / f"web-{key}-{name}.png").stat().st_size > 10_000, (key, name)


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
