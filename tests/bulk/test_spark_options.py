"""``python -m service.bulk.spark``'s options: resolved as every other entry point resolves them,
before any Spark session starts (Spark itself is stubbed here: no Java needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from painpath_testkit import AS_OF

from service.app.pipeline import Pipeline
from service.bulk import spark as module
from service.bulk.spark import main
from service.domain.knowledge import load_knowledge
from service.settings import Settings


class _Run:
    """Stands in for Spark in ``main``: records the options it was asked to run with."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.stopped = False

    def session(self, master: str) -> _Run:
        return self

    def stop(self) -> None:
        self.stopped = True

    def run(self, spark: object, source: Path, output: Path, **options: Any) -> None:
        self.calls.append(options)


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> _Run:
    """``service.bulk.spark.main`` without a Spark session (so without Java): what it passes on."""
    run = _Run()
    monkeypatch.setattr(module, "spark_session", run.session)
    monkeypatch.setattr(module, "run_spark_bulk", run.run)
    return run


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2026-11-24T10:00:00+01:00", "2026-11-24T09:00:00+00:00"),
        ("2026-11-23T23:30:00-09:30", "2026-11-24T09:00:00+00:00"),
        ("2026-11-24T09:00:00Z", "2026-11-24T09:00:00+00:00"),
    ],
)
def test_main_evaluates_on_the_as_of_in_utc(no_spark: _Run, as_of: str, expected: str) -> None:
    """The as-of goes through the options resolution of every other entry point (UTC), so a
    Spark run's ids, which the digest seeds from ``as_of.isoformat()``, are the local run's."""
    assert main(["in", "out", "--as-of", as_of]) == 0
    [options] = no_spark.calls
    assert options["as_of"].isoformat() == expected
    cli = Pipeline(load_knowledge()).options({"asOf": as_of}, now=AS_OF)
    assert options == {"as_of": cli.as_of, "profile": cli.profile}
    assert no_spark.stopped


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--as-of", "24/11/2026"], "is not a FHIR dateTime"),
        (["--as-of", "2026-11-24T09:00:00Z", "--profile", "nice-ng99"], "Unknown profile"),
    ],
)
def test_main_refuses_bad_options_before_starting_spark(
    no_spark: _Run, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["in", "out", *flags]) == 2
    assert message in capsys.readouterr().err
    assert no_spark.calls == []
    assert not no_spark.stopped  # never started


def test_main_defaults_the_profile_as_painpath_bulk_does(
    no_spark: _Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --profile: the configured default (PAINPATH_DEFAULT_PROFILE), else the catalogue's."""
    monkeypatch.setattr(module, "get_settings", lambda: Settings(default_profile="neupsig"))
    assert main(["in", "out", "--as-of", "2026-11-24"]) == 0
    assert no_spark.calls[0]["profile"] == "neupsig"
    assert no_spark.calls[0]["as_of"].isoformat() == "2026-11-24T00:00:00+00:00"
    monkeypatch.setattr(module, "get_settings", Settings)
    assert main(["in", "out", "--as-of", "2026-11-24"]) == 0
    assert no_spark.calls[1]["profile"] == load_knowledge().catalogue.default_profile


def test_the_worker_functions_join_the_export_medications(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Spark runs in its Python workers, run here on pandas frames: the Medication lines
    are picked out of the export, and a patient's request naming one is read with its drug."""
    import orjson
    import pandas as pd
    from fhir_testkit import load_case

    case = load_case("med-opioid-benzodiazepine")
    resources = [entry["resource"] for entry in case["bundle"]["entry"]]
    request = next(r for r in resources if r.get("id") == "med-dzp")
    medication = {"resourceType": "Medication", "id": "dzp-5",
                  "code": request.pop("medicationCodeableConcept")}  # fmt: skip
    request["medicationReference"] = {"reference": "Medication/dzp-5"}
    lines = [orjson.dumps(r).decode() for r in resources]
    export = pd.DataFrame({"value": [*lines, orjson.dumps(medication).decode(), "{not json"]})
    [picked] = list(module._medication_lines(iter([export])))
    assert list(picked["line"]) == [orjson.dumps(medication).decode()]

    monkeypatch.setattr(module, "_PIPELINE", None)  # a fresh worker builds its pipeline
    patient = pd.DataFrame({"patient": ["patient-1"] * len(lines), "line": lines})
    out = module._evaluate(
        patient, as_of=AS_OF, profile="nice-ng59", medications={"Medication/dzp-5": medication}
    )
    issues = [orjson.loads(x) for t, x in zip(out["type"], out["line"], strict=True)
              if t == "DetectedIssue"]  # fmt: skip
    assert "opioid-benzodiazepine" in {c["code"] for i in issues for c in i["code"]["coding"]}
