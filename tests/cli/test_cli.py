"""``painpath triage FILE``: the one-screen summary, the result Bundle (the same as the API's for
the same bytes and ``asOf``), and exit codes 0 / 2 (bad input, OperationOutcome on stderr) / 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir_testkit import AS_OF, OUT_OF_SCOPE, ROOT, Json, case_bundle, post_triage

from service.cli.main import main

SAMPLE = ROOT / "samples" / "cauda-equina.json"


def _write(tmp_path: Path, body: Json | bytes, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())
    return path


def test_triage_prints_the_summary_and_writes_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    assert main(["triage", str(SAMPLE), "--as-of", AS_OF, "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    lines = printed.out.splitlines()
    # who the patient is, as the record gives it (this sample carries no name)
    assert lines[0] == (
        "Name not recorded (45 years, female, born 1981-05-12, ID MRN-patient-1)  evaluated "
        "2026-11-24, profile nice-ng59, rules " + lines[0].rsplit(" ", 1)[1]
    )
    # sentences and displays, never outcome codes; the red flag leads (RULES §8)
    assert lines[1] == "  Red flags: Suspected cauda equina syndrome"
    assert lines[2] == "  Pain type: Neuropathic pain (neuropathic component: probable)"
    assert any(
        line.startswith(
            "  Stages:    Conservative care: Deferred (red flag); Injection: Not eligible; "
            "Surgical referral: Eligible"
        )
        and line.endswith("-> recommended: Urgent referral")
        for line in lines
    )
    assert (
        "  Proposals: MRI lumbar spine without contrast (stat); Referral to a spinal surgeon "
        "(stat); Physiotherapy (exercise programme) (routine, after urgent assessment)" in lines
    )
    assert not any("-" in line.split(":", 1)[0] for line in lines[1:] if ":" in line)
    assert lines[-1] == f"Result Bundle written to {out}"
    written = out.read_bytes()
    assert written.endswith(b"\n")
    assert json.loads(written)["resourceType"] == "Bundle"


def test_output_file_is_the_api_result(tmp_path: Path, client: TestClient) -> None:
    out = tmp_path / "result.json"
    assert main(["triage", str(SAMPLE), "--as-of", AS_OF, "-o", str(out)]) == 0
    response = post_triage(client, SAMPLE.read_bytes(), params={"asOf": AS_OF})
    assert response.status_code == 200
    assert json.loads(out.read_bytes()) == response.json()


def test_profile_and_return_options_match_the_api(tmp_path: Path, client: TestClient) -> None:
    out = tmp_path / "result.json"
    argv = [
        "triage",
        str(SAMPLE),
        "--as-of",
        AS_OF,
        "--profile",
        "neupsig",
        "--return",
        "transaction",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    params = {"asOf": AS_OF, "profile": "neupsig", "return": "transaction"}
    expected = post_triage(client, SAMPLE.read_bytes(), params=params).json()
    result = json.loads(out.read_bytes())
    assert result == expected
    assert result["type"] == "transaction"
    assert result["meta"]["tag"][0]["code"] == "neupsig"


def test_json_prints_the_bundle_only(
    capsys: pytest.CaptureFixture[str], client: TestClient
) -> None:
    assert main(["triage", str(SAMPLE), "--as-of", AS_OF, "--json"]) == 0
    printed = capsys.readouterr().out
    assert "Pain type: neuropathic" not in printed  # no summary line
    assert json.loads(printed) == post_triage(client, SAMPLE.read_bytes()).json()


def test_out_of_scope_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, case_bundle(OUT_OF_SCOPE))
    assert main(["triage", str(path), "--as-of", AS_OF]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].startswith("  Out of PainPath's scope: ")
    assert "out-of-scope-age" not in lines[1]  # the note's sentence, not its code


def test_invalid_fhir_file_exits_2_with_an_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = case_bundle(OUT_OF_SCOPE)
    bundle["entry"][1]["resource"]["clinicalStatus"] = "active"  # a string for a CodeableConcept
    out = tmp_path / "result.json"
    assert main(["triage", str(_write(tmp_path, bundle)), "--as-of", AS_OF, "-o", str(out)]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    outcome = json.loads(printed.err)
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "invalid")
    assert issue["expression"] == ["Bundle.entry[1].resource.clinicalStatus"]
    assert not out.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid"),
        (b'["Bundle"]', "structure"),
        (b'{"resourceType": "Patient", "id": "p"}', "processing"),
    ],
)
def test_unusable_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: bytes, code: str
) -> None:
    assert main(["triage", str(_write(tmp_path, body))]) == 2
    outcome = json.loads(capsys.readouterr().err)
    assert [i["code"] for i in outcome["issue"]] == [code]


def test_bad_as_of_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", str(SAMPLE), "--as-of", "last tuesday"]) == 2
    outcome = json.loads(capsys.readouterr().err)
    assert outcome["issue"][0]["expression"] == ["asOf"]


def test_a_file_without_a_patient_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"resourceType": "Bundle", "type": "collection"})
    assert main(["triage", str(path)]) == 2
    assert capsys.readouterr().err.startswith(
        "painpath: cannot evaluate: The Bundle names no patient"
    )


def test_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["triage", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("painpath: ")
    assert "nope.json" in err
    assert "Traceback" not in err
