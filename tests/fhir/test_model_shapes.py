"""The fast model walk (``service.fhir.model_shapes.conforms``) against the R4B models it stands in
for: whenever the walk says yes, the models must say yes too (the walk's yes skips them), on every
resource PainPath reads in the golden inputs, the samples and whole Synthea-shaped records, and on
thousands of seeded mutations of those resources that the R4 JSON Schema still accepts. Each rule
the models add to the schema is also shown on both sides, and the walk must say yes to nearly all
of a real record (else it would save nothing)."""

from __future__ import annotations

import copy
import random
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class as model_class
from fhir_testkit import CASES, Json, load_case
from pydantic import ValidationError

from bench.make_record import make_record
from service.fhir import model_shapes
from service.fhir.ingest import READ_TYPES
from service.fhir.model_shapes import conforms
from service.fhir.validate import _fast_valid, validate_resource

SAMPLES = Path(__file__).parents[2] / "samples"


def _models_accept(resource: Json) -> bool:
    try:
        model_class(resource["resourceType"]).model_validate(resource)
    except ValidationError:
        return False
    return True


def _read_resources(bundle: Json) -> Iterator[Json]:
    for entry in bundle.get("entry", ()):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") in READ_TYPES:
            yield resource


def _corpus() -> list[Json]:
    found: list[Json] = []
    for path in sorted(CASES.glob("*.json")):
        found += _read_resources(load_case(path.stem)["bundle"])
    for path in sorted(SAMPLES.glob("*.json")):
        sample = orjson.loads(path.read_bytes())
        if sample.get("resourceType") == "Bundle":
            found += _read_resources(sample)
    found += _read_resources(make_record(1500, seed=11))
    return [r for r in found if _fast_valid(r)]


CORPUS = _corpus()


def test_the_corpus_is_real_and_the_walk_vouches_for_nearly_all_of_it() -> None:
    assert len(CORPUS) > 500
    assert {r["resourceType"] for r in CORPUS} >= {
        "Patient", "Condition", "Observation", "MedicationRequest", "Medication", "Procedure",
    }  # fmt: skip
    vouched = [r for r in CORPUS if conforms(r)]
    assert len(vouched) >= 0.95 * len(CORPUS)


def test_every_resource_the_walk_vouches_for_the_models_accept() -> None:
    wrong = [r.get("id") for r in CORPUS if conforms(r) and not _models_accept(r)]
    assert wrong == []


# --- seeded mutations: whatever the schema still accepts, a walk's yes is the models' yes ---


def _nodes(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, (*path, index))


_DATES = ["2024-02-29", "2023-02-29", "2023-04-31", "2023-13-01", "2023-06", "1999",
          "2023-02-28T10:00:00Z", "2023-02-30T10:00:00+01:00", "2023-01-01T23:59:60Z",
          "2023-01-01T10:00:00.1234567Z", "2023-01-01T10:00:00"]  # fmt: skip
_VALUES: list[Any] = [None, 0, -1, 1, 2.5, 2**31, True, "", " ", "x", {}, [], [None], {"a": 1},
                      "08:00:00", "24:00:00", "08:00:60", *_DATES]  # fmt: skip
_CHOICES = {"valueQuantity": {"value": 1}, "valueString": "x", "valueBoolean": True,
            "effectiveDateTime": "2023-01-01", "effectivePeriod": {"start": "2023-01-01"},
            "onsetDateTime": "2023-01-01", "onsetString": "x", "deceasedBoolean": False,
            "deceasedDateTime": "2020-01-01", "medicationReference": {"reference": "Medication/m"},
            "medicationCodeableConcept": {"text": "x"}, "performedDateTime": "2023-01-01",
            "performedString": "x", "asNeededBoolean": True, "timingDateTime": "2023-01-01",
            "_status": {"extension": [{"url": "http://e", "valueCode": "unknown"}]},
            "_status ": {}, "status": "active"}  # fmt: skip


def _mutate(resource: Json, rng: random.Random) -> Json:
    mutated = copy.deepcopy(resource)
    for _ in range(rng.randint(1, 3)):
        spots = [(p, n) for p, n in _nodes(mutated) if isinstance(n, dict | list)]
        _path, node = rng.choice(spots)
        if isinstance(node, dict):
            move = rng.randrange(3)
            if move == 0 and node:
                del node[rng.choice(sorted(node))]
            elif move == 1:
                key, value = rng.choice(sorted(_CHOICES.items()))
                node[key.strip()] = copy.deepcopy(value)
            elif node:
                node[rng.choice(sorted(node))] = copy.deepcopy(rng.choice(_VALUES))
        elif node:
            node[rng.randrange(len(node))] = copy.deepcopy(rng.choice(_VALUES))
    return mutated


SEEDS = range(32)
_REFUSED_BY_BOTH: dict[int, int] = {}  # seed -> schema-valid mutations the walk and models refuse


