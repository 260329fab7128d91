"""The fast path changes cost, never answers.

- Output: the plain dicts PainPath emits are what fhir.resources R4B makes of them (model_validate
  + model_dump round trip equal) for every golden case, in both return modes.
- Input: the jsonschema-rs pre-check and the relevance filter give the same verdict and the same
  problems (expressions and messages) as the full Python schema + model path.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle

from service.app import pipeline as pipeline_module
from service.app.pipeline import Pipeline
from service.fhir import validate
from service.fhir.errors import InputError
from service.fhir.ingest import Ingested, ingest

CASES = sorted((Path(__file__).parents[1] / "golden" / "cases").glob("*.json"))
_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _same(left: Any, right: Any, where: str = "") -> list[str]:
    """Differences between two JSON values; an instant written ``Z`` or ``+00:00`` is the same."""
    if isinstance(left, dict) and isinstance(right, dict):
        keys = sorted(set(left) | set(right))
        return [d for k in keys for d in _same(left.get(k), right.get(k), f"{where}.{k}")]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            d
            for i, pair in enumerate(zip(left, right, strict=True))
            for d in _same(*pair, f"{where}[{i}]")
        ]
    if isinstance(left, str) and isinstance(right, str) and _INSTANT.match(left):
        same = _INSTANT.match(right) and datetime.fromisoformat(left) == datetime.fromisoformat(
            right
        )
        return [] if same else [f"{where}: {left!r} != {right!r}"]
    return (
        [] if left == right and type(left) is type(right) else [f"{where}: {left!r} != {right!r}"]
    )


def _run(pipeline: Pipeline, case: dict[str, Any], mode: str) -> dict[str, Any]:
    body = orjson.dumps(case["bundle"])
    raw = {"asOf": case["asOf"], "profile": case.get("profile"), "return": mode}
    return pipeline.run_body(body, raw, now=datetime(2026, 11, 24, tzinfo=UTC)).bundle


@pytest.mark.parametrize("mode", ["collection", "transaction"])
def test_plain_dict_output_is_the_fhir_resources_form(pipeline: Pipeline, mode: str) -> None:
    for path in CASES:
        out = _run(pipeline, orjson.loads(path.read_bytes()), mode)
        dumped = Bundle.model_validate(out).model_dump_json(exclude_none=True, by_alias=True)
        assert _same(out, orjson.loads(dumped)) == [], path.stem


def _problems(bundle: dict[str, Any], relevant: Callable[[dict[str, Any]], bool] | None) -> Any:
    try:
        validate.validate_bundle(bundle, max_entries=10**5, relevant=relevant)
    except InputError as exc:
        return exc.kind, [(p.expression, p.diagnostics) for p in exc.problems]
    return None


class _FailsAll:
    def is_valid(self, _: object) -> bool:
        return False


def _slow_problems(bundle: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        # jsonschema-rs fails everything: every resource takes the Python validator and models
        patch.setattr(validate, "_fast_validator", lambda _: _FailsAll())
        return _problems(bundle, None)


_MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bad-status": lambda r: r.update(status="done"),
    "unknown-element": lambda r: r.update(colour="red"),
    "impossible-date": lambda r: r.update(effectiveDateTime="2026-02-30T10:00:00Z"),
    "choice-twice": lambda r: r.update(valueString="six"),
    "newline-in-id": lambda r: r.update(id="abc\n"),
    "contained": lambda r: r.update(contained=[{"resourceType": "Patient", "id": "x"}]),
    "missing-code": lambda r: r.pop("code"),
}


@pytest.mark.parametrize("mutation", sorted(_MUTATIONS))
def test_fast_validation_reports_what_the_full_path_reports(
    pipeline: Pipeline, mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a rule-relevant Observation (the NRS) every mutation gets the full path's answer."""
    case = orjson.loads(next(p for p in CASES if "cauda-equina" in p.stem).read_bytes())
    bundle = copy.deepcopy(case["bundle"])
    _MUTATIONS[mutation](bundle["entry"][2]["resource"])
    assert _problems(bundle, pipeline.relevance) == _slow_problems(bundle, monkeypatch)


def test_golden_inputs_pass_both_paths(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in CASES:
        bundle = orjson.loads(path.read_bytes())["bundle"]
        assert _problems(bundle, pipeline.relevance) is None, path.stem
        assert _slow_problems(bundle, monkeypatch) is None, path.stem


def test_irrelevant_entries_skip_only_the_model_check(pipeline: Pipeline) -> None:
    """A vital sign no rule reads: schema errors still 400; the model-only check is skipped."""
    case = orjson.loads(next(p for p in CASES if "cauda-equina" in p.stem).read_bytes())
    vital = {
        "resourceType": "Observation", "id": "bp", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": "Patient/patient-1"},
        "effectiveDateTime": "2026-02-30T10:00:00Z",
    }  # fmt: skip
    bundle = copy.deepcopy(case["bundle"])
    bundle["entry"].append({"resource": vital})
    assert pipeline.relevance(vital) is False
    assert _problems(bundle, pipeline.relevance) is None
    assert _problems(bundle, None) is not None  # the full model check would refuse the date
    vital["status"] = "done"
    kind, problems = _problems(bundle, pipeline.relevance)
    assert kind == "invalid"
    assert problems[0][0] == f"Bundle.entry[{len(bundle['entry']) - 1}].resource.status"


def test_each_entry_is_read_once_per_request(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """$triage asks the relevance test once per entry (validation hands its selection to
    ingest), and /ui/summary builds its view from that run's reading, not a second ingest."""
    pipeline = client.app.state.pipeline
    asked: list[str] = []
    relevance = pipeline.relevance

    def counting(resource: dict[str, Any]) -> bool:
        asked.append(str(resource.get("id")))
        return bool(relevance(resource))

    monkeypatch.setattr(pipeline, "relevance", counting)
    ingests: list[int] = []

    def counting_ingest(*args: Any, **kwargs: Any) -> Ingested:
        ingests.append(1)
        return ingest(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "ingest", counting_ingest)
    case = orjson.loads(CASES[0].read_bytes())
    body = orjson.dumps(case["bundle"])
    headers = {"Content-Type": "application/fhir+json"}
    params = {"asOf": "2026-11-24T10:00:00+01:00"}
    for path in ("/fhir/$triage", "/ui/summary"):
        asked.clear()
        assert client.post(path, content=body, headers=headers, params=params).status_code == 200
        assert len(asked) == len(case["bundle"]["entry"]), path
    assert ingests == [1, 1], "one reading of the input per request, the view's included"
