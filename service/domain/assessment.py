"""The engine's result for one patient: conclusions, each with its rules and evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from service.domain.facts import OutOfRange
from service.domain.trace import Evidence, RuleFiring, RuleRef
from service.domain.vocabulary import most_urgent

__all__ = ["Assessment", "Conclusion", "Finding", "ProposedService"]

_T = TypeVar("_T")


def _union(a: tuple[Evidence, ...], b: tuple[Evidence, ...]) -> tuple[Evidence, ...]:
    return tuple(sorted({*a, *b}))


def _extend(a: tuple[_T, ...], b: tuple[_T, ...]) -> tuple[_T, ...]:
    return a + tuple(x for x in b if x not in a)


@dataclass(frozen=True, slots=True)
class Conclusion:
    """A single-valued decision (pain type, certainty, a stage's eligibility...)."""

    value: str
    rule: RuleRef
    reason: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """A red flag, CarePlan activity or note, with every rule that raised it."""

    code: str
    rules: tuple[RuleRef, ...]
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]

    def merged(self, rule: RuleRef, reason: str, evidence: tuple[Evidence, ...]) -> Finding:
        """This finding raised once more by another rule."""
        return Finding(
            self.code,
            _extend(self.rules, (rule,)),
            _extend(self.reasons, (reason,)),
            _union(self.evidence, evidence),
        )


@dataclass(frozen=True, slots=True)
class ProposedService:
    """A ServiceRequest proposal."""

    service: str
    priority: str
    rules: tuple[RuleRef, ...]
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]

    def merged(self, other: ProposedService) -> ProposedService:
        """Two proposals of one service: the higher priority wins, reasons accumulate."""
        priority = most_urgent((self.priority, other.priority))
        return ProposedService(
            self.service,
            priority,
            _extend(self.rules, other.rules),
            _extend(self.reasons, other.reasons),
            _union(self.evidence, other.evidence),
        )


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything decided for one patient."""

    subject: str
    as_of: datetime
    profile: str
    ruleset_version: str
    slots: dict[str, Conclusion]
    red_flags: tuple[Finding, ...]
    proposals: tuple[ProposedService, ...]
    activities: tuple[Finding, ...]
    notes: tuple[Finding, ...]
    firings: tuple[RuleFiring, ...]
    out_of_range: tuple[OutOfRange, ...]
    derived: dict[str, tuple[Evidence, ...]]
    onset: datetime | None = None
    onset_ref: str | None = None
    # every input reference at least one concept recognised (used or not): the rest of the
    # entries PainPath reads are reported as not recognised, never dropped silently
    recognised: frozenset[str] = frozenset()
    # medication-safety findings (RULES §7 ⚠): each becomes a DetectedIssue
    medication_issues: tuple[Finding, ...] = ()

    @property
    def in_scope(self) -> bool:
        """False when the scope rules excluded the patient (RULES §0)."""
        return self.value("scope") != "out-of-scope"

    def value(self, slot: str) -> str | None:
        """A slot's value, if set."""
        found = self.slots.get(slot)
        return found.value if found else None

    def evidence_refs(self) -> tuple[str, ...]:
        """Every input reference any conclusion used, in a stable order."""
        refs: set[str] = set()
        for conclusion in self.slots.values():
            refs.update(e.ref for e in conclusion.evidence)
        groups = (self.red_flags, self.medication_issues, self.proposals, self.activities)
        for group in (*groups, self.notes):
            for item in group:
                refs.update(e.ref for e in item.evidence)
        return tuple(sorted(refs))
