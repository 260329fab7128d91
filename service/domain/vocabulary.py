"""The fixed vocabulary the engine and every view share, defined once.

- :data:`STAGES`: the treatment-stage ladder, least to most invasive (CarePlan category codes of
  the ``treatment-stage`` CodeSystem, besides ``urgent-referral``).
- :data:`URGENCIES`: FHIR request priorities (http://hl7.org/fhir/request-priority), least to most
  urgent; :func:`urgency_rank` orders them and :data:`URGENT` are those that make a red flag
  urgent (RULES: a stat or urgent flag sets the ``urgent-referral`` stage).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

__all__ = [
    "STAGES",
    "URGENCIES",
    "URGENT",
    "Priority",
    "Stage",
    "most_urgent",
    "urgency_rank",
]

Stage = Literal["conservative", "injection", "surgical-referral"]
STAGES: tuple[Stage, ...] = ("conservative", "injection", "surgical-referral")

Priority = Literal["routine", "urgent", "asap", "stat"]
URGENCIES: tuple[Priority, ...] = ("routine", "urgent", "asap", "stat")
URGENT: frozenset[str] = frozenset({"urgent", "asap", "stat"})
_RANK: dict[str, int] = {name: rank for rank, name in enumerate(URGENCIES)}


def urgency_rank(priority: str) -> int:
    """0 for routine up to 3 for stat."""
    return _RANK[priority]


def most_urgent(priorities: Iterable[str], default: str = "routine") -> str:
    """The most urgent of ``priorities`` (``default`` when there are none)."""
    return max(priorities, key=urgency_rank, default=default)
