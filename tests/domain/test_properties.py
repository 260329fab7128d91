"""Hypothesis properties of the engine over random combinations of findings.

- determinism: the same record and date give the same assessment;
- a stronger neuropathic finding never lowers the certainty;
- adding a red-flag trigger never lowers urgency nor removes a flag;
- every positive conclusion carries evidence.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from painpath_testkit import AS_OF, make_item, make_record

from service.domain.assessment import Assessment
from service.domain.engine import evaluate
from service.domain.knowledge import KnowledgeBase, default_knowledge
from service.domain.model import Item, Origin, Polarity

KB: KnowledgeBase = default_knowledge()
CERTAINTY = ["unlikely", "possible", "probable", "definite"]
PRIORITY = {"routine": 0, "urgent": 1, "asap": 2, "stat": 3}

Atom = tuple[str, dict[str, Any]]

_condition = {"origin": Origin.CONDITION}
BACKGROUND: list[Atom] = [
    ("low-back-pain", {**_condition, "days_ago": 20}),
    ("low-back-pain", {**_condition, "days_ago": 200}),
    ("sciatica", {**_condition, "days_ago": 60}),
    ("pain-score", {"value": 8}),
    ("pain-score", {"value": 3}),
    ("pain-eased-by-rest", {}),
    ("physiotherapy-procedure", {"origin": Origin.PROCEDURE, "days_ago": 90, "until_days_ago": 10}),
    ("startback-total", {"value": 2}),
    ("fever", {"polarity": Polarity.ABSENT}),
    ("mri-unsafe-implant", {"origin": Origin.DEVICE}),
    ("polyneuropathy", _condition),
]
NEUROPATHIC: list[Atom] = [
    ("sciatica", _condition),
    ("radiating-pain-below-knee", {}),
    ("burning-pain", {}),
    ("dn4-total", {"value": 9}),
    ("straight-leg-raise-positive", {}),
    ("sensory-deficit", _condition),
    ("imaging-nerve-root-compression", {}),
]
RED_FLAG: list[Atom] = [
    ("saddle-anaesthesia", {}),
    ("urinary-retention", _condition),
    ("neuro-deficit-progressing", {}),
    ("motor-strength-mrc", {"value": 2}),
    ("spinal-infection", _condition),
    ("spinal-malignancy", _condition),
    ("weight-loss", {}),
    ("significant-trauma", {}),
    ("vertebral-fracture", _condition),
    ("axial-spondyloarthritis", _condition),
]


def _items(atoms: list[Atom]) -> list[Item]:
    return [make_item(KB, concept, **kwargs) for concept, kwargs in atoms]


def _run(atoms: list[Atom], age: int | None, profile: str) -> Assessment:
    return evaluate(KB, make_record(_items(atoms), age=age), as_of=AS_OF, profile=profile)


records = st.tuples(
    st.lists(st.sampled_from(BACKGROUND + NEUROPATHIC + RED_FLAG), max_size=8),
    st.one_of(st.none(), st.integers(min_value=16, max_value=95)),
    st.sampled_from(sorted(KB.catalogue.profiles)),
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(records)
def test_deterministic(record: tuple[list[Atom], int | None, str]) -> None:
    atoms, age, profile = record
    items = _items(atoms)
    first = evaluate(KB, make_record(items, age=age), as_of=AS_OF, profile=profile)
    again = evaluate(KB, make_record(items, age=age), as_of=AS_OF, profile=profile)
    assert first == again


@FAST
@given(records, st.sampled_from(NEUROPATHIC))
def test_stronger_neuropathic_finding_never_lowers_certainty(
    record: tuple[list[Atom], int | None, str], extra: Atom
) -> None:
    atoms, age, profile = record
    before = _run(atoms, age, profile)
    after = _run([*atoms, extra], age, profile)
    if not before.in_scope:
        return
    assert CERTAINTY.index(after.value("certainty") or "unlikely") >= CERTAINTY.index(
        before.value("certainty") or "unlikely"
    )


def _urgency(a: Assessment) -> int:
    return max((PRIORITY[p.priority] for p in a.proposals), default=-1)


@FAST
@given(records, st.sampled_from(RED_FLAG))
def test_adding_a_red_flag_never_lowers_urgency(
    record: tuple[list[Atom], int | None, str], extra: Atom
) -> None:
    atoms, age, profile = record
    before = _run(atoms, age, profile)
    after = _run([*atoms, extra], age, profile)
    if not before.in_scope:
        return
    assert {f.code for f in before.red_flags} <= {f.code for f in after.red_flags}
    assert _urgency(after) >= _urgency(before)
    if before.value("recommended-stage") == "urgent-referral":
        assert after.value("recommended-stage") == "urgent-referral"


@FAST
@given(records)
def test_every_positive_conclusion_has_evidence(record: tuple[list[Atom], int | None, str]) -> None:
    a = _run(*record)
    if not a.in_scope:
        return
    assert all(flag.evidence for flag in a.red_flags)
    assert all(proposal.evidence for proposal in a.proposals)
    positive = {
        "pain-type": {"mechanical", "neuropathic", "mixed"},
        "certainty": {"possible", "probable", "definite"},
        "stage:injection": {"eligible"},
        "stage:surgical-referral": {"eligible"},
    }
    for slot, values in positive.items():
        conclusion = a.slots[slot]
        if conclusion.value in values:
            assert conclusion.evidence, (slot, conclusion.value, conclusion.rule.id)


# --- rule set 2027.1 ---------------------------------------------------------------------------
NSAID_CONTRAINDICATIONS: list[Atom] = [
    ("anticoagulant-use", _condition),
    ("renal-impairment", {}),
    ("gi-bleed-history", {}),
    ("severe-heart-failure", _condition),
    ("pregnancy-third-trimester", {}),
    ("egfr", {"value": 20}),
    ("pregnancy", _condition),  # the gestational week unknown: no NSAID at any gestation
    ("gestational-age-weeks", {"value": 24, "days_ago": 0}),
    ("gestational-age-weeks", {"value": 18, "days_ago": 21}),  # 21 weeks on the evaluation date
]
MECHANICAL: list[Atom] = [
    ("mechanical-back-pain", _condition),
    ("low-back-pain", {**_condition, "days_ago": 20}),
    ("pain-worse-with-movement", {}),
]
URGENT_FLAG: list[Atom] = [a for a in RED_FLAG if a[0] != "axial-spondyloarthritis"]


def _nsaid(a: Assessment) -> bool:
    return "nsaid" in {f.code for f in a.activities}


@FAST
@given(records, st.sampled_from(MECHANICAL), st.sampled_from(NSAID_CONTRAINDICATIONS))
def test_adding_a_contraindication_never_adds_an_nsaid(
    record: tuple[list[Atom], int | None, str], pain: Atom, extra: Atom
) -> None:
    atoms, age, profile = record
    before = _run([*atoms, pain], age, profile)
    after = _run([*atoms, pain, extra], age, profile)
    assert not (_nsaid(after) and not _nsaid(before))
    if after.in_scope:
        assert not _nsaid(after), "a contraindication in the record rules the NSAID out"


PREGNANCY: list[Atom] = [
    ("pregnancy", _condition),
    ("pregnancy", {}),  # the PainPath boolean
    ("gestational-age-weeks", {"value": 12, "days_ago": 0}),
    ("gestational-age-weeks", {"value": 32, "days_ago": 7}),
]
ELECTIVE_INJECTIONS = {
    "epidural-steroid-injection",
    "medial-branch-block",
    "radiofrequency-denervation",
}


def _services(a: Assessment) -> set[str]:
    return {p.service for p in a.proposals}


@FAST
@given(records, st.sampled_from(PREGNANCY))
def test_adding_pregnancy_never_adds_a_contrast_mri_or_an_elective_injection(
    record: tuple[list[Atom], int | None, str], extra: Atom
) -> None:
    """RULES §4 and §6: no contrast MRI in pregnancy, no elective injection before review."""
    atoms, age, profile = record
    before = _run(atoms, age, profile)
    after = _run([*atoms, extra], age, profile)
    added = _services(after) - _services(before)
    assert "mri-lumbar-contrast" not in added
    assert not added & ELECTIVE_INJECTIONS
    if after.in_scope:
        assert "mri-lumbar-contrast" not in _services(after)
        assert not _services(after) & ELECTIVE_INJECTIONS
        assert after.value("stage:injection") != "eligible"


def test_pregnancy_property_is_not_vacuous() -> None:
    """Without pregnancy the same records do get a contrast MRI and an epidural."""
    infection: list[Atom] = [
        ("low-back-pain", {**_condition, "days_ago": 20}),
        ("spinal-infection", _condition),
    ]
    assert "mri-lumbar-contrast" in _services(_run(infection, 45, "nice-ng59"))
    assert "mri-lumbar-contrast" not in _services(_run([*infection, PREGNANCY[0]], 45, "nice-ng59"))
    sciatica: list[Atom] = [
        ("sciatica", {**_condition, "days_ago": 14}),
        ("pain-score", {"value": 8}),
    ]
    assert "epidural-steroid-injection" in _services(_run(sciatica, 45, "nice-ng59"))
    assert "epidural-steroid-injection" not in _services(
        _run([*sciatica, PREGNANCY[0]], 45, "nice-ng59")
    )


@FAST
@given(records, st.sampled_from(URGENT_FLAG))
def test_adding_an_urgent_red_flag_never_leaves_a_routine_service_request(
    record: tuple[list[Atom], int | None, str], extra: Atom
) -> None:
    """RULES §8: under a stat or urgent flag, routine proposals are held, not emitted."""
    atoms, age, profile = record
    after = _run([*atoms, extra], age, profile)
    if not after.in_scope or after.hold is None:
        return
    emitted = [p for p in after.proposals if not after.held(p.priority)]
    assert all(p.priority != "routine" for p in emitted)
    assert after.value("stage:conservative") == "deferred"


def test_each_urgent_flag_holds_the_routine_plan() -> None:
    """The property above is not vacuous: each of those triggers raises a stat/urgent flag."""
    for atom in URGENT_FLAG:
        assessment = _run(
            [("low-back-pain", {**_condition, "days_ago": 20}), atom], 45, "nice-ng59"
        )
        assert assessment.hold is not None, atom[0]
        assert "physiotherapy" in {p.service for p in assessment.proposals}, atom[0]
        assert all(assessment.held(p.priority) for p in assessment.proposals
                   if p.priority == "routine")  # fmt: skip
