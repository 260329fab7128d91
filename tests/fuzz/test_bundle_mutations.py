"""Hypothesis mutations of valid golden Bundles: every answer is 200, or 4xx with an
OperationOutcome - never a 5xx, never slow, and memory stays bounded.

Mutations: wrong types, deleted (required) elements, unknown resource types, huge strings, deep
nesting, duplicate ids, dangling references, reference loops, lone surrogates and invalid UTF-8,
NaN/Infinity literals, truncated bodies, wrong content types; plus fixed cases for 10k-entry
Bundles and bodies over the limit. Deterministic (``derandomize``), bounded example counts.
"""

from __future__ import annotations

import copy
import json
import time
import tracemalloc
from collections import Counter
from typing import Any, NoReturn

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import CASES as CASE_DIR
from fhir_testkit import FHIR_JSON
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.fhir import validate
from service.settings import Settings

Json = dict[str, Any]
GOLDEN = sorted(p.stem for p in CASE_DIR.glob("*.json"))[:40]
OK_STATUSES = {200, 400, 404, 413, 415, 422}
MAX_SECONDS = 10.0  # per request, generous for a slow CI machine (typical: < 0.2 s)


def golden(name: str) -> Json:
    data: Json = orjson.loads((CASE_DIR / f"{name}.json").read_bytes())
    return data.get("bundle", data) if "resourceType" not in data else data


def slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON tree, parents before children."""
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            slots(value, out)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append((node, index))
            slots(value, out)
    return out


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"extension": value}
    return value


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.just("Z" * 200_000),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.integers(min_value=10, max_value=250).map(nested),  # orjson writes <= 255,
)


def _mutate_tree(draw: st.DrawFn, kind: str, bundle: Json) -> None:
    entries = bundle.get("entry", [])
    where = slots(bundle, [])
    resources = [e["resource"] for e in entries if isinstance(e.get("resource"), dict)]
    if kind in ("wrong-type", "delete") and where:
        container, key = where[draw(st.integers(0, len(where) - 1))]
        if kind == "delete":
            del container[key]
        else:
            container[key] = draw(JUNK)
    elif kind == "unknown-type" and resources:
        draw(st.sampled_from(resources))["resourceType"] = draw(
            st.sampled_from(["Widget", "", "patient", "Bundle", "Parameters", "OperationOutcome"])
        )
    elif kind == "duplicate-id" and entries:
        entries.extend(copy.deepcopy(entries[: draw(st.integers(1, len(entries)))]))
    elif kind == "dangling-ref" and resources:
        draw(st.sampled_from(resources))["subject"] = {"reference": "Patient/does-not-exist"}
    elif kind == "ref-loop" and len(resources) >= 2:
        a, b = resources[-1], resources[-2]
        a["id"], b["id"] = a.get("id") or "loop-a", b.get("id") or "loop-b"
        a["subject"] = {"reference": f"{b['resourceType']}/{b['id']}"}
        b["subject"] = {"reference": f"{a['resourceType']}/{a['id']}"}


def _mutate_bytes(draw: st.DrawFn, kind: str, body: bytes) -> bytes:
    if kind == "surrogate":
        return body.replace(b'"status":"', b'"status":"\\ud800', 1)
    if kind == "bad-utf8":
        return body.replace(b'"', b'"\xff\xfe', 1)
    if kind == "nan":
        return body.replace(b'"value":', b'"value":NaN,"x":', 1).replace(b":1", b":Infinity", 1)
    if kind == "truncate":
        return body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    return body


TREE_KINDS = ["wrong-type", "delete", "unknown-type", "duplicate-id", "dangling-ref", "ref-loop"]
BYTE_KINDS = ["surrogate", "bad-utf8", "nan", "truncate", "content-type"]
CONTENT_TYPES = ["text/plain", "application/xml", "multipart/form-data", "application/fhir+xml",
                 "", "application/json", "application/fhir+json; charset=utf-8"]  # fmt: skip


def _dumps(value: Any) -> bytes:
    """JSON bytes; integers beyond 64 bits (valid JSON, JUNK makes them) need the json module."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(mutation, body, content type)."""
    bundle = copy.deepcopy(golden(draw(st.sampled_from(GOLDEN))))
    kind = draw(st.sampled_from(TREE_KINDS + TREE_KINDS[:2] + BYTE_KINDS))
    _mutate_tree(draw, kind, bundle)
    body = _mutate_bytes(draw, kind, _dumps(bundle))
    content_type = draw(st.sampled_from(CONTENT_TYPES)) if kind == "content-type" else FHIR_JSON
    return kind, body, content_type


