"""Order checks as knowledge (orders.toml): the packaged file loads and every defect stops
start-up; the vocabulary (stages, urgencies) is defined once and ordered."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from service.domain.errors import KnowledgeError
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.vocabulary import STAGES, URGENCIES, URGENT, most_urgent, urgency_rank

PACKAGED = Path(str(resources.files("service.knowledge")))


def test_packaged_order_checks_load(kb: KnowledgeBase) -> None:
    assert {"mri", "ct", "epidural", "gabapentinoid"} <= set(kb.orders.kinds)
    ids = [c.id for c in kb.orders.checks]
    assert len(ids) == len(set(ids))
    assert {name for _, name in kb.order_texts} <= set(kb.orders.kinds)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('kinds = ["mri", "ct"]', 'kinds = ["mri", "pet"]', "unknown kind pet"),
        ('activity = "no-routine-imaging"', 'activity = "no-such-activity"', "unknown activity"),
        ('fact = "mri-unsafe-implant"', 'fact = "no-such-concept"', "unknown concept"),
        ('slot = "esi", value', 'slot = "no-slot", value', "unknown slot no-slot"),
        ('slot = "esi", value = "not-eligible"', 'slot = "esi"', "slot and value go together"),
        ('services = ["ct-lumbar"]', 'services = ["ct-brain"]', "unknown service ct-brain"),
        ('service = "ct-lumbar"', 'service = "ct-head"', "unknown service ct-head"),
        ('code = "30620-9"', 'code = "30620-8"', "not in lumbar-imaging: loinc|30620-8"),
        ('member_of = "lumbar-imaging"\ncodes = [\n  { system = "loinc", code = "30679-5" }',
         'codes = [\n  { system = "loinc", code = "30679-5" }', "codes need member_of"),
        ("text = '\\bct\\b'", "text = '(ct'", "not a regular expression"),
        ('id = "mri-unsafe-implant"', 'id = "imaging-not-indicated"', "duplicate id"),
        ("suggestion = {", "unknown_key = 1\nsuggestion = {", "orders.toml"),
    ],
)  # fmt: skip
def test_order_check_defects_stop_start_up(
    knowledge_dir: Path, old: str, new: str, message: str
) -> None:
    path = knowledge_dir / "orders.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KnowledgeError, match=message.replace("|", r"\|")):
        load_knowledge(knowledge_dir)


def test_missing_order_file_stops_start_up(knowledge_dir: Path) -> None:
    (knowledge_dir / "orders.toml").unlink()
    with pytest.raises(KnowledgeError, match=r"orders.toml: file missing"):
        load_knowledge(knowledge_dir)


def test_vocabulary_order() -> None:
    assert STAGES == ("conservative", "injection", "surgical-referral")
    assert [urgency_rank(u) for u in URGENCIES] == [0, 1, 2, 3]
    assert most_urgent(["urgent", "stat", "routine"]) == "stat"
    assert most_urgent(["asap", "urgent"]) == "asap"
    assert most_urgent([]) == "routine"
    assert "routine" not in URGENT
    assert frozenset(URGENCIES[1:]) == URGENT
