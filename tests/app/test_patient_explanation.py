"""The patient explanation reads at US grade 8 or lower (Flesch-Kincaid, textstat) for every
golden case, is deterministic, and is the same text in the view, the CLI and the result Bundle's
DocumentReference."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
import textstat

from service.app.pipeline import Pipeline, TriageResult
from service.app.view import trace_view
from service.settings import Settings

CASES = sorted((Path(__file__).resolve().parents[1] / "golden" / "cases").glob("*.json"))
MAX_GRADE = 8.0
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@cache
def _pipeline() -> Pipeline:
    return Pipeline.from_settings(Settings(_env_file=None))


def _run(path: Path) -> TriageResult:
    case = json.loads(path.read_text(encoding="utf-8"))
    body = json.dumps(case["bundle"]).encode()
    return _pipeline().run_body(body, {"asOf": case["asOf"], "profile": case["profile"]}, now=NOW)


def _documents(result: TriageResult) -> list[str]:
    return [
        base64.b64decode(e["resource"]["content"][0]["attachment"]["data"]).decode("utf-8")
        for e in result.bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_reading_grade_is_8_or_lower(path: Path) -> None:
    view = trace_view(_pipeline(), _run(path))
    for patient in view["patients"]:
        explanation = patient["explanation"]
        if explanation is None:
            assert not patient["inScope"]
            continue
        # the running text, headings and list items as sentences
        prose = " ".join(
            [explanation["title"] + "."]
            + [
                part if part.endswith((".", ":", "?")) else part + "."
                for s in explanation["sections"]
                for part in [s["heading"], *s["paragraphs"], *s["items"]]
            ]
        )
        grade = textstat.flesch_kincaid_grade(prose)
        assert grade <= MAX_GRADE, f"{path.stem}: grade {grade}"


def test_grade_measure_can_fail() -> None:
    hard = (
        "Lumbosacral radiculopathy necessitates multidisciplinary consideration of "
        "interventional neuromodulatory procedures, contingent upon electrodiagnostic "
        "corroboration of radicular compromise."
    )
    assert textstat.flesch_kincaid_grade(hard) > MAX_GRADE


def test_explanation_is_the_documents_text_and_deterministic() -> None:
    path = next(p for p in CASES if p.stem == "malignancy-active-breast-cancer")
    first, second = _run(path), _run(path)
    (document,) = _documents(first)
    assert _documents(second) == [document]
    (patient,) = trace_view(_pipeline(), first)["patients"]
    assert patient["explanation"]["text"] == document
    assert "Cancer team" in document
    assert "Get help straight away" in document
