"""Every threshold parameter, tested on both sides (values come from parameters.toml).

Each case builds a minimal record around a parameter value and states which side of the
threshold makes the rule fire. A meta-test checks that no parameter is left without a case, so a
new threshold cannot ship untested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from painpath_testkit import AS_OF

from service.domain.assessment import Assessment
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Dose, DoseLine, Item, Origin

Build = Callable[[Callable[..., Item], float], tuple[list[Item], int]]


@dataclass(frozen=True)
class Threshold:
    """A parameter, a record builder at value v, and what must hold at the firing side."""

    param: str
    build: Build
    holds: Callable[[Assessment], bool]
    fires_at: tuple[int, int]  # offsets from the parameter value: (fires, does not fire)


def _certainty_at_least_possible(a: Assessment) -> bool:
    return a.value("certainty") != "unlikely"


def _flag(code: str) -> Callable[[Assessment], bool]:
    return lambda a: code in {f.code for f in a.red_flags}


def _derived(name: str) -> Callable[[Assessment], bool]:
    return lambda a: name in a.derived


def _proposed(service: str) -> Callable[[Assessment], bool]:
    return lambda a: service in {p.service for p in a.proposals}


def _fired(rule: str) -> Callable[[Assessment], bool]:
    return lambda a: any(f.rule.id == rule and f.fired for f in a.firings)


def _activity(code: str) -> Callable[[Assessment], bool]:
    return lambda a: code in {f.code for f in a.activities}


def _morphine(item: Callable[..., Item], mme: float) -> tuple[list[Item], int]:
    """Chronic low back pain and morphine 1 mg tablets, ``mme`` of them once a day."""
    morphine = Item(
        "MedicationRequest/morphine", Origin.MEDICATION, (), "morphine sulfate 1 MG Oral Tablet",
        dose=Dose((DoseLine(amount=mme, unit=None, per_day=1.0),)),
    )  # fmt: skip
    return [item("chronic-low-back-pain", origin=Origin.CONDITION, days_ago=400), morphine], 45


def _prednisolone_since(months: float) -> Item:
    """A current prednisolone MedicationStatement started ``months`` before AS_OF."""
    start = AS_OF - timedelta(days=months * 365.25 / 12)
    return Item(
        "MedicationStatement/prednisolone", Origin.MEDICATION, (), "Prednisolone 5mg tablets",
        when=start,
    )  # fmt: skip


def _score(concept: str) -> Build:
    return lambda item, v: ([item("low-back-pain"), item(concept, value=v)], 45)


CASES = [
    Threshold("dn4_positive", _score("dn4-total"), _certainty_at_least_possible, (0, -1)),
    Threshold(
        "paindetect_positive", _score("paindetect-total"), _certainty_at_least_possible, (0, -1)
    ),
    Threshold("lanss_positive", _score("lanss-total"), _certainty_at_least_possible, (0, -1)),
    Threshold("lanss_positive", _score("s-lanss-total"), _certainty_at_least_possible, (0, -1)),
    Threshold("idpain_positive", _score("id-pain-total"), _certainty_at_least_possible, (0, -1)),
    Threshold(
        "paindetect_ambiguous",
        lambda item, v: (
            [item("paindetect-total", value=v), item("straight-leg-raise-positive")],
            45,
        ),
        lambda a: a.value("certainty") == "probable",
        (0, -1),
    ),
    Threshold(
        "weakness_sign_max_mrc",
        lambda item, v: ([item("sciatica"), item("motor-strength-mrc", value=v)], 45),
        lambda a: a.value("certainty") == "probable",
        (0, 1),
    ),
    Threshold(
        "deficit_max_mrc",
        lambda item, v: ([item("sciatica"), item("motor-strength-mrc", value=v)], 45),
        _flag("progressive-neurological-deficit"),
        (0, 1),
    ),
    Threshold(
        "malignancy_age_min",
        lambda item, v: ([item("low-back-pain"), item("night-pain")], int(v)),
        _flag("malignancy"),
        (1, 0),
    ),
    Threshold(
        "fracture_age_min",
        lambda item, v: ([item("low-back-pain"), item("minor-trauma")], int(v)),
        _flag("fracture"),
        (1, 0),
    ),
    Threshold(
        "crp_raised",
        lambda item, v: ([item("crp", value=v), item("immunosuppression")], 45),
        _flag("infection"),
        (1, 0),
    ),
    Threshold(
        "esr_raised",
        lambda item, v: ([item("esr", value=v), item("long-term-steroids")], 45),
        _flag("infection"),
        (1, 0),
    ),
    Threshold(
        "inflammatory_onset_age_max",
        lambda item, v: (
            [
                item("low-back-pain", origin=Origin.CONDITION, days_ago=400),
                item("morning-stiffness-minutes", value=60),
            ],
            int(v),  # born 1 January, onset 400 days ago: age at onset is one year less
        ),
        _flag("inflammatory"),
        (0, 1),
    ),
    Threshold(
        "inflammatory_min_weeks",
        lambda item, v: (
            [
                item("low-back-pain", origin=Origin.CONDITION, days_ago=v * 7),
                item("morning-stiffness-minutes", value=60),
            ],
            30,
        ),
        _flag("inflammatory"),
        (1, 0),
    ),
    Threshold(
        "morning_stiffness_min",
        lambda item, v: (
            [
                item("low-back-pain", origin=Origin.CONDITION, days_ago=200),
                item("morning-stiffness-minutes", value=v),
            ],
            30,
        ),
        _flag("inflammatory"),
        (1, 0),
    ),
    Threshold(
        "esi_acute_nrs_min",
        lambda item, v: (
            [item("sciatica", origin=Origin.CONDITION, days_ago=10), item("pain-score", value=v)],
            45,
        ),
        lambda a: a.value("esi") == "eligible",
        (0, -1),
    ),
    Threshold(
        "mbb_nrs_min",
        lambda item, v: (
            [
                item("low-back-pain", origin=Origin.CONDITION, days_ago=200),
                item(
                    "physiotherapy-procedure",
                    origin=Origin.PROCEDURE,
                    days_ago=150,
                    until_days_ago=60,
                ),
                item("pain-score", value=v),
            ],
            45,
        ),
        lambda a: a.value("mbb") == "eligible",
        (0, -1),
    ),
    Threshold(
        "startback_low_max",
        lambda item, v: ([item("low-back-pain"), item("startback-total", value=v)], 45),
        _proposed("physiotherapy"),
        (1, 0),
    ),
    Threshold(
        "startback_high_psychosocial_min",
        lambda item, v: (
            [
                item("low-back-pain"),
                item("startback-total", value=6),
                item("startback-psychosocial", value=v),
            ],
            45,
        ),
        _fired("conservative.physiotherapy-psychological"),
        (0, -1),
    ),
    Threshold(
        "acute_max_weeks",
        lambda item, v: ([item("low-back-pain", origin=Origin.CONDITION, days_ago=v * 7)], 45),
        _derived("acute"),
        (-1, 0),
    ),
    Threshold(
        "chronic_min_weeks",
        lambda item, v: ([item("low-back-pain", origin=Origin.CONDITION, days_ago=v * 7)], 45),
        _derived("chronic"),
        (1, 0),
    ),
    Threshold(
        "trial_weeks",
        lambda item, v: ([item("low-back-pain"), item("conservative-care-weeks", value=v)], 45),
        _derived("trial-met"),
        (0, -1),
    ),
    Threshold(
        "long_term_steroid_min_months",  # minor trauma + prednisolone taken v months: long-term
        lambda item, v: ([item("minor-trauma"), _prednisolone_since(v)], 45),
        _flag("fracture"),
        (0, -1),
    ),
    Threshold(
        "recent_imaging_months",
        lambda item, v: (
            [
                item("sciatica", origin=Origin.CONDITION, days_ago=120),
                item(
                    "physiotherapy-procedure",
                    origin=Origin.PROCEDURE,
                    days_ago=100,
                    until_days_ago=20,
                ),
                item("lumbar-imaging", days_ago=v * 30.4),
            ],
            45,
        ),
        lambda a: not _proposed("mri-lumbar")(a),
        (-1, 1),
    ),
    Threshold("mme_naloxone_min", _morphine, _fired("safety.opioid-dose-50"), (0, -1)),
    Threshold("mme_high_min", _morphine, _fired("safety.opioid-dose-90"), (0, -1)),
    Threshold(
        "nsaid_gastroprotection_age_min",
        lambda item, v: ([item("mechanical-back-pain")], int(v)),
        _activity("gastro-protection"),
        (0, -1),
    ),
    Threshold(
        "amitriptyline_age_max",
        lambda item, v: ([item("polyneuropathy", origin=Origin.CONDITION)], int(v)),
        lambda a: "amitriptyline" not in {f.code for f in a.activities},
        (0, -1),
    ),
    Threshold(
        "egfr_severe_max",
        lambda item, v: ([item("mechanical-back-pain"), item("egfr", value=v)], 45),
        _activity("nsaid-not-proposed"),
        (-1, 0),
    ),
    Threshold(
        "nsaid_pregnancy_min_weeks",
        lambda item, v: (
            [item("mechanical-back-pain"), item("gestational-age-weeks", value=v, days_ago=0)],
            30,
        ),
        _fired("medication.nsaid-pregnancy"),
        (0, -1),
    ),
    Threshold(
        # a reading taken 4 weeks ago advances: 40 then is 44 now (still current), 41 is 45
        "gestation_current_max_weeks",
        lambda item, v: ([item("gestational-age-weeks", value=v - 4, days_ago=28)], 30),
        _derived("pregnant"),
        (0, 1),
    ),
    Threshold(
        "egfr_gabapentinoid_renal_max",
        lambda item, v: (
            [item("polyneuropathy", origin=Origin.CONDITION), item("egfr", value=v)],
            45,
        ),
        _activity("gabapentinoid-renal-30-59"),
        (-1, 0),
    ),
    Threshold(
        "egfr_kidney_failure_max",
        lambda item, v: (
            [item("polyneuropathy", origin=Origin.CONDITION), item("egfr", value=v)],
            45,
        ),
        _activity("gabapentinoid-renal-under-15"),
        (-1, 0),
    ),
    Threshold(
        "adult_min_age",
        lambda item, v: ([item("low-back-pain")], int(v)),
        lambda a: not a.in_scope,
        (-1, 0),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.param}-{i}" for i, c in enumerate(CASES)])
def test_threshold_both_sides(
    case: Threshold, kb: KnowledgeBase, item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    value = kb.param(case.param)
    fires, quiet = case.fires_at
    items, age = case.build(item, value + fires)
    assert case.holds(assess(items, age=age)), f"{case.param}: should fire at {value + fires}"
    items, age = case.build(item, value + quiet)
    assert not case.holds(assess(items, age=age)), (
        f"{case.param}: should not fire at {value + quiet}"
    )


def test_every_parameter_has_a_threshold_case(kb: KnowledgeBase) -> None:
    assert {c.param for c in CASES} == set(kb.parameters.parameters)


def test_every_parameter_is_used_by_a_rule(kb: KnowledgeBase) -> None:
    used = {
        p
        for rule in kb.rules
        for expr in (rule.when, rule.unless)
        if expr
        for p in expr.references().parameters
    }
    assert used == set(kb.parameters.parameters)