def check(answer: Any, elapsed: float, answered: str = "Bundle") -> None:
    assert answer.status_code in OK_STATUSES, (answer.status_code, answer.text[:500])
    assert elapsed < MAX_SECONDS
    if answer.status_code != 200:
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"]
        assert all(i.get("diagnostics") for i in outcome["issue"])
    else:
        assert answer.json()["resourceType"] == answered


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated())
def test_mutated_bundles_never_5xx(
    fuzz_client: TestClient, fuzz_cases: Counter[str], case: tuple[str, bytes, str]
) -> None:
    kind, body, content_type = case
    started = time.perf_counter()
    answer = fuzz_client.post("/fhir/$triage", content=body, headers={"Content-Type": content_type})
    check(answer, time.perf_counter() - started)
    fuzz_cases["bundle-mutations"] += 1
    fuzz_cases[f"bundle-mutations:{kind}"] += 1


OPERATIONS = {
    "/fhir/PlanDefinition/back-pain-pathway/$apply": "CarePlan",
    "/fhir/Questionnaire/red-flag-screen/$populate": "Parameters",
    "/fhir/Questionnaire/stage-facts/$populate": "Parameters",
}


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated(), path=st.sampled_from(sorted(OPERATIONS)))
def test_mutated_data_to_apply_and_populate_never_5xx(
    fuzz_client: TestClient, fuzz_cases: Counter[str], case: tuple[str, bytes, str], path: str
) -> None:
    """The same mutations as the data Bundle of $apply and $populate (wrapped at byte level, so
    a truncated or invalid body stays invalid)."""
    _kind, body, content_type = case
    wrapped = (
        b'{"resourceType":"Parameters","parameter":[{"name":"data","resource":' + body + b"}]}"
    )
    started = time.perf_counter()
    answer = fuzz_client.post(path, content=wrapped, headers={"Content-Type": content_type})
    check(answer, time.perf_counter() - started, OPERATIONS[path])
    fuzz_cases["operation-mutations"] += 1


def _post(client: TestClient, body: bytes, content_type: str = FHIR_JSON) -> Any:
    started = time.perf_counter()
    answer = client.post("/fhir/$triage", content=body, headers={"Content-Type": content_type})
    check(answer, time.perf_counter() - started)
    return answer


@pytest.mark.parametrize("depth", [63, 65, 200, 1024, 1025, 100_000])
def test_deep_nesting_is_refused_before_validation(
    fuzz_client: TestClient, fuzz_cases: Counter[str], depth: int
) -> None:
    bundle = golden(GOLDEN[0])
    bundle["entry"][0]["resource"]["extension"] = [nested(depth)]
    body = (
        orjson.dumps(bundle)
        if depth <= 1000
        else b'{"resourceType":"Bundle","x":' + (b"[" * depth + b"]" * depth + b"}")
    )
    answer = _post(fuzz_client, body)
    fuzz_cases["fixed"] += 1
    if depth > 64:
        assert answer.status_code in (400, 413)
        assert "deeper than" in answer.text or "depth limit" in answer.text


def _observation(index: int) -> Json:
    return {
        "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{index:012d}",
        "resource": {
            "resourceType": "Observation",
            "id": f"o{index}",
            "status": "final",
            "code": {"text": "pain"},
            "subject": {"reference": "Patient/p"},
            "valueInteger": index % 10,
        },
    }


def test_ten_thousand_entries_answer_in_time_and_bounded_memory(
    fuzz_client: TestClient, fuzz_cases: Counter[str]
) -> None:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [_observation(i) for i in range(10_000)]
    body = orjson.dumps(bundle)
    tracemalloc.start()
    try:
        answer = _post(fuzz_client, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    fuzz_cases["fixed"] += 1
    assert answer.status_code in (200, 400, 422)
    # ~2.4 MB of JSON; parsed, validated and evaluated it stays well under 400 MB of Python heap
    assert peak < 400 * 1024 * 1024, peak


def test_too_many_entries_is_413_before_validation(
    fuzz_client: TestClient, fuzz_cases: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    limit = Settings(_env_file=None).max_entries
    bundle["entry"] = [{"resource": {"resourceType": "Widget"}}] * (limit + 1)

    def no_validation(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("an entry was validated before the entry count was checked")

    # refused before any resource is validated: no validator may run
    monkeypatch.setattr(validate, "_fast_valid", no_validation)
    monkeypatch.setattr(validate, "validate_resource", no_validation)
    answer = _post(fuzz_client, orjson.dumps(bundle))
    fuzz_cases["fixed"] += 1
    assert answer.status_code == 413


@pytest.mark.parametrize("declared", [True, False])
def test_body_over_the_limit_is_413(
    fuzz_client: TestClient, fuzz_cases: Counter[str], declared: bool
) -> None:
    size = Settings(_env_file=None).max_body_bytes
    body = b'{"resourceType":"Bundle","type":"collection","x":"' + b"A" * size + b'"}'
    headers = {"Content-Type": FHIR_JSON}
    if declared:
        answer = fuzz_client.post("/fhir/$triage", content=body, headers=headers)
    else:  # chunked: no Content-Length, the stream is cut off at the limit
        answer = fuzz_client.post("/fhir/$triage", content=iter([body[:4096], body[4096:]]),
                                  headers=headers)  # fmt: skip
    fuzz_cases["fixed"] += 1
    assert answer.status_code == 413
    assert answer.json()["issue"][0]["code"] == "too-costly"
