"""Golden vignettes: clinical cases written from docs/clinical-rules.md (tests/golden/README.md).

Each case states only what the rules decide; this test asserts every stated expectation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.app.pipeline import Pipeline

CASES = sorted((Path(__file__).parent / "cases").glob("*.json"))


def run_case(pipeline: Pipeline, case: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a case through the one evaluation path, as the API does."""
    raw = {"asOf": case["asOf"], "profile": case.get("profile")}
    body = orjson.dumps(case["bundle"])
    return pipeline.run_body(body, raw, now=datetime(2026, 11, 24, tzinfo=UTC)).bundle


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_case(path: Path, pipeline: Pipeline, summarize: Callable[..., Any]) -> None:
    case = orjson.loads(path.read_bytes())
    expect = case["expect"]
    got = summarize(run_case(pipeline, case))
    problems = []
    if not expect["inScope"]:
        problems += [] if "painType" not in got else ["expected no evaluation (out of scope)"]
    problems += _value_problems(expect, got) + _activity_problems(expect, got)
    for stage, value in expect.get("stages", {}).items():
        if got["stages"].get(stage) != value:
            problems.append(f"stage {stage}: expected {value}, got {got['stages'].get(stage)}")
    for service, priority in expect.get("services", {}).items():
        if service not in got["services"]:
            problems.append(f"service {service} missing (got {sorted(got['services'])})")
        elif priority is not None and got["services"][service] != priority:
            problems.append(f"service {service}: priority {got['services'][service]} != {priority}")
    problems += [
        f"service {s} must not be proposed"
        for s in expect.get("servicesAbsent", [])
        if s in got["services"]
    ]
    problems += [
        f"medication {m} missing"
        for m in expect.get("medications", [])
        if m not in got["medications"]
    ]
    problems += [
        f"medication {m} must not be proposed"
        for m in expect.get("medicationsAbsent", [])
        if m in got["medications"]
    ]
    problems += [
        f"issue {i} missing (got {got['issues']})"
        for i in expect.get("issues", [])
        if i not in got["issues"]
    ]
    problems += [
        f"issue {i} must not appear" for i in expect.get("issuesAbsent", []) if i in got["issues"]
    ]
    assert not problems, f"{case['id']}: {case['description']}\n  " + "\n  ".join(problems)


def _activity_problems(expect: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """CarePlan activities (any kind) that must, or must not, be in the plan."""
    missing = [a for a in expect.get("activities", []) if a not in got["activities"]]
    unwanted = [a for a in expect.get("activitiesAbsent", []) if a in got["activities"]]
    return [f"activity {a} missing (got {got['activities']})" for a in missing] + [
        f"activity {a} must not be proposed" for a in unwanted
    ]


def _value_problems(expect: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Single values, and the exact sets of red flags and medication-safety findings."""
    problems = [
        f"{key}: expected {expect[key]}, got {got.get(key)}"
        for key in ("painType", "certainty", "recommendedStage")
        if key in expect and got.get(key) != expect[key]
    ]
    return problems + [
        f"{key}: expected {sorted(expect[key])}, got {got[key]}"
        for key in ("redFlags", "medicationIssues")
        if key in expect and sorted(expect[key]) != got[key]
    ]


# --- the result compared in full ----------------------------------------------------------------
# The summaries above state the clinical intent; the expected result Bundles below catch every
# other change to what PainPath emits. Regenerate them only on purpose, then review the diff of
# tests/golden/expected/ in the commit:  PAINPATH_UPDATE_GOLDEN=1 pytest tests/golden
EXPECTED = Path(__file__).parent / "expected"
UPDATE = os.environ.get("PAINPATH_UPDATE_GOLDEN") == "1"


def _differences(expected: Any, got: Any, path: str = "$") -> list[str]:
    """JSON paths where two parsed JSON values differ."""
    if isinstance(expected, dict) and isinstance(got, dict):
        found = []
        for key in sorted(set(expected) | set(got)):
            if key not in got or key not in expected:
                found.append(f"{path}.{key}: {'missing' if key not in got else 'unexpected'}")
            else:
                found += _differences(expected[key], got[key], f"{path}.{key}")
        return found
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{path}: {len(expected)} items expected, {len(got)} found"]
        return [d for i, (e, g) in enumerate(zip(expected, got, strict=True))
                for d in _differences(e, g, f"{path}[{i}]")]  # fmt: skip
    return [] if expected == got else [f"{path}: expected {expected!r}, got {got!r}"]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_result_in_full(path: Path, pipeline: Pipeline) -> None:
    case = orjson.loads(path.read_bytes())
    got = run_case(pipeline, case)
    target = EXPECTED / path.name
    if UPDATE:
        EXPECTED.mkdir(exist_ok=True)
        target.write_bytes(orjson.dumps(got, option=orjson.OPT_INDENT_2) + b"\n")
    assert target.exists(), f"no expected result: run with PAINPATH_UPDATE_GOLDEN=1 ({path.stem})"
    differences = _differences(orjson.loads(target.read_bytes()), got)
    assert not differences, "\n".join(differences[:20])


def test_every_expected_result_has_its_case() -> None:
    assert {p.name for p in EXPECTED.glob("*.json")} == {p.name for p in CASES}


def test_the_comparison_finds_a_change() -> None:
    before = {"entry": [{"resource": {"status": "draft", "code": "x"}}]}
    after = {"entry": [{"resource": {"status": "active", "code": "x"}}]}
    assert _differences(before, after) == [
        "$.entry[0].resource.status: expected 'draft', got 'active'"
    ]
    assert _differences(before, {"entry": []}) == ["$.entry: 1 items expected, 0 found"]
