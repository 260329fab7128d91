"""service.bulk.spark on Spark local[2]: the same output lines as ``painpath bulk``.

Needs the spark extra (``make test`` installs it; missing, the test fails) and Java 17+ on PATH:
without Java, or with an older one, the test is skipped with that reason (``pytest -rs`` shows it,
and the project's addopts include -rs).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.bulk.runner import BulkOptions, run_bulk

pytestmark = pytest.mark.spark

AS_OF = datetime(2026, 11, 24, 9, tzinfo=UTC)
FILES = [
    "CarePlan", "ServiceRequest", "Observation", "DetectedIssue", "DocumentReference", "Provenance",
    "OperationOutcome", "errors",
]  # fmt: skip


_JAVA_VERSION = re.compile(r'version "(?:1\.)?(\d+)')
_INSTALL_JAVA = "apt-get install openjdk-17-jre-headless"


def java_missing(path: str | None = None) -> str | None:
    """Why Spark cannot run here (no ``java`` on ``path``, or one older than 17), else None."""
    java = shutil.which("java", path=path)
    if java is None:
        return f"Spark test skipped: no Java on PATH; it needs Java 17+ ({_INSTALL_JAVA})"
    shown = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    found = _JAVA_VERSION.search(shown.stderr + shown.stdout)
    if found is None or int(found.group(1)) < 17:
        return f"Spark test skipped: {java} is not Java 17+ ({_INSTALL_JAVA})"
    return None


def test_java_missing_names_the_reason(tmp_path: Path) -> None:
    assert java_missing(str(tmp_path)) == (
        f"Spark test skipped: no Java on PATH; it needs Java 17+ ({_INSTALL_JAVA})"
    )
    old = tmp_path / "java"
    old.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_402\"' >&2\n")
    old.chmod(0o755)
    assert java_missing(str(tmp_path)) == (
        f"Spark test skipped: {old} is not Java 17+ ({_INSTALL_JAVA})"
    )
    new = tmp_path / "new"
    new.mkdir()
    (new / "java").write_text("#!/bin/sh\necho 'openjdk version \"21.0.2\" 2024-01-16' >&2\n")
    (new / "java").chmod(0o755)
    assert java_missing(str(new)) is None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    reason = java_missing()
    if reason is not None:
        pytest.skip(reason)
    from service.bulk.spark import spark_session

    session = spark_session("local[2]", shuffle_partitions=4)
    yield session
    session.stop()
    # py4j logs from __del__ at interpreter exit, after pytest closed the captured streams
    logging.getLogger("py4j").propagate = False


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-patient export (bench/make_bundle.py) plus a line that is not JSON, a Condition that
    names no patient (both errors), an Encounter about no patient (counted, not an error), and a
    MedicationRequest whose drug is a Medication in Medication.ndjson (joined)."""
    path = Path(__file__).parents[2] / "bench" / "make_bundle.py"
    spec = importlib.util.spec_from_file_location("make_bundle", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("export")
    module.write_export(out, 30)
    with (out / "Encounter.ndjson").open("ab") as extra:
        extra.write(b'{not json\n{"resourceType": "Encounter", "status": "finished"}\n')
        extra.write(b'{"resourceType": "Condition", "id": "orphan"}\n')
    patient = orjson.loads((out / "Patient.ndjson").read_bytes().splitlines()[0])["id"]
    request = {
        "resourceType": "MedicationRequest", "id": "mr-dzp", "status": "active",
        "intent": "order", "subject": {"reference": f"Patient/{patient}"},
        "medicationReference": {"reference": "Medication/dzp-5"}, "authoredOn": "2026-11-01",
    }  # fmt: skip
    medication = {"resourceType": "Medication", "id": "dzp-5", "code": {"coding": [{
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197591",
        "display": "Diazepam 5 MG Oral Tablet"}]}}  # fmt: skip
    with (out / "MedicationRequest.ndjson").open("ab") as extra:
        extra.write(orjson.dumps(request) + b"\n")
    (out / "Medication.ndjson").write_bytes(orjson.dumps(medication) + b"\n")
    return out


def _spark_lines(output: Path, name: str) -> list[bytes]:
    lines: list[bytes] = []
    for part in sorted((output / f"type={name}").glob("part-*")):
        lines += part.read_bytes().splitlines()
    return sorted(lines)


def test_spark_gives_the_lines_of_the_local_run(spark: Any, export: Path, tmp_path: Path) -> None:
    from service.bulk.spark import run_spark_bulk

    run_bulk(export, tmp_path / "local", BulkOptions(AS_OF, "nice-ng59", workers=0))
    run_spark_bulk(spark, export, tmp_path / "spark", as_of=AS_OF, profile="nice-ng59")
    local = tmp_path / "local"
    for name in FILES:
        expected = sorted((local / f"{name}.ndjson").read_bytes().splitlines())
        if name == "errors":  # Spark does not number lines: "Encounter.ndjson", not ...:34
            expected = sorted(re.sub(rb'\.ndjson:\d+"', b'.ndjson"', x) for x in expected)
            assert len(expected) == 2
        assert _spark_lines(tmp_path / "spark", name) == expected, name
    # the Medication was joined: its request is read, not reported as a drug that is not there
    outcomes = (local / "OperationOutcome.ndjson").read_bytes()
    assert b"mr-dzp" not in outcomes
    assert b"dzp-5" not in outcomes
    rows = (local / "summary.csv").read_bytes().splitlines()[1:]
    assert len(rows) == 30
    assert _spark_lines(tmp_path / "spark", "summary") == sorted(rows)
