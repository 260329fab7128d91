"""RULES §5: under NICE NG59 a gabapentinoid, other antiepileptic, oral corticosteroid or
benzodiazepine active in a sciatica record gets the informational note; a corticosteroid by a
local route (cream, inhaler, eye drops) or by injection is no oral corticosteroid."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.domain.assessment import Assessment
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Code, Dose, Item, Origin

Assess = Callable[..., Assessment]
ItemOf = Callable[..., Item]
_ATC = "http://www.whocc.no/atc"


def _drug(text: str | None, *, codes: tuple[Code, ...] = (), route: str | None = None) -> Item:
    dose = Dose(route=route) if route else None
    return Item("MedicationStatement/d", Origin.MEDICATION, codes, text, dose=dose)


def _noted(assessment: Assessment) -> bool:
    return "drug-advised-against" in {note.code for note in assessment.notes}


@pytest.mark.parametrize(
    "drug",
    [
        _drug("Diazepam 5mg tablets"),
        _drug("Nitrazepam 5mg tablets"),
        _drug("Carbamazepine 200mg tablets"),
        _drug("Sodium valproate 500mg gastro-resistant tablets"),
        _drug("Dexamethasone 4 MG Oral Tablet"),
        _drug("Prednisolone 5mg tablets", route="Oral use"),
        _drug(None, codes=(Code(_ATC, "H02AB06"),)),  # prednisolone, no route stated: oral
        _drug("Pregabalin 75mg capsules"),
    ],
    ids=["diazepam", "nitrazepam", "carbamazepine", "valproate", "dexamethasone-oral",
         "prednisolone-oral-route", "prednisolone-atc", "pregabalin"],
)  # fmt: skip
def test_a_drug_nice_advises_against_for_sciatica_gets_the_note(
    assess: Assess, item: ItemOf, drug: Item
) -> None:
    assert _noted(assess([item("sciatica", origin=Origin.CONDITION), drug]))


@pytest.mark.parametrize(
    "drug",
    [
        _drug("Hydrocortisone 1% cream"),
        _drug("Dexamethasone 0.1% eye drops"),
        _drug("Prednisolone 20mg/100ml rectal foam"),
        _drug("Prednisolone 5mg", route="Rectal use"),
        _drug("Methylprednisolone acetate 40mg/1ml suspension for injection"),
        _drug("Triamcinolone 40mg/1ml intra-articular injection"),
        _drug("Proctosol HC ointment"),
        _drug("Paracetamol 500mg tablets"),
    ],
    ids=["hc-cream", "dex-eye", "pred-rectal-foam", "pred-rectal-route", "mp-injection",
         "triamcinolone-joint", "proctosol", "paracetamol"],
)  # fmt: skip
def test_a_local_or_injected_steroid_or_another_drug_gets_no_note(
    assess: Assess, item: ItemOf, drug: Item
) -> None:
    assert not _noted(assess([item("sciatica", origin=Origin.CONDITION), drug]))


def test_no_note_without_sciatica_or_under_neupsig(assess: Assess, item: ItemOf) -> None:
    diazepam = _drug("Diazepam 5mg tablets")
    assert not _noted(assess([item("low-back-pain", origin=Origin.CONDITION), diazepam]))
    sciatica = item("sciatica", origin=Origin.CONDITION)
    assert not _noted(assess([sciatica, diazepam], profile="neupsig"))


@pytest.mark.parametrize(
    ("drug", "concepts"),
    [
        (_drug("Prednisolone 5mg tablets"), {"systemic-corticosteroid", "oral-corticosteroid"}),
        (_drug("Dexamethasone 3.3mg/1ml solution for injection"), {"systemic-corticosteroid"}),
        (_drug("Hydrocortisone 1% cream"), {"local-corticosteroid"}),
        (_drug("Betamethasone valerate 0.1% scalp application"), {"local-corticosteroid"}),
    ],
)
def test_the_route_decides_the_corticosteroid_concepts(
    kb: KnowledgeBase, drug: Item, concepts: set[str]
) -> None:
    facts, _ = Matcher(kb).match(drug)
    assert {fact.concept for fact in facts} == concepts
    assert all("route:" in (fact.how or "") for fact in facts)
