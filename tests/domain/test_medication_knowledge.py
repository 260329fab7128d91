"""medications.toml defects stop start-up; the MME arithmetic on each side of what it can read
(rule set 2027.1, RULES §7: a dose that cannot be computed is reported, never guessed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.domain.errors import KnowledgeError
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.mme import opioid_doses
from service.domain.model import Dose, DoseLine, Item, Origin


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('classes = ["opioid"]\nnames = ["codeine"]', 'classes = ["opiate"]\nnames = ["codeine"]',
         "classes must be valuesets.toml concepts"),
        ('classes = ["opioid"]\nnames = ["codeine"]', 'classes = []\nnames = ["codeine"]',
         "classes must be valuesets.toml concepts"),
        ('names = ["codeine"]', "names = []", "names must not be empty"),
        ('{ system = "atc", code = "R05DA04"', '{ system = "whoatc", code = "R05DA04"',
         "unknown system"),
        ('{ system = "atc", code = "R05DA04", display = "codeine"',
         '{ system = "atc", code = "N02AX02", display = "tramadol"', "is listed twice"),
        ('{ system = "atc", code = "R05DA04", display = "codeine"',
         '{ system = "atc", code = "N02AX02", display = "codeine"', "one display per code"),
        ('opioid_class = "opioid"', 'opioid_class = "opiates"', "opioid_class must be"),
        ("[mme.codeine]", "[mme.aspirin]", "mme.aspirin: not an opioid ingredient"),
        ("[mme.codeine]", "[mme.unobtainium]", "mme.unobtainium: not an opioid ingredient"),
        ('ingredients = ["codeine", "acetaminophen"]', 'ingredients = ["codeine", "unobtainium"]',
         "combinations.co-codamol: needs two or more listed ingredients"),
        ('ingredients = ["codeine", "acetaminophen"]', 'ingredients = ["codeine", "codeine"]',
         "combinations.co-codamol: needs two or more listed ingredients"),
        ('names = ["co-codamol"]', 'names = ["Tylenol"]', "already name an ingredient"),
        ('names = ["co-codamol"]', "names = []", "co-codamol: names must not be empty"),
        ("[route_split.systemic-corticosteroid]", "[route_split.nsaid-gel]",
         "route_split.nsaid-gel: not a class of any ingredient"),
        ('local = "local-corticosteroid"', 'local = "cream-steroid"',
         "not valuesets.toml concepts: \\['cream-steroid'\\]"),
        ('parenteral_words = [\n  "injection", "injectable", "intravenous", "intramuscular", '
         '"infusion", "parenteral",\n  "subcutaneous", "depot",\n]', "parenteral_words = []",
         "local_words and parenteral_words must not be empty"),
    ],
)  # fmt: skip
def test_medication_file_defects_stop_start_up(
    knowledge_dir: Path, old: str, new: str, message: str
) -> None:
    path = knowledge_dir / "medications.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(knowledge_dir)


def _d(
    amount: float | None,
    unit: str | None,
    per_day: float | None,
    strengths: tuple[tuple[str, float, str], ...] = (),
) -> Dose:
    """A one-line dosage."""
    return Dose((DoseLine(amount, unit, per_day),), strengths)


def _mme(kb: KnowledgeBase, text: str, dose: Dose | None) -> list[tuple[str, float | None, str]]:
    item = Item("MedicationRequest/m", Origin.MEDICATION, (), text, dose=dose)
    found = opioid_doses(item, Matcher(kb).ingredients, kb.medications.mme, "opioid")
    return [(d.ingredient, d.mme, d.why or "") for d in found]


@pytest.mark.parametrize(
    ("text", "dose", "expected"),
    [
        # computable: oral mg, micrograms, a patch by its rate, the Medication's own strength
        ("morphine sulfate 10 MG Oral Tablet", _d(2, "tablet", 3), ("morphine", 60.0, "")),
        ("morphine 5000 MCG Oral Tablet", _d(1, None, 2), ("morphine", 10.0, "")),
        ("Fentanyl 25 MCG/HR Transdermal System", _d(2, "patch", None),
         ("fentanyl", 120.0, "")),
        ("Fentanyl 12micrograms/hour transdermal patches", _d(1, None, None),
         ("fentanyl", 28.8, "")),
        ("oxycodone", _d(1, None, 2, (("Oxycodone hydrochloride", 10.0, "mg"),)),
         ("oxycodone", 30.0, "")),
        # a dose given as a mass of the opioid itself (UCUM mg, g, ug): no strength needed
        ("Morphine sulfate 60 mg extended-release tablet", _d(60, "mg", 2),
         ("morphine", 120.0, "")),
        ("morphine sulfate 10 MG Oral Tablet", _d(10, "mg", 4), ("morphine", 40.0, "")),
        ("morphine sulfate extended-release tablet", _d(60, "MG", 2), ("morphine", 120.0, "")),
        ("oxycodone", _d(0.01, "g", 3), ("oxycodone", 45.0, "")),
        ("hydromorphone", _d(2000, "ug", 2), ("hydromorphone", 20.0, "")),
        ("tramadol", _d(100, "milligrams", 4), ("tramadol", 80.0, "")),
        # ... but not in a combination (either ingredient's mass), nor for a patch, nor untimed
        ("Oxycodone 5 MG / Acetaminophen 325 MG Oral Tablet", _d(5, "mg", 4),
         ("oxycodone", None, "a mass dose of a product of several ingredients")),
        ("Fentanyl 25 MCG/HR Transdermal System", _d(25, "ug", 1),
         ("fentanyl", None, "a mass dose, not a transdermal delivery rate")),
        ("morphine sulfate 10 MG Oral Tablet", _d(10, "mg", None),
         ("morphine", None, "no frequency")),
        # not computable, with the reason
        ("Buprenorphine 0.01 MG/HR Transdermal System", _d(1, None, None),
         ("buprenorphine", None, "no CDC 2022 factor")),
        ("fentanyl 0.2 MG Buccal Tablet", _d(1, None, 4),
         ("fentanyl", None, "not a transdermal system")),
        ("morphine sulfate 2 MG/ML Oral Solution", _d(5, "mL", 4),
         ("morphine", None, "strength per hour or per mL")),
        ("morphine sulfate 5 MG/ML Oral Solution", _d(5, "mL", 4),
         ("morphine", None, "strength per hour or per mL")),
        ("morphine sulfate 10 MG Oral Tablet", _d(10, "{drop}", 4),
         ("morphine", None, "no amount per dose")),
        ("morphine sulfate 10 MG Oral Tablet", _d(1, None, None),
         ("morphine", None, "no frequency")),
        ("morphine sulfate Oral Tablet", _d(1, None, 2),
         ("morphine", None, "no strength stated")),
    ],
)  # fmt: skip
def test_daily_mme(
    kb: KnowledgeBase, text: str, dose: Dose, expected: tuple[str, float | None, str]
) -> None:
    assert _mme(kb, text, dose) == [expected]


_QID_2 = _d(2, None, 4)  # two tablets four times a day


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # each strength belongs to the ingredient named before it, whatever the separator
        ("Paracetamol 500mg/Codeine phosphate 30mg tablets", ("codeine", 36.0, "")),
        ("Codeine phosphate 30mg / Paracetamol 500mg tablets", ("codeine", 36.0, "")),
        ("Oxycodone Hydrochloride 5 MG / Acetaminophen 325 MG Oral Tablet [Percocet]",
         ("oxycodone", 60.0, "")),
        # after several names, or a combination's name, each strength in turn
        ("Codeine/paracetamol 30mg/500mg tablets", ("codeine", 36.0, "")),
        ("Paracetamol and codeine 500 mg/8 mg tablets", ("codeine", 9.6, "")),
        ("Co-codamol 30mg/500mg tablets", ("codeine", 36.0, "")),
        ("co-codamol 8mg/500mg effervescent tablets", ("codeine", 9.6, "")),
        ("Tramacet 37.5mg/325mg tablets", ("tramadol", 60.0, "")),
        # a strength after a word PainPath does not know belongs to that word
        ("Oxycodone 5 mg / Naloxone 2.5 mg prolonged-release tablets", ("oxycodone", 60.0, "")),
        ("Morphine sulfate 10 mg tablets, 60 mg a day", ("morphine", 80.0, "")),
        # one name and two strengths: not attributable, so not computable (never guessed)
        ("Percocet 5 MG/325 MG", ("oxycodone", None,
         "strength stated but not attributable to the ingredient unambiguously")),
        ("Codeine 30mg/500mg tablets", ("codeine", None,
         "strength stated but not attributable to the ingredient unambiguously")),
        ("Tylenol with Codeine 300 mg/30 mg", ("codeine", None,
         "strength stated but not attributable to the ingredient unambiguously")),
        # ... unless another of the entry's texts attributes it
        ("Percocet 5 MG/325 MG | Oxycodone Hydrochloride 5 MG / Acetaminophen 325 MG Oral Tablet",
         ("oxycodone", 60.0, "")),
        # concentrations are not per-tablet strengths
        ("Morphine sulfate 10mg/5ml oral solution", ("morphine", None,
         "strength per hour or per mL")),
        ("Morphine sulfate 10 MG/ML Oral Solution", ("morphine", None,
         "strength per hour or per mL")),
        ("30 mg morphine tablets", ("morphine", None, "no strength stated")),
    ],
)  # fmt: skip
def test_each_strength_belongs_to_its_ingredient(
    kb: KnowledgeBase, text: str, expected: tuple[str, float | None, str]
) -> None:
    assert _mme(kb, text, _QID_2) == [expected]


def test_a_non_opioid_medication_has_no_opioid_dose(kb: KnowledgeBase) -> None:
    assert _mme(kb, "Diazepam 5 MG Oral Tablet", _d(1, None, 2)) == []


def _lines(*lines: DoseLine) -> Dose:
    return Dose(lines)


_MS_CONTIN = "Morphine sulfate 30 mg extended-release tablet [MS Contin]"


@pytest.mark.parametrize(
    ("dose", "expected"),
    [
        # 1 tablet in the morning and 2 at night, no sequence or the same one: taken together
        (_lines(DoseLine(1, None, 1), DoseLine(2, None, 1)),
         ("morphine", 90.0, "", "morphine 90 MME/day (2 dosage lines taken together)")),
        (_lines(DoseLine(1, None, 1, sequence=1), DoseLine(2, None, 1, sequence=1)),
         ("morphine", 90.0, "", "morphine 90 MME/day (2 dosage lines taken together)")),
        # different sequences follow one another (a taper): the highest day, and it says so
        (_lines(DoseLine(2, None, 1, sequence=1), DoseLine(1, None, 1, sequence=2)),
         ("morphine", 60.0, "",
          "morphine 60 MME/day (highest of 2 sequential dosage lines: sequence 1)")),
        # a single line says nothing of lines
        (_lines(DoseLine(3, None, 1)), ("morphine", 90.0, "", "morphine 90 MME/day")),
        # one line not computable: the whole dose is not, and the line is named
        (_lines(DoseLine(1, None, 1), DoseLine(2, None, None)),
         ("morphine", None, "dosage line 2: no frequency",
          "morphine: MME not computable (dosage line 2: no frequency)")),
        (_lines(DoseLine(1, None, 1, sequence=1), DoseLine(60, "mg", None, sequence=2)),
         ("morphine", None, "dosage line 2: no frequency",
          "morphine: MME not computable (dosage line 2: no frequency)")),
        # maxDosePerPeriod caps a line, and stands for it when the line has no timing
        (_lines(DoseLine(2, None, 6, max_per_day=4, max_unit="{tablet}")),
         ("morphine", 120.0, "", "morphine 120 MME/day")),
        (_lines(DoseLine(1, None, None, max_per_day=2, max_unit=None)),
         ("morphine", 60.0, "", "morphine 60 MME/day")),
        (_lines(DoseLine(1, None, 4, max_per_day=45, max_unit="mg")),
         ("morphine", 45.0, "", "morphine 45 MME/day")),
        (_lines(DoseLine(1, None, 2, max_per_day=8, max_unit="{tablet}")),
         ("morphine", 60.0, "", "morphine 60 MME/day")),  # the cap is above the dose
        # a cap in a unit that is neither a mass nor a count (mL of a tablet) is not read
        (_lines(DoseLine(1, None, 2, max_per_day=5, max_unit="mL")),
         ("morphine", 60.0, "", "morphine 60 MME/day")),
        # a dose given as a mass needs its amount
        (_lines(DoseLine(None, "mg", 2)),
         ("morphine", None, "no amount per dose",
          "morphine: MME not computable (no amount per dose)")),
    ],
)  # fmt: skip
def test_dosage_lines(
    kb: KnowledgeBase, dose: Dose, expected: tuple[str, float | None, str, str]
) -> None:
    item = Item("MedicationRequest/m", Origin.MEDICATION, (), _MS_CONTIN, dose=dose)
    (found,) = opioid_doses(item, Matcher(kb).ingredients, kb.medications.mme, "opioid")
    assert (found.ingredient, found.mme, found.why or "", found.describe()) == expected


@pytest.mark.parametrize(
    ("text", "concept"),
    [
        ("Nitrazepam 5mg tablets", "benzodiazepine"),
        ("Mogadon 5mg tablets", "benzodiazepine"),
        ("Lormetazepam 1mg tablets", "benzodiazepine"),
        ("Phenindione 25mg tablets", "anticoagulant"),
        ("Clexane 40mg/0.4ml solution for injection pre-filled syringes", "anticoagulant"),
        ("Co-codamol 30mg/500mg tablets", "opioid"),
        ("Co-codamol 30mg/500mg tablets", "paracetamol"),
        ("OxyNorm 5mg capsules", "opioid"),
        ("OxyContin 10mg modified-release tablets", "opioid"),
        ("Zydol 50mg capsules", "opioid"),
        ("Zydol 50mg capsules", "serotonergic-opioid"),
        ("Tramacet 37.5mg/325mg tablets", "serotonergic-opioid"),
        ("Palexia 50mg tablets", "opioid"),
        ("Diamorphine 5mg powder for solution for injection", "opioid"),
        ("Lyrica 75mg capsules", "gabapentinoid"),
        ("Neurontin 300mg capsules", "gabapentinoid"),
    ],
)
def test_class_members_and_brands_are_recognised(
    kb: KnowledgeBase, text: str, concept: str
) -> None:
    facts, _ = Matcher(kb).match(Item("MedicationStatement/m", Origin.MEDICATION, (), text))
    assert concept in {fact.concept for fact in facts}


@pytest.mark.parametrize(
    "text", ["Zydolix 50mg capsules", "Clexanes", "co codamol", "Nitrazepamine", "Oxynormal saline"]
)
def test_a_near_miss_is_not_a_member(kb: KnowledgeBase, text: str) -> None:
    facts, _ = Matcher(kb).match(Item("MedicationStatement/m", Origin.MEDICATION, (), text))
    assert facts == []


def test_an_opioid_without_a_cdc_factor_is_not_computable(kb: KnowledgeBase) -> None:
    assert _mme(kb, "Diamorphine 10mg tablets", _d(1, None, 2)) == [
        ("diamorphine", None, "no CDC 2022 factor")
    ]


def test_a_cap_in_doses_of_a_liquid_is_not_read_as_mg(kb: KnowledgeBase) -> None:
    """A strength per mL needs the volume: neither the dose nor its cap in doses is computed."""
    dose = _lines(DoseLine(5, "mL", 4, max_per_day=6, max_unit=None))
    item = Item(
        "MedicationRequest/m", Origin.MEDICATION, (), "Morphine sulfate 10 mg/5 mL oral solution",
        dose=dose,
    )  # fmt: skip
    (found,) = opioid_doses(item, Matcher(kb).ingredients, kb.medications.mme, "opioid")
    assert (found.ingredient, found.mme) == ("morphine", None)
    assert found.why == "strength per hour or per mL"
