"""Golden vignettes: clinical cases written from docs/clinical-rules.md (tests/golden/README.md).

Each case states only what the rules decide; this test asserts every stated expectation.
"""

from __future__ import annotations

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
