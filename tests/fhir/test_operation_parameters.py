"""Reading ``$apply``/``$populate`` Parameters and writing pre-filled answers (wire format)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fhir_testkit import CAUDA, load_case

from service.app.pipeline import Pipeline
from service.app.populate import populate
from service.fhir.apply import read_apply_request
from service.fhir.errors import InputError
from service.fhir.populate import answer_value, populate_parameters

PP = "https://painpath.dev/fhir"
PATHWAY = f"{PP}/PlanDefinition/back-pain-pathway"
LIMITS: dict[str, Any] = {"max_bytes": 10**7, "max_entries": 1000}


def _read(*parts: Any, **kw: Any) -> Any:
    body = orjson.dumps({"resourceType": "Parameters", "parameter": list(parts)})
    return read_apply_request(body, **LIMITS, **kw)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([{"name": "subject", "valueString": "Patient/a_b"}], "must be a FHIR id"),
        ([{"name": "subject", "valueString": "Patient/.."}], "must be a FHIR id"),
        ([{"name": "url", "valueCanonical": PATHWAY}, {"name": "planDefinition", "valueCanonical": PATHWAY}], "not both"),  # noqa: E501
        ([{"valueString": "x"}], "name"),
        ([{"name": "planDefinition", "resource": {"resourceType": "Library", "url": "x"}}], "must be a PlanDefinition"),  # noqa: E501
        ([{"name": "url", "valueBoolean": True}], "needs valueCanonical"),
    ],
)  # fmt: skip
def test_bad_parts_are_refused(parts: list[Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _read(*parts)


def test_a_parameters_that_is_not_valid_r4_is_refused() -> None:
    body = orjson.dumps({"resourceType": "Parameters", "parameter": "x"})
    with pytest.raises(InputError) as caught:
        read_apply_request(body, **LIMITS)
    assert caught.value.kind == "invalid"


def test_plan_by_reference_and_validation_part() -> None:
    by_ref = _read(
        {
            "name": "planDefinition",
            "valueReference": {"reference": "PlanDefinition/back-pain-pathway"},
        }
    )
    assert by_ref.plan == PATHWAY
    other = _read({"name": "planDefinition", "valueReference": {"reference": "https://x/PD/1"}})
    assert other.plan == "https://x/PD/1"
    bundle = load_case(CAUDA)["bundle"]
    strict = _read(
        {"name": "data", "resource": bundle}, {"name": "validation", "valueCode": "strict"}
    )
    assert strict.options == {"validation": "strict"}
    assert strict.data is not None


def test_answer_values_follow_the_item_type() -> None:
    assert answer_value({"type": "integer"}, 3.0) == {"valueInteger": 3}
    assert answer_value({"type": "decimal"}, 2) == {"valueDecimal": 2.0}
    assert answer_value({"type": "integer"}, True) is None
    onset = datetime(2026, 11, 10, tzinfo=UTC)
    assert answer_value({"type": "dateTime"}, onset) == {
        "valueDateTime": "2026-11-10T00:00:00+00:00"
    }
    assert answer_value({"type": "dateTime"}, "2026-11-10") is None
    coding = {"system": "s", "code": "a"}
    choice = {
        "type": "choice",
        "answerOption": [{"valueCoding": {"code": "b"}}, {"valueCoding": coding}],
    }
    assert answer_value(choice, "a") == {"valueCoding": coding}
    assert answer_value(choice, "z") is None
    assert answer_value({"type": "string"}, "a") is None


def test_groups_appear_when_one_of_their_items_is_answered() -> None:
    questionnaire = {
        "url": f"{PP}/Questionnaire/q",
        "item": [
            {"linkId": "g", "type": "group", "text": "G", "item": [
                {"linkId": "a", "type": "boolean"}, {"linkId": "b", "type": "boolean"}]},
            {"linkId": "h", "type": "group", "item": [{"linkId": "c", "type": "boolean"}]},
        ],
    }  # fmt: skip
    answer = populate_parameters(
        questionnaire, {"a": (True, "Observation/1")}, rid="r", subject="Patient/p", authored="x"
    )
    [group] = answer["parameter"][0]["resource"]["item"]
    assert group["linkId"] == "g"
    assert [i["linkId"] for i in group["item"]] == ["a"]
    assert "1 of 3 items" in answer["parameter"][1]["resource"]["issue"][0]["diagnostics"]


def test_populate_for_a_patient_not_in_the_data_is_refused(pipeline: Pipeline) -> None:
    case = load_case(CAUDA)
    options = pipeline.options({"asOf": case["asOf"]}, now=datetime(2026, 11, 24, tzinfo=UTC))
    result = pipeline.evaluate(case["bundle"], options)
    with pytest.raises(InputError, match="not a patient"):
        populate(pipeline, {"id": "dn4", "url": f"{PP}/Questionnaire/dn4"}, result, "Patient/x")
