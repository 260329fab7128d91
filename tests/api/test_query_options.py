"""Query options of ``$triage``, ``$apply``, ``$populate`` and ``/ui/summary``: one reading for
all of them. A bad, empty or repeated option is a 400; a parameter the operation does not take is
reported in the answer's OperationOutcome (lenient, the default) or refused under
``Prefer: handling=strict``; FHIR's ``_format`` and ``_pretty`` are always accepted."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import CAUDA, FHIR_JSON, Json, case_bundle

TRIAGE = "/fhir/$triage"
SUMMARY = "/ui/summary"
APPLY = "/fhir/PlanDefinition/back-pain-pathway/$apply"
POPULATE = "/fhir/Questionnaire/red-flag-screen/$populate"
AS_OF = "2026-11-24T10:00:00+01:00"
STRICT = {"Prefer": "handling=strict"}


def _body(path: str) -> bytes:
    bundle = case_bundle(CAUDA)
    if path in (APPLY, POPULATE):  # the patient's data as a Parameters part
        return orjson.dumps(
            {"resourceType": "Parameters", "parameter": [{"name": "data", "resource": bundle}]}
        )
    return orjson.dumps(bundle)


def _post(client: TestClient, path: str, params: Any, **headers: str) -> Any:
    return client.post(
        path, content=_body(path), params=params, headers={"content-type": FHIR_JSON, **headers}
    )


def _warnings(path: str, answer: Json) -> list[Json]:
    """The warning issues of the answer's OperationOutcome(s), wherever the operation puts them."""
    if path == SUMMARY:
        answer = answer["result"]
    if path == APPLY:
        resources = answer["contained"]
    elif path == POPULATE:
        resources = [p["resource"] for p in answer["parameter"] if p["name"] == "issues"]
    else:
        resources = [e["resource"] for e in answer["entry"]]
    return [
        i
        for r in resources
        if r["resourceType"] == "OperationOutcome"
        for i in r["issue"]
        if i["severity"] == "warning"
    ]


OPERATIONS = [TRIAGE, SUMMARY, APPLY, POPULATE]


@pytest.mark.parametrize("path", OPERATIONS)
@pytest.mark.parametrize(
    ("params", "expression"),
    [
        ({"asOf": "garbage"}, "asOf"),
        ({"asOf": ""}, "asOf"),
        ({"asOf": "2026-10-01T10:00:00"}, "asOf"),  # a time needs a zone
        ({"asOf": AS_OF, "profile": "x"}, "profile"),
        ({"asOf": AS_OF, "validation": "sometimes"}, "validation"),
        ([("asOf", AS_OF), ("asOf", "2025-01-01")], "asOf"),
    ],
    ids=["asof-garbage", "asof-empty", "asof-no-zone", "profile", "validation", "repeated"],
)
def test_every_operation_refuses_a_bad_query_option(
    client: TestClient, path: str, params: Any, expression: str
) -> None:
    answer = _post(client, path, params)
    assert answer.status_code == 400, answer.text[:300]
    (issue,) = answer.json()["issue"]
    assert issue["expression"] == [expression]


@pytest.mark.parametrize("path", [APPLY, POPULATE])
def test_apply_and_populate_evaluate_at_the_query_as_of(client: TestClient, path: str) -> None:
    first = _post(client, path, {"asOf": AS_OF})
    assert first.status_code == 200, first.text[:300]
    assert _post(client, path, {"asOf": AS_OF}).content == first.content  # deterministic
    later = _post(client, path, {"asOf": "2027-11-24T10:00:00+01:00"})
    assert later.content != first.content
    assert "2026-11-24T09:00:00+00:00" in first.text  # the evaluation date, in UTC


def test_a_body_part_wins_over_the_query_option(client: TestClient) -> None:
    parameters = orjson.loads(_body(APPLY))
    parameters["parameter"].append({"name": "asOf", "valueDateTime": AS_OF})
    answer = client.post(APPLY, content=orjson.dumps(parameters), params={"asOf": "2030-01-01"},
                         headers={"content-type": FHIR_JSON})  # fmt: skip
    assert answer.content == _post(client, APPLY, {"asOf": AS_OF}).content


@pytest.mark.parametrize("path", OPERATIONS)
def test_an_unknown_query_parameter_is_reported_not_dropped(client: TestClient, path: str) -> None:
    answer = _post(client, path, {"asOf": AS_OF, "bogus": "1"})
    assert answer.status_code == 200, answer.text[:300]
    [warning] = [w for w in _warnings(path, answer.json()) if w["code"] == "not-supported"]
    assert warning["expression"] == ["bogus"]
    assert "ignored" in warning["diagnostics"]
    assert "handling=strict" in warning["diagnostics"]


@pytest.mark.parametrize("path", OPERATIONS)
def test_an_unknown_query_parameter_is_400_under_strict_handling(
    client: TestClient, path: str
) -> None:
    answer = _post(client, path, {"asOf": AS_OF, "bogus": "1"}, **STRICT)
    assert answer.status_code == 400, answer.text[:300]
    (issue,) = answer.json()["issue"]
    assert issue["code"] == "invalid"
    assert issue["expression"] == ["bogus"]


@pytest.mark.parametrize("path", OPERATIONS)
def test_format_and_pretty_are_always_accepted(client: TestClient, path: str) -> None:
    params = {"asOf": AS_OF, "_format": "json", "_pretty": "true"}
    answer = _post(client, path, params, **STRICT)
    assert answer.status_code == 200, answer.text[:300]
    assert not [w for w in _warnings(path, answer.json()) if w["code"] == "not-supported"]
    assert answer.content == _post(client, path, {"asOf": AS_OF}).content


def test_return_is_not_an_apply_option(client: TestClient) -> None:
    answer = _post(client, APPLY, {"asOf": AS_OF, "return": "transaction"}, **STRICT)
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["expression"] == ["return"]


def test_an_odd_parameter_name_is_reported_without_repeating_it(client: TestClient) -> None:
    answer = _post(client, TRIAGE, {"asOf": AS_OF, "Zebulon ZQX<note>": "1"})
    assert answer.status_code == 200
    assert "ZQX" not in answer.text
    [warning] = [w for w in _warnings(TRIAGE, answer.json()) if w["code"] == "not-supported"]
    assert "expression" not in warning


def test_validation_sent_as_a_query_option_applies_to_apply_data(client: TestClient) -> None:
    parameters = orjson.loads(_body(APPLY))
    bundle = parameters["parameter"][0]["resource"]
    bundle["entry"].append({"resource": {"resourceType": "Claim", "status": "bogus"}})
    content = orjson.dumps(parameters)
    headers = {"content-type": FHIR_JSON}
    lenient = client.post(APPLY, content=content, params={"asOf": AS_OF}, headers=headers)
    assert lenient.status_code == 200, lenient.text[:300]
    strict = client.post(APPLY, content=content, params={"asOf": AS_OF, "validation": "strict"},
                         headers=headers)  # fmt: skip
    assert strict.status_code == 400, strict.text[:300]
