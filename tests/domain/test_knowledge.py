"""Knowledge files: the packaged set loads; every kind of defect stops start-up clearly."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest

from service.domain.errors import KnowledgeError
from service.domain.knowledge import KnowledgeBase, load_knowledge

PACKAGED = Path(str(resources.files("service.knowledge")))


def _edit(directory: Path, name: str, change: Callable[[str], str]) -> None:
    path = directory / name
    path.write_text(change(path.read_text()))


def test_packaged_knowledge_loads(kb: KnowledgeBase) -> None:
    assert kb.version == "2027.1"
    assert len(kb.rules) > 60
    assert {"nice-ng59", "neupsig"} <= set(kb.catalogue.profiles)
    assert kb.catalogue.default_profile in kb.catalogue.profiles


def test_every_code_has_a_verification_grade_and_source(kb: KnowledgeBase) -> None:
    allowed = {"VERIFIED-A", "VERIFIED-B", "VERIFIED-1", "LOCAL"}
    for name, concept in kb.valuesets.concepts.items():
        for code in concept.codes:
            assert code.status in allowed, (name, code.code)
            assert code.source, (name, code.code)


def test_no_unverified_or_known_wrong_code_shipped(kb: KnowledgeBase) -> None:
    wrong = {"24531-6", "306181004", "386637004", "1819", "M54.5"}
    shipped = {c.code for concept in kb.valuesets.concepts.values() for c in concept.codes}
    # M54.5 is a non-billable ICD-10-CM header since FY2022: as ICD-10-CM it may only appear as
    # the retired code of old records (exact, never a prefix that would swallow its successors).
    cm = {
        c.code: c
        for concept in kb.valuesets.concepts.values()
        for c in concept.codes
        if c.system == "icd10cm"
    }
    assert not (wrong - {"M54.5"}) & shipped
    assert cm["M54.5"].match == "exact"
    assert "retired" in cm["M54.5"].display


def test_every_rule_cites_a_source(kb: KnowledgeBase) -> None:
    for rule in kb.rules:
        assert rule.spec.source.guideline, rule.id
        assert rule.spec.source.section, rule.id


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("rules.toml", 'id = "pain.radicular"', 'id = "scope.under-16"', "duplicate id"),
        ("rules.toml", '{ has = "sciatica" }', '{ hasnt = "sciatica" }', "unknown operator"),
        ("rules.toml", '{ has = "sciatica" }', '{ has = "sciatika" }', "sciatika"),
        ("rules.toml", 'gte = "dn4_positive"', 'gte = "dn4_cutoff"', "dn4_cutoff"),
        ("rules.toml", 'when = { fact = "acute" }', 'when = { fact = "acuteness" }', "acuteness"),
        ("rules.toml", 'service = "mri-lumbar"', 'service = "mri-brain"', "mri-brain"),
        ("rules.toml", 'title = "Neuropathic pain"', 'titel = "Neuropathic pain"', "rules.toml"),
        ("parameters.toml", "value = 4\n", 'value = "four"\n', "parameters.toml"),
        ("valuesets.toml", 'system = "sct"', 'system = "snomed"', "unknown system alias"),
        (
            "valuesets.toml",
            '{ system = "sct", code = "279039007"',
            '{ system = "snomed", code = "279039007"',
            "unknown system alias snomed",
        ),
        ("valuesets.toml", '"chronic-sciatica"]', '"chronic-sciatika"]', "includes unknown"),
        ("catalogue.toml", 'severity = "moderate"', 'severity = "medium"', "catalogue.toml"),
        ("instruments.toml", 'version = "2026.11.0"', 'versio = "2026.11.0"', "instruments.toml"),
        (
            "valuesets.toml",
            '{ system = "loinc", code = "LA33-6"',
            '{ system = "nosuch", code = "LA33-6"',
            "answer LA33-6: unknown system alias",
        ),
    ],
)
def test_defect_stops_start_up(
    knowledge_dir: Path, name: str, old: str, new: str, message: str
) -> None:
    _edit(knowledge_dir, name, lambda text: text.replace(old, new, 1))
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(knowledge_dir)


def test_rule_reading_a_later_fact_is_rejected(knowledge_dir: Path) -> None:
    """Order matters: a rule may read only facts derived above it."""
    _edit(
        knowledge_dir,
        "rules.toml",
        lambda text: text.replace(
            "when = { age = { known = false } }", 'when = { fact = "radicular" }', 1
        ),
    )
    with pytest.raises(KnowledgeError, match="no earlier rule derives"):
        load_knowledge(knowledge_dir)


def test_rule_reading_a_later_slot_is_rejected(knowledge_dir: Path) -> None:
    """A slot (pain type, certainty, a stage) may be read only after a rule above sets it: the
    first rule reading ``certainty`` made to read ``esi``, which is set far below."""
    _edit(
        knowledge_dir,
        "rules.toml",
        lambda text: text.replace('slot = { name = "certainty"', 'slot = { name = "esi"', 1),
    )
    with pytest.raises(KnowledgeError, match=r"reads slot\(s\) no earlier rule sets: \['esi'\]"):
        load_knowledge(knowledge_dir)


def test_duplicate_code_across_concepts_is_rejected(knowledge_dir: Path) -> None:
    _edit(
        knowledge_dir,
        "valuesets.toml",
        lambda text: text.replace('code = "23056005"', 'code = "279039007"', 1),
    )
    with pytest.raises(KnowledgeError, match="in both"):
        load_knowledge(knowledge_dir)


def test_missing_file_and_bad_toml(knowledge_dir: Path) -> None:
    (knowledge_dir / "parameters.toml").write_text("version = [")
    with pytest.raises(KnowledgeError, match="not valid TOML"):
        load_knowledge(knowledge_dir)
    (knowledge_dir / "parameters.toml").unlink()
    with pytest.raises(KnowledgeError, match="file missing"):
        load_knowledge(knowledge_dir)


def test_two_displays_for_one_code_are_rejected(knowledge_dir: Path) -> None:
    """The catalogue emits 308447003 "Referral to physiotherapist"; valuesets.toml naming it by
    its fully specified name stops start-up, naming both files."""
    _edit(
        knowledge_dir,
        "valuesets.toml",
        lambda text: text.replace(
            'display = "Referral to physiotherapist"',
            'display = "Referral to physiotherapist (procedure)"',
            1,
        ),
    )
    with pytest.raises(KnowledgeError, match=r"308447003 displayed .*\(one display per code\)"):
        load_knowledge(knowledge_dir)
