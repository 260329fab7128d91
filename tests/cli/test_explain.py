"""``painpath explain FILE``: the decision trace as a tree (rules with id/version/source and their
evidence), ``--json`` for scripts; ``painpath triage`` adds duration and missing-data lines."""

from __future__ import annotations

import json

import pytest
from fhir_testkit import AS_OF, ROOT

from service.cli.main import main

SAMPLES = ROOT / "service" / "web" / "samples"
INSUFFICIENT = SAMPLES / "surgical-insufficient-data-no-imaging.json"


def test_explain_prints_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(INSUFFICIENT), "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Patient Patient/patient-1")
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
