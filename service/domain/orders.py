"""Order checks (``knowledge/orders.toml``): what a draft order is and which evaluation findings
contradict it. Schema, start-up cross-checks and the pure decision; the CDS Hooks card renderer
turns a :class:`OrderProblem` into a card.

A check is data: the kinds of order it applies to, the conditions (`when`) on the assessment and
the record, the texts, and the suggested fix. Nothing clinical is decided in the renderer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.domain.errors import KnowledgeError

__all__ = [
    "OrderCheck",
    "OrderChecks",
    "OrderKind",
    "Suggestion",
    "When",
    "check_orders",
    "compile_kind_texts",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KindCode(_Strict):
    """A standard code that makes an order of the kind (a member of the kind's value set)."""

    system: str
    code: str


class OrderKind(_Strict):
    """What an order is (``mri``, ``ct``, ``epidural``, ``gabapentinoid``, a drug class…)."""

    title: str
    services: list[str] = Field(default_factory=list)
    member_of: str | None = None
    codes: list[KindCode] = Field(default_factory=list)
    concepts: list[str] = Field(default_factory=list)
    text: str | None = None


class When(_Strict):
    """The conditions of a check; every one given must hold."""

    activity: str | None = None
    slot: str | None = None
    value: str | None = None
    fact: str | None = None
    red_flags: bool | None = None


class Suggestion(_Strict):
    """The fix a card suggests: delete the draft, or replace its code by a PainPath service."""

    action: Literal["delete", "replace"]
    label: str
    service: str | None = None


class OrderCheck(_Strict):
    """One contradiction between a draft order and the evaluation."""

    id: str
    group: str | None = None
    kinds: list[str]
    when: When
    summary: str
    detail: str
    patient_detail: bool = False
    suggestion: Suggestion | None = None


class OrderChecks(_Strict):
    """``orders.toml``."""

    version: str
    kinds: dict[str, OrderKind]
    checks: list[OrderCheck]


@dataclass(frozen=True, slots=True)
class KnownNames:
    """What the other knowledge files define, for the cross-checks."""

    services: set[str]
    activities: set[str]
    concepts: set[str]
    slots: set[str]
    members: Mapping[str, set[tuple[str, str]]]  # concept -> (system alias, code)


def check_orders(orders: OrderChecks, known: KnownNames) -> None:
    """Refuse an order-check file that names anything the other files do not define."""
    for name, kind in orders.kinds.items():
        where = f"orders.toml kinds.{name}"
        _known(where, "service", kind.services, known.services)
        _known(where, "concept", kind.concepts, known.concepts)
        if kind.codes:
            members = known.members.get(kind.member_of or "")
            if members is None:
                raise KnowledgeError(f"{where}: codes need member_of, a valuesets.toml concept")
            stray = [
                f"{c.system}|{c.code}" for c in kind.codes if (c.system, c.code) not in members
            ]
            if stray:
                raise KnowledgeError(f"{where}: not in {kind.member_of}: {', '.join(stray)}")
        if kind.text is not None:
            _regex(where, kind.text)
    seen: set[str] = set()
    for check in orders.checks:
        _check_one(check, orders, known, seen)


def _check_one(check: OrderCheck, orders: OrderChecks, known: KnownNames, seen: set[str]) -> None:
    where = f"orders.toml checks.{check.id}"
    if check.id in seen:
        raise KnowledgeError(f"{where}: duplicate id")
    seen.add(check.id)
    _known(where, "kind", check.kinds, set(orders.kinds))
    when = check.when
    _known(where, "activity", [when.activity] if when.activity else [], known.activities)
    _known(where, "concept", [when.fact] if when.fact else [], known.concepts)
    _known(where, "slot", [when.slot] if when.slot else [], known.slots)
    if (when.slot is None) != (when.value is None):
        raise KnowledgeError(f"{where}: slot and value go together")
    suggestion = check.suggestion
    if suggestion is not None and suggestion.action == "replace":
        _known(where, "service", [suggestion.service or ""], known.services)


def _known(where: str, what: str, used: Iterable[str], known: set[str]) -> None:
    unknown = sorted(set(used) - known)
    if unknown:
        raise KnowledgeError(f"{where}: unknown {what} {', '.join(unknown)}")


def _regex(where: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise KnowledgeError(f"{where}: text is not a regular expression: {exc}") from exc


def compile_kind_texts(orders: OrderChecks) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The free-text fallbacks, compiled, in file order."""
    return tuple(
        (_regex(name, kind.text), name) for name, kind in orders.kinds.items() if kind.text
    )
