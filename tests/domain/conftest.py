"""Fixtures over the domain test kit (tests/support/painpath_testkit.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from painpath_testkit import AS_OF, make_item, make_record

from service.domain.assessment import Assessment
from service.domain.engine import evaluate
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Item


@pytest.fixture
def item(kb: KnowledgeBase) -> Callable[..., Item]:
    """``item("sciatica", value=..., days_ago=...)``."""
    return lambda concept, **kw: make_item(kb, concept, **kw)


@pytest.fixture
def assess(kb: KnowledgeBase) -> Callable[..., Assessment]:
    """``assess(items, age=45, profile="nice-ng59")`` -> Assessment at AS_OF."""

    def run(items: list[Item], *, age: int | None = 45, profile: str = "nice-ng59") -> Assessment:
        return evaluate(kb, make_record(items, age=age), as_of=AS_OF, profile=profile)

    return run


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    """A writable copy of the packaged knowledge files (for defect tests)."""
    target = tmp_path / "knowledge"
    shutil.copytree(Path(str(resources.files("service.knowledge"))), target)
    return target
