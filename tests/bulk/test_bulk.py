"""``painpath bulk``: a Bulk Data export in, the same results as ``$triage`` out, resumable."""

from __future__ import annotations

import csv
import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from service.app.pipeline import Pipeline
from service.bulk import runner
from service.bulk.evaluate import PartitionJob, load_medications, with_medications
from service.bulk.runner import BulkOptions, run_bulk
from service.cli.main import main
from service.fhir.types import Json

GOLDEN = Path(__file__).parents[1] / "golden" / "cases"
AS_OF = datetime(2026, 11, 24, 9, tzinfo=UTC)
OUTPUTS = [
    "CarePlan.ndjson", "ServiceRequest.ndjson", "Observation.ndjson", "DetectedIssue.ndjson",
    "Provenance.ndjson", "OperationOutcome.ndjson", "errors.ndjson", "summary.csv",
]  # fmt: skip


def _generator() -> ModuleType:
    """bench/make_bundle.py, the synthetic export generator the benchmarks use."""
    path = Path(__file__).parents[2] / "bench" / "make_bundle.py"
    spec = importlib.util.spec_from_file_location("make_bundle", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-patient export, one NDJSON file per resource type."""
    out = tmp_path_factory.mktemp("export")
    _generator().write_export(out, 40)
    return out


def _outputs(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def reference(export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The outputs of an uninterrupted in-process run."""
    out = tmp_path_factory.mktemp("reference")
    run_bulk(export, out, BulkOptions(AS_OF, "nice-ng59", workers=0))
    return _outputs(out)


def test_every_patient_is_evaluated_once(reference: dict[str, bytes]) -> None:
    rows = list(csv.DictReader(reference["summary.csv"].decode().splitlines()))
    assert len(rows) == 40
    assert len({r["patient"] for r in rows}) == 40
    assert all(r["pain_type"] and r["recommended_stage"] for r in rows)
    assert reference["CarePlan.ndjson"].count(b"\n") == 40
    assert reference["errors.ndjson"] == b""
    summary_text = reference["summary.csv"].decode()
    assert "Family" not in summary_text  # no names or birth dates in the summary
    plans = [orjson.loads(line) for line in reference["CarePlan.ndjson"].splitlines()]
    assert {p["resourceType"] for p in plans} == {"CarePlan"}


def test_worker_processes_and_a_mixed_file_give_the_same_bytes(
    export: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    mixed = tmp_path / "all.ndjson"
    mixed.write_bytes(b"".join(p.read_bytes() for p in sorted(export.glob("*.ndjson"))[::-1]))
    run_bulk(mixed, tmp_path / "out", BulkOptions(AS_OF, "nice-ng59", workers=2))
    assert _outputs(tmp_path / "out") == reference
    assert not (tmp_path / "out" / ".work").exists()


def test_a_run_resumes_after_a_crash_without_duplicates(
    export: Path, reference: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = runner._complete
    calls: list[str] = []

    def crash_on_third(engine: Pipeline, job: PartitionJob) -> tuple[str, int]:
        calls.append(job.target.name)
        if len(calls) == 3:
            # half a partition written, then the process dies
            (job.target.parent.parent / "tmp" / job.target.name).mkdir(parents=True)
            raise KeyboardInterrupt
        return original(engine, job)

    out = tmp_path / "out"
    monkeypatch.setattr(runner, "_complete", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_bulk(export, out, BulkOptions(AS_OF, "nice-ng59", workers=0))
    assert len(list((out / ".work" / "done").iterdir())) == 2
    monkeypatch.setattr(runner, "_complete", original)
    # the resumed run keeps the stored evaluation date even when asked for another one
    run_bulk(export, out, BulkOptions(datetime(2030, 1, 1, tzinfo=UTC), "nice-ng59", workers=0))
    assert _outputs(out) == reference


def test_lines_without_a_patient_go_to_errors(tmp_path: Path) -> None:
    """Not JSON, or a type the rules read that names no patient: an error line. A resource about
    no patient of a type the rules never read (Encounter without subject, Practitioner,
    Organization, Coverage, Medication) is counted in the summary, never an error."""
    source = tmp_path / "in.ndjson"
    resources = _generator().patient_resources("p1", 6)
    lines = [orjson.dumps(r) for r in resources]
    lines += [b"{not json", orjson.dumps({"resourceType": "Condition", "id": "orphan"})]
    lines += [
        orjson.dumps({"resourceType": "Encounter", "status": "finished"}),
        orjson.dumps({"resourceType": "Practitioner", "id": "dr1"}),
        orjson.dumps({"resourceType": "Organization", "id": "org1"}),
        orjson.dumps({"resourceType": "Organization", "id": "org2"}),
    ]
    source.write_bytes(b"\n".join(lines) + b"\n")
    info = run_bulk(source, tmp_path / "out", BulkOptions(AS_OF, "nice-ng59", workers=0))
    errors = [
        orjson.loads(x) for x in (tmp_path / "out" / "errors.ndjson").read_bytes().splitlines()
    ]
    assert [e["source"] for e in errors] == ["in.ndjson:7", "in.ndjson:8"]
    assert info["notUsed"] == {"Encounter": 1, "Organization": 2, "Practitioner": 1}


def test_an_invalid_patient_record_is_an_error_line_not_a_crash(tmp_path: Path) -> None:
    resources = _generator().patient_resources("p1", 6) + _generator().patient_resources("p2", 6)
    resources[1]["status"] = "done"  # p1's Condition has no status; make its Observation bad
    resources[2]["status"] = "done"
    (tmp_path / "in.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    run_bulk(tmp_path / "in.ndjson", tmp_path / "out", BulkOptions(AS_OF, "nice-ng59", workers=0))
    errors = (tmp_path / "out" / "errors.ndjson").read_bytes().splitlines()
    assert len(errors) == 1
    error = orjson.loads(errors[0])
    assert error["patient"] == "Patient/p1"
    assert error["outcome"]["issue"][0]["expression"][0].startswith("Bundle.entry[")
    rows = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["Patient/p2"]


def test_the_bulk_command(export: Path, reference: dict[str, bytes], tmp_path: Path) -> None:
    code = main(
        ["bulk", str(export), str(tmp_path), "--as-of", AS_OF.isoformat(), "--workers", "0"]
    )
    assert code == 0
    assert _outputs(tmp_path) == reference


def _export_with_medication_file(tmp_path: Path, *, with_medication: bool) -> Path:
    """The opioid + benzodiazepine golden case as a Bulk Data export: the diazepam request
    refers to a Medication that lives in Medication.ndjson (about no patient), as servers export
    it; the reference is absolute, as some servers write it."""
    case = orjson.loads((GOLDEN / "med-opioid-benzodiazepine.json").read_bytes())
    resources = [entry["resource"] for entry in case["bundle"]["entry"]]
    request = next(r for r in resources if r.get("id") == "med-dzp")
    medication = {
        "resourceType": "Medication", "id": "dzp-5",
        "code": request.pop("medicationCodeableConcept"),
    }  # fmt: skip
    request["medicationReference"] = {"reference": "https://ehr.example.org/fhir/Medication/dzp-5"}
    export = tmp_path / "export"
    export.mkdir()
    by_type: dict[str, list[bytes]] = {}
    for resource in [*resources, *([medication] if with_medication else [])]:
        by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, lines in by_type.items():
        (export / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return export


@pytest.mark.parametrize("with_medication", [True, False])
def test_a_medication_in_its_own_export_file_is_joined_to_the_requests_naming_it(
    tmp_path: Path, with_medication: bool
) -> None:
    export = _export_with_medication_file(tmp_path, with_medication=with_medication)
    out = tmp_path / "out"
    info = run_bulk(export, out, BulkOptions(AS_OF, "nice-ng59", workers=0))
    assert info["medications"] == (1 if with_medication else 0)
    not_used = info["notUsed"]
    assert isinstance(not_used, dict)
    assert "Medication" not in not_used
    assert (out / "errors.ndjson").read_bytes() == b""
    issues = [orjson.loads(x) for x in (out / "DetectedIssue.ndjson").read_bytes().splitlines()]
    codes = {c["code"] for i in issues for c in i["code"]["coding"]}
    # joined: the diazepam is a benzodiazepine beside the fentanyl patch; not joined: it cannot
    # be read, and the patient's OperationOutcome says so instead
    assert ("opioid-benzodiazepine" in codes) is with_medication
    outcome = orjson.loads((out / "OperationOutcome.ndjson").read_bytes())
    unread = [
        i for i in outcome["issue"]
        if i["severity"] == "warning" and "Medication/dzp-5" in i["diagnostics"]
    ]  # fmt: skip
    assert len(unread) == (0 if with_medication else 1)


def test_with_medications_adds_each_named_medication_once() -> None:
    catalogue = {"Medication/a": {"resourceType": "Medication", "id": "a"}}
    requests: list[Json] = [
        {
            "resourceType": "MedicationRequest",
            "id": str(n),
            "medicationReference": {"reference": ref},
        }
        for n, ref in enumerate(["Medication/a", "Medication/a/_history/3", "Medication/zz", "#c"])
    ]
    joined = with_medications(requests, catalogue)
    assert joined == [*requests, catalogue["Medication/a"]]
    # already among the patient's lines: not added again
    assert len(with_medications([*requests, catalogue["Medication/a"]], catalogue)) == 5


def test_a_run_without_a_medication_file_has_no_catalogue(tmp_path: Path) -> None:
    assert load_medications(None) == {}
    assert load_medications(tmp_path / "medications.ndjson") == {}
    (tmp_path / "medications.ndjson").write_bytes(b'{"resourceType":"Medication","id":"a"}\n')
    assert load_medications(tmp_path / "medications.ndjson") == {
        "Medication/a": {"resourceType": "Medication", "id": "a"}
    }


def test_a_resource_nested_past_the_limit_is_an_error_line_not_a_crash(tmp_path: Path) -> None:
    """Bulk lines are parsed to 1,024 levels; a patient whose read resource nests past the
    limit gets an errors line (too-costly), and the other patients their results."""
    resources = _generator().patient_resources("p1", 6) + _generator().patient_resources("p2", 6)
    extension: Json = {"url": "https://example.org/x", "valueString": "leaf"}
    for _ in range(80):
        extension = {"url": "https://example.org/x", "extension": [extension]}
    condition = next(r for r in resources if r["resourceType"] == "Condition")
    condition["extension"] = [extension]
    (tmp_path / "in.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    run_bulk(tmp_path / "in.ndjson", tmp_path / "out", BulkOptions(AS_OF, "nice-ng59", workers=0))
    [error] = [
        orjson.loads(x) for x in (tmp_path / "out" / "errors.ndjson").read_bytes().splitlines()
    ]
    assert error["outcome"]["issue"][0]["code"] == "too-costly"
    rows = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert len(rows) == 2  # the header and the other patient


@pytest.mark.parametrize(
    ("handed_over", "interaction"), [("2026-11-10", True), ("2026-06-10", False)]
)
def test_a_dispense_line_is_medication_evidence_and_one_without_patient_an_error(
    tmp_path: Path, handed_over: str, interaction: bool
) -> None:
    """The diazepam of the opioid + benzodiazepine case as a MedicationDispense in its own file,
    naming its drug by a Medication of Medication.ndjson: read like the request it replaces,
    current within its supply; a dispense line naming no patient is an error line."""
    export = _export_with_medication_file(tmp_path, with_medication=True)
    lines = (export / "MedicationRequest.ndjson").read_bytes().splitlines()
    requests = [orjson.loads(x) for x in lines]
    diazepam = next(r for r in requests if r["id"] == "med-dzp")
    dispense = {
        "resourceType": "MedicationDispense", "id": "disp-dzp", "status": "completed",
        "medicationReference": diazepam["medicationReference"], "subject": diazepam["subject"],
        "whenHandedOver": handed_over,
    }  # fmt: skip
    orphan = dispense | {"id": "disp-orphan"}
    del orphan["subject"]
    kept = [orjson.dumps(r) for r in requests if r["id"] != "med-dzp"]
    (export / "MedicationRequest.ndjson").write_bytes(b"\n".join(kept) + b"\n")
    (export / "MedicationDispense.ndjson").write_bytes(
        orjson.dumps(dispense) + b"\n" + orjson.dumps(orphan) + b"\n"
    )
    out = tmp_path / "out"
    info = run_bulk(export, out, BulkOptions(AS_OF, "nice-ng59", workers=0))
    assert "MedicationDispense" not in info["notUsed"]  # type: ignore[operator]
    [error] = [orjson.loads(x) for x in (out / "errors.ndjson").read_bytes().splitlines()]
    assert error["source"] == "MedicationDispense.ndjson:2"
    issues = [orjson.loads(x) for x in (out / "DetectedIssue.ndjson").read_bytes().splitlines()]
    codes = {c["code"] for i in issues for c in i["code"]["coding"]}
    assert ("opioid-benzodiazepine" in codes) is interaction
