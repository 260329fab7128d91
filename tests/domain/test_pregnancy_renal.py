"""Rule set 2027.1 pregnancy and renal readings: coded gestational weeks, readings that advance
with time, the X-ray -> MRI swap on a derived fact, drug names in the epidural caution, the
gabapentinoid renal bands (catalogue text and medications.toml table in step) and the loader's
checks on them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from painpath_testkit import make_item

from service.domain.assessment import Assessment
from service.domain.errors import KnowledgeError
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.model import Code, Item, Origin


def _z3a(kb: KnowledgeBase, code: str, days_ago: float | None = None) -> Item:
    item = make_item(kb, "gestational-age-weeks", origin=Origin.CONDITION, days_ago=days_ago)
    return Item(item.ref, item.origin, (Code(kb.valuesets.systems["icd10cm"], code),), None,
                item.polarity, None, item.when)  # fmt: skip


def _nsaid_ruled_out(a: Assessment) -> bool:
    return any(f.rule.id == "medication.nsaid-pregnancy" and f.fired for f in a.firings)


def test_z3a_codes_carry_their_week(kb: KnowledgeBase, item: Callable[..., Item],
                                    assess: Callable[..., Assessment]) -> None:  # fmt: skip
    back = item("mechanical-back-pain")
    assert not _nsaid_ruled_out(assess([back, _z3a(kb, "Z3A.19")]))
    assert _nsaid_ruled_out(assess([back, _z3a(kb, "Z3A.20")]))
    assert not _nsaid_ruled_out(assess([back, _z3a(kb, "Z3A.01")]))  # under 8 weeks
    assert _nsaid_ruled_out(assess([back, _z3a(kb, "Z3A.00")]))  # week not specified
    assert "pregnant" in assess([back, _z3a(kb, "Z3A.00")]).derived


def test_a_gestational_age_advances_with_time(
    kb: KnowledgeBase, item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    back = item("mechanical-back-pain")
    assert not _nsaid_ruled_out(assess([back, _z3a(kb, "Z3A.18", days_ago=13)]))  # 19 + 6/7
    assert _nsaid_ruled_out(assess([back, _z3a(kb, "Z3A.18", days_ago=14)]))  # 20 weeks


def test_an_ended_pregnancy_code_is_not_a_pregnancy(
    kb: KnowledgeBase, assess: Callable[..., Assessment]
) -> None:
    icd = kb.valuesets.systems["icd10cm"]
    for code, pregnant in [("O80", False), ("O03.9", False), ("Z39.2", False), ("O26.891", True),
                           ("Z34.00", True)]:  # fmt: skip
        cond = Item(f"Condition/{code}", Origin.CONDITION, (Code(icd, code),), None)
        assert ("pregnant" in assess([cond]).derived) is pregnant, code


def test_fracture_in_pregnancy_swaps_the_xray_for_mri_and_says_why(
    item: Callable[..., Item], assess: Callable[..., Assessment]
) -> None:
    a = assess([item("significant-trauma"), item("pregnancy")])
    mri = next(p for p in a.proposals if p.service == "mri-lumbar")
    assert "xray-lumbar" not in {p.service for p in a.proposals}
    assert any("Pregnancy" in reason and "instead" in reason for reason in mri.reasons)
    kept = assess([item("significant-trauma"), item("pregnancy"), item("mri-unsafe-implant")])
    xray = next(p for p in kept.proposals if p.service == "xray-lumbar")
    assert any("MRI is not possible" in reason for reason in xray.reasons)


def test_the_epidural_caution_names_the_drug(assess: Callable[..., Assessment],
                                             item: Callable[..., Item]) -> None:  # fmt: skip
    drug = Item("MedicationStatement/m1", Origin.MEDICATION, (), "Warfarin 5 mg tablet | warfarin")
    a = assess([item("sciatica", origin=Origin.CONDITION, days_ago=14),
                item("pain-score", value=8), drug])  # fmt: skip
    esi = next(p for p in a.proposals if p.service == "epidural-steroid-injection")
    caution = next(r for r in esi.reasons if r.startswith("Caution"))
    assert "Warfarin 5 mg tablet" in caution
    assert "Narouze 2018" in caution
    coded = assess([
        item("sciatica", origin=Origin.CONDITION, days_ago=14), item("pain-score", value=8),
        item("anticoagulant-use", origin=Origin.CONDITION),
    ])  # fmt: skip
    esi = next(p for p in coded.proposals if p.service == "epidural-steroid-injection")
    assert any("recorded without a drug name" in r for r in esi.reasons)


def test_renal_band_text_matches_the_table(kb: KnowledgeBase) -> None:
    """The catalogue's band activities state the medications.toml [renal_dosing] ranges."""
    bands = {"gabapentinoid-renal-30-59": 30, "gabapentinoid-renal-15-29": 15,
             "gabapentinoid-renal-under-15": 0}  # fmt: skip
    for activity, low in bands.items():
        text = kb.catalogue.activities[activity].description
        for drug, dosing in kb.medications.renal_dosing.items():
            band = next(b for b in dosing.bands if b.egfr_from == low)
            expected = f"{drug} {band.daily_mg[0]:g}-{band.daily_mg[1]:g} mg/day"
            assert expected in text, (activity, expected)
    assert set(kb.medications.renal_dosing) == {"gabapentin", "pregabalin"}
    assert all(re.search(r"VERIFIED", d.status) for d in kb.medications.renal_dosing.values())


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("catalogue.toml", '"fact:pregnancy-mri-instead-of-xray"', '"fact:never-derived"',
         "not derived by an earlier rule"),
        ("medications.toml", "{ egfr_from = 15, egfr_below = 30, daily_mg = [200, 700] }",
         "{ egfr_from = 16, egfr_below = 30, daily_mg = [200, 700] }", "without gap or overlap"),
        ("rules.toml", "advancing = true } },\n  { all", "advancing = 1 } },\n  { all",
         "advancing needs true or false"),
        ("rules.toml", 'concept = "gestational-age-weeks", known = false }',
         'concept = "gestational-age-weeks", known = false, gte = 20 }',
         "known needs true or false and nothing else"),
        ("medications.toml", "[renal_dosing.gabapentin]", "[renal_dosing.gabapentine]",
         "not an ingredient"),
        ("medications.toml", "{ egfr_from = 0, egfr_below = 15, daily_mg = [100, 300] }",
         "{ egfr_from = 5, egfr_below = 15, daily_mg = [100, 300] }",
         "cover every eGFR from 0 up"),
        ("catalogue.toml", 'substitute_if = { "fact:mri-contraindicated" = "ct-lumbar" }',
         'substitute_if = { mri-unsafe-implante = "ct-lumbar" }',
         "substitute_if 'mri-unsafe-implante'"),
        ("catalogue.toml", 'substitute_if = { "fact:mri-contraindicated" = "ct-lumbar" }',
         'substitute_if = { "fact:mri-contraindicated" = "ct-lumbar-spine" }',
         "unknown substitute ct-lumbar-spine"),
        ("catalogue.toml", 'substitute_if = { "fact:mri-contraindicated" = "ct-lumbar" }',
         'substitute_if = { "fact:mri-contra-indicated" = "ct-lumbar" }',
         "mri-contra-indicated"),
    ],
)  # fmt: skip
def test_loader_refuses_broken_pregnancy_and_renal_knowledge(
    knowledge_dir: Path, name: str, old: str, new: str, message: str
) -> None:
    path = knowledge_dir / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(knowledge_dir)
