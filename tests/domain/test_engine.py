"""Engine behaviour the golden vignettes do not isolate: matching, history, merging, swaps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from painpath_testkit import AS_OF, make_record

from service.domain.assessment import Assessment, ProposedService
from service.domain.engine import evaluate
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.model import Code, Item, Origin, Polarity

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"


def _text_item(text: str) -> Item:
    return Item("Condition/t", Origin.CONDITION, (), text)


def test_text_only_concept_matches_keywords_with_lower_certainty(kb: KnowledgeBase) -> None:
    facts, _ = Matcher(kb).match(_text_item("Acute sciatica, left leg"))
    assert [(f.concept, f.lower_certainty) for f in facts] == [("sciatica", True)]


def test_negated_keyword_is_not_matched(kb: KnowledgeBase) -> None:
    matcher = Matcher(kb)
    for text in ("no sciatica", "Patient denies sciatica", "without any sciatica"):
        assert matcher.match(_text_item(text))[0] == [], text


def test_icd10cm_category_prefix_and_exact_codes(kb: KnowledgeBase) -> None:
    matcher = Matcher(kb)
    assert matcher.concept_of(Code(ICD10CM, "M54.31")) == "sciatica"
    assert matcher.concept_of(Code(ICD10CM, "M54.50")) == "low-back-pain"
    assert matcher.concept_of(Code(ICD10CM, "M54")) is None
    assert matcher.concept_of(Code("http://example.org/codes", "23056005")) is None


def test_codes_win_over_text(kb: KnowledgeBase) -> None:
    item = Item("Condition/c", Origin.CONDITION, (Code(SCT, "279039007"),), "sciatica")
    facts, _ = Matcher(kb).match(item)
    assert [f.concept for f in facts] == ["low-back-pain"]


def test_imaging_conclusion_is_a_confirmatory_test_not_a_symptom(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    report = item("radiculopathy", origin=Origin.IMAGING)
    alone = assess([report])
    assert alone.value("certainty") == "unlikely"
    with_signs = assess([report, item("sciatica"), item("straight-leg-raise-positive")])
    assert with_signs.value("certainty") == "definite"


def test_resolved_cauda_equina_is_history_but_past_cancer_still_counts(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    resolved = assess(
        [item("cauda-equina-syndrome", origin=Origin.CONDITION, polarity=Polarity.HISTORY)]
    )
    assert resolved.red_flags == ()
    cancer = assess(
        [
            item("low-back-pain"),
            item("spinal-malignancy", origin=Origin.CONDITION, polarity=Polarity.HISTORY),
        ]
    )
    assert [f.code for f in cancer.red_flags] == ["malignancy"]


def test_mri_unsafe_implant_swaps_mri_for_ct_at_the_same_priority(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    result = assess([item("saddle-anaesthesia"), item("mri-unsafe-implant", origin=Origin.DEVICE)])
    proposals = {p.service: p for p in result.proposals}
    assert "mri-lumbar" not in proposals
    assert proposals["ct-lumbar"].priority == "stat"
    assert "instead" in proposals["ct-lumbar"].reasons[0]
    assert any(e.concept == "mri-unsafe-implant" for e in proposals["ct-lumbar"].evidence)


def test_same_service_from_two_flags_keeps_highest_priority_and_both_reasons(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    # infection (same-day contrast MRI) and malignancy (urgent contrast MRI), rule set 2027.1
    result = assess([item("weight-loss"), item("spinal-infection")])
    mri = next(p for p in result.proposals if p.service == "mri-lumbar-contrast")
    assert mri.priority == "stat"
    rules = {r.id for r in mri.rules}
    assert {"imaging.infection-malignancy-contrast", "imaging.infection-contrast-stat"} <= rules
    assert len(mri.reasons) >= 2


def test_out_of_scope_stops_every_other_decision(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    result = assess([item("saddle-anaesthesia")], age=12)
    assert not result.in_scope
    assert result.red_flags == ()
    assert result.proposals == ()
    assert [n.code for n in result.notes] == ["out-of-scope-age"]


def test_out_of_range_score_is_ignored_and_reported(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    result = assess([item("low-back-pain"), item("dn4-total", value=14)])
    assert result.value("certainty") == "unlikely"
    assert [(o.concept, o.value) for o in result.out_of_range] == [("dn4-total", 14)]


def test_onset_prefers_condition_onset_then_recorded_date_then_observation(
    kb: KnowledgeBase,
) -> None:
    code = Code(SCT, "279039007")
    onset_obs_code = Code("https://painpath.dev/fhir/CodeSystem/painpath", "symptom-onset")

    def band(*items: Item) -> str | None:
        result = evaluate(kb, make_record(list(items)), as_of=AS_OF, profile="nice-ng59")
        found = [name for name in ("acute", "subacute", "chronic") if name in result.derived]
        return found[0] if found else None

    recorded_only = Item(
        "Condition/a", Origin.CONDITION, (code,), recorded=AS_OF - timedelta(days=200)
    )
    onset = Item("Condition/b", Origin.CONDITION, (code,), when=AS_OF - timedelta(days=10))
    observation = Item(
        "Observation/o", Origin.OBSERVATION, (onset_obs_code,), when=AS_OF - timedelta(days=60)
    )
    assert band(recorded_only) == "chronic"
    assert band(recorded_only, onset) == "acute"  # an onset beats an earlier recordedDate
    assert band(observation) == "subacute"
    assert band(Item("Condition/c", Origin.CONDITION, (code,))) is None


def test_active_medication_without_end_counts_to_the_evaluation_date(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    ongoing = item("nsaid", origin=Origin.MEDICATION, days_ago=50)
    assert "trial-met" in assess([item("sciatica"), ongoing]).derived
    short = item("nsaid", origin=Origin.MEDICATION, days_ago=20)
    assert "trial-met" not in assess([item("sciatica"), short]).derived


def test_included_concept_also_matches_its_parent(kb: KnowledgeBase) -> None:
    item = Item("Condition/c", Origin.CONDITION, (Code(SCT, "278860009"),))
    facts, _ = Matcher(kb).match(item)
    assert sorted(f.concept for f in facts) == ["chronic-low-back-pain", "low-back-pain"]


def test_exact_code_wins_over_a_category_prefix(kb: KnowledgeBase) -> None:
    matcher = Matcher(kb)
    assert matcher.concept_of(Code(ICD10CM, "C79.51")) == "spinal-malignancy"
    assert matcher.concept_of(Code(ICD10CM, "C50.911")) == "malignant-neoplasm"


def test_assessment_reports_the_onset_the_engine_used(kb: KnowledgeBase) -> None:
    """Views show this onset rather than re-deriving RULES §1 themselves."""
    code = Code(SCT, "279039007")
    early = Item("Condition/early", Origin.CONDITION, (code,), when=AS_OF - timedelta(days=50))
    late = Item("Condition/late", Origin.CONDITION, (code,), when=AS_OF - timedelta(days=10))
    result = evaluate(kb, make_record([late, early]), as_of=AS_OF, profile="nice-ng59")
    assert result.onset == AS_OF - timedelta(days=50)
    assert result.onset_ref == "Condition/early"
    empty = evaluate(kb, make_record([]), as_of=AS_OF, profile="nice-ng59")
    assert (empty.onset, empty.onset_ref) == (None, None)


def test_a_substitute_may_be_keyed_on_a_concept(
    knowledge_dir: Path, item: Callable[..., Item]
) -> None:
    """``substitute_if`` takes a concept as well as a derived fact: the concept present swaps the
    service and its title explains why; absent, the service stays."""
    path = knowledge_dir / "catalogue.toml"
    text = path.read_text()
    keyed = 'substitute_if = { "fact:mri-contraindicated" = "ct-lumbar" }'
    assert keyed in text
    path.write_text(text.replace(keyed, 'substitute_if = { mri-unsafe-implant = "ct-lumbar" }'))
    kb = load_knowledge(knowledge_dir)

    def proposals(*items: Item) -> dict[str, ProposedService]:
        result = evaluate(kb, make_record(list(items)), as_of=AS_OF, profile="nice-ng59")
        return {p.service: p for p in result.proposals}

    swapped = proposals(item("saddle-anaesthesia"), item("mri-unsafe-implant"))
    assert "mri-lumbar" not in swapped
    title = kb.valuesets.concepts["mri-unsafe-implant"].title
    assert f"({title}: " in swapped["ct-lumbar"].reasons[0]
    kept = proposals(item("saddle-anaesthesia"))
    assert "mri-lumbar" in kept
    assert "ct-lumbar" not in kept


@pytest.mark.parametrize(
    ("sign", "mscc"),
    [
        ("numbness", True), ("sensory-deficit", True), ("muscle-weakness", True),
        ("gait-disturbance", True), ("urinary-incontinence", True), ("faecal-incontinence", True),
        ("paraesthesia", False),  # tingling is a descriptor, not one of RULES §8's MSCC signs
        (None, False),
    ],
)  # fmt: skip
def test_a_malignancy_with_a_neurological_sign_is_suspected_mscc(
    item: Callable[..., Item], assess: Callable[..., Assessment], sign: str | None, mscc: bool
) -> None:
    found = [item("low-back-pain"), item("cancer-history", origin=Origin.CONDITION)]
    result = assess(found + ([item(sign)] if sign else []))
    services = {p.service: p.priority for p in result.proposals}
    assert [f.code for f in result.red_flags][-1:] == ["malignancy"]
    assert (services.get("mri-whole-spine") == "stat") is mscc
    assert ("oncology-referral" in services) is not mscc