@pytest.mark.parametrize("seed", SEEDS)
def test_mutations_the_schema_accepts_never_pass_the_walk_alone(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - seeded mutations, not secrets
    tried = agreed_no = 0
    for resource in rng.sample(CORPUS, min(600, len(CORPUS))):
        mutated = _mutate(resource, rng)
        if not isinstance(mutated.get("resourceType"), str) or not _fast_valid(mutated):
            continue
        tried += 1
        walk, models = conforms(mutated), _models_accept(mutated)
        assert not (walk and not models), mutated
        agreed_no += not walk and not models
    assert tried >= 50
    _REFUSED_BY_BOTH[seed] = agreed_no


def test_the_mutations_reach_what_only_the_models_refuse() -> None:
    """The seeded rounds are no empty exercise: across them, schema-valid mutations do break
    rules only the models (and the walk) check. Counted over all rounds, since one round's sample
    of the corpus may happen to hold none."""
    for seed in SEEDS:
        if seed not in _REFUSED_BY_BOTH:  # run alone (-k): do the round here
            test_mutations_the_schema_accepts_never_pass_the_walk_alone(seed)
    assert sum(_REFUSED_BY_BOTH.values()) >= len(SEEDS)


# --- each rule, both sides ---------------------------------------------------------------

OBS: Json = {
    "resourceType": "Observation", "id": "o", "status": "final",
    "code": {"text": "pain"}, "subject": {"reference": "Patient/p"},
}  # fmt: skip


def _obs(**changes: Any) -> Json:
    resource = copy.deepcopy(OBS)
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


@pytest.mark.parametrize(
    ("resource", "walk", "models"),
    [
        (_obs(), True, True),
        (_obs(valueQuantity={"value": 3}), True, True),
        (_obs(valueQuantity={"value": 3}, valueString="3"), False, False),  # choice twice
        (_obs(status=None), False, False),  # required primitive missing
        (
            _obs(
                status=None,
                _status={
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                            "valueCode": "unknown",
                        }
                    ]
                },
            ),
            True,
            True,
        ),  # ... stood in for by its extension
        (_obs(status=None, _status={"id": "x"}), False, False),  # an extension-less stand-in
        (_obs(_status={}), False, False),  # a sibling that says nothing
        (_obs(_status={"id": "s"}), True, True),
        (_obs(code=None), False, False),  # required complex element
        (_obs(effectiveDateTime="2024-02-29"), True, True),
        (_obs(effectiveDateTime="2023-02-29"), False, False),  # no such day
        (_obs(effectiveDateTime="2023-02-28T10:00:00.123456+01:00"), True, True),
        (_obs(effectiveDateTime="2023-01-01T23:59:60Z"), False, True),  # leap second: models
        (_obs(valueInteger=7), True, True),
        (_obs(valueInteger=2.5), False, False),  # the schema types integers as any number
        (_obs(valueInteger=2**31), False, False),
        (_obs(valueTime="08:00:00"), True, True),
        (_obs(component=[None]), False, False),
        (_obs(contained=[_obs(id="c", valueString="a", valueBoolean=True)]), False, False),
        (_obs(contained=[_obs(id="c")]), True, True),
        (_obs(valueAttachment={"url": "http://x"}), False, False),  # not a value[x] of R4B
    ],
)
def test_each_rule_the_models_add_on_both_sides(resource: Json, walk: bool, models: bool) -> None:
    assert conforms(resource) is walk
    assert _models_accept(resource) is models
    # and through the validator itself: a refusal names the problem, a pass names none
    assert (validate_resource(resource, "Observation") == []) is models


def test_a_url_element_is_left_to_the_models() -> None:
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "MRI"},
              "presentedForm": [{"url": "http://example.org/report.pdf"}]}  # fmt: skip
    assert conforms(report) is False
    assert _models_accept(report)


@pytest.mark.parametrize(("data", "walk"), [("aGVsbG8=", True), ("aGVsbG8", False), ("é", False)])
def test_base64_the_walk_decodes_as_the_models_do(data: str, walk: bool) -> None:
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "note"},
              "presentedForm": [{"contentType": "text/plain", "data": data}]}  # fmt: skip
    assert conforms(report) is walk
    assert _models_accept(report) or not walk


def test_an_unknown_type_is_left_to_the_models() -> None:
    assert conforms({"resourceType": "NoSuchThing"}) is False
    assert conforms(_obs(contained=[{"resourceType": "NoSuchThing"}])) is False


@pytest.mark.parametrize(
    "resource",
    [
        _obs(component={"code": {"text": "x"}}),  # a list element given one object
        _obs(code="pain"),  # a complex element given a string
        _obs(effectiveDateTime=20230101),
        _obs(valueInteger="7"),
        {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "note"},
         "presentedForm": [{"data": 12}]},
    ],
)  # fmt: skip
def test_what_the_schema_refuses_the_walk_never_vouches_for(resource: Json) -> None:
    """The walk runs after the schema, but whatever it is given it answers, and never yes to a
    value of the wrong JSON type."""
    assert not _fast_valid(resource)
    assert conforms(resource) is False


@pytest.mark.parametrize(
    "annotation",
    [int | str, typing.Optional[typing.List[int | str]], int, typing.List[str]],  # noqa: UP006, UP045
)
def test_annotations_the_walk_cannot_read_are_left_to_the_models(annotation: Any) -> None:
    assert model_shapes._element(annotation) is None
