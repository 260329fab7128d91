"""``painpath explain FILE``: the decision trace as a tree (rules with id/version/source and their
evidence), ``--json`` for scripts; ``painpath triage`` adds duration and missing-data lines."""

from __future__ import annotations

import base64
import json

import pytest
from fhir_testkit import AS_OF, ROOT

from service.cli.main import main

SAMPLES = ROOT / "service" / "web" / "samples"
INSUFFICIENT = SAMPLES / "surgical-insufficient-data-no-imaging.json"


def test_explain_prints_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(INSUFFICIENT), "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Anna Fletcher (45 years, female, born 1981-05-12, ID MRN-patient-1)")
    assert "Pain type: Neuropathic pain" in out
    assert "rule pain-type.neuropathic v1 PainPath RULES §2 pain type" in out
    assert "[Condition/cond-sciatica]" in out
    # nice-ng59: an epidural only for acute and severe sciatica (rule set 2027.1)
    assert "Injection: Not eligible" in out
    assert "Conservative care (recommended): Eligible" in out
    assert "Surgical referral: Insufficient data" in out
    assert "fired surgery.imaging-missing v1" in out
    assert "not fired" not in out


def test_explain_all_rules_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(INSUFFICIENT), "--as-of", AS_OF, "--all-rules"]) == 0
    assert "not fired scope.under-16 v1" in capsys.readouterr().out
    assert main(["explain", str(INSUFFICIENT), "--as-of", AS_OF, "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    (patient,) = view["patients"]
    assert patient["recommended"]["code"] == "conservative"
    codes = [s["code"] for s in patient["stages"]]
    assert codes == ["eligible", "not-eligible", "insufficient-data"]
    assert all({"id", "version", "source", "fired"} <= f.keys() for f in patient["firings"])
    assert patient["timeline"]["treatments"][0]["ref"] == "Procedure/proc-physio"
    assert "Procedure/proc-physio" in view["inputs"]


def test_triage_summary_names_duration_and_missing_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["triage", str(INSUFFICIENT), "--as-of", AS_OF]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  Duration:  ") and "Physiotherapy" in line for line in lines)
    assert any(line.startswith("  Missing:   Surgical referral:") for line in lines)


def test_explain_tree_has_no_empty_notes_node_and_says_what_would_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    routine = SAMPLES / "mechanical-low-back-pain-fever-screened-absent.json"
    assert main(["explain", str(routine), "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert "Notes" not in out  # this patient has no note: no node for it
    assert main(["explain", str(INSUFFICIENT), "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert "What would change the decision" in out
    assert "Surgical referral undecided: concordant lumbar imaging is needed" in out
    assert "Notes" in out
    assert "information: Red-flag screen not documented" in out  # a sentence, not a code
    assert "red-flag-screen-not-documented" not in out


def test_explain_for_patient_is_the_bundles_explanation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cauda = SAMPLES / "cauda-equina-saddle-anaesthesia.json"
    assert main(["explain", str(cauda), "--as-of", AS_OF, "--for-patient"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Your back pain: what we found and what happens next\n")
    assert "Get help straight away" in out
    assert main(["triage", str(cauda), "--as-of", AS_OF, "--json"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    (document,) = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]
    assert base64.b64decode(document["content"][0]["attachment"]["data"]).decode() == out
