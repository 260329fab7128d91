"""medications.toml defects stop start-up; the MME arithmetic on each side of what it can read
(rule set 2027.1, RULES §7: a dose that cannot be computed is reported, never guessed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.domain.errors import KnowledgeError
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.mme import opioid_doses
from service.domain.model import Dose, Item, Origin


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


def _mme(kb: KnowledgeBase, text: str, dose: Dose | None) -> list[tuple[str, float | None, str]]:
    item = Item("MedicationRequest/m", Origin.MEDICATION, (), text, dose=dose)
    found = opioid_doses(item, Matcher(kb).ingredients, kb.medications.mme, "opioid")
    return [(d.ingredient, d.mme, d.why or "") for d in found]


@pytest.mark.parametrize(
    ("text", "dose", "expected"),
    [
        # computable: oral mg, micrograms, a patch by its rate, the Medication's own strength
        ("morphine sulfate 10 MG Oral Tablet", Dose(2, "tablet", 3), ("morphine", 60.0, "")),
        ("morphine 5000 MCG Oral Tablet", Dose(1, None, 2), ("morphine", 10.0, "")),
        ("Fentanyl 25 MCG/HR Transdermal System", Dose(2, "patch", None),
         ("fentanyl", 120.0, "")),
        ("oxycodone", Dose(1, None, 2, (("Oxycodone hydrochloride", 10.0, "mg"),)),
         ("oxycodone", 30.0, "")),
        # a dose given as a mass of the opioid itself (UCUM mg, g, ug): no strength needed
        ("Morphine sulfate 60 mg extended-release tablet", Dose(60, "mg", 2),
         ("morphine", 120.0, "")),
        ("morphine sulfate 10 MG Oral Tablet", Dose(10, "mg", 4), ("morphine", 40.0, "")),
        ("morphine sulfate extended-release tablet", Dose(60, "MG", 2), ("morphine", 120.0, "")),
        ("oxycodone", Dose(0.01, "g", 3), ("oxycodone", 45.0, "")),
        ("hydromorphone", Dose(2000, "ug", 2), ("hydromorphone", 20.0, "")),
        ("tramadol", Dose(100, "milligrams", 4), ("tramadol", 80.0, "")),
        # ... but not in a combination (either ingredient's mass), nor for a patch, nor untimed
        ("Oxycodone 5 MG / Acetaminophen 325 MG Oral Tablet", Dose(5, "mg", 4),
         ("oxycodone", None, "a mass dose of a product of several ingredients")),
        ("Fentanyl 25 MCG/HR Transdermal System", Dose(25, "ug", 1),
         ("fentanyl", None, "a mass dose, not a transdermal delivery rate")),
        ("morphine sulfate 10 MG Oral Tablet", Dose(10, "mg", None),
         ("morphine", None, "no frequency")),
        # not computable, with the reason
        ("Buprenorphine 0.01 MG/HR Transdermal System", Dose(1, None, None),
         ("buprenorphine", None, "no CDC 2022 factor")),
        ("fentanyl 0.2 MG Buccal Tablet", Dose(1, None, 4),
         ("fentanyl", None, "not a transdermal system")),
        ("morphine sulfate 2 MG/ML Oral Solution", Dose(5, "mL", 4),
         ("morphine", None, "strength per hour or per mL")),
        ("morphine sulfate 5 MG/ML Oral Solution", Dose(5, "mL", 4),
         ("morphine", None, "strength per hour or per mL")),
        ("morphine sulfate 10 MG Oral Tablet", Dose(10, "{drop}", 4),
         ("morphine", None, "no amount per dose")),
        ("morphine sulfate 10 MG Oral Tablet", Dose(1, None, None),
         ("morphine", None, "no frequency")),
        ("morphine sulfate Oral Tablet", Dose(1, None, 2),
         ("morphine", None, "no strength stated")),
    ],
)  # fmt: skip
def test_daily_mme(
    kb: KnowledgeBase, text: str, dose: Dose, expected: tuple[str, float | None, str]
) -> None:
    assert _mme(kb, text, dose) == [expected]


def test_a_non_opioid_medication_has_no_opioid_dose(kb: KnowledgeBase) -> None:
    assert _mme(kb, "Diazepam 5 MG Oral Tablet", Dose(1, None, 2)) == []
