"""The decision trace as data: evidence, rule references and firings.

Every conclusion the engine draws carries the rule that drew it and the evidence it rests on; the
emitter renders FHIR (``derivedFrom``, ``supportingInfo``, notes, narrative, Provenance) from these
objects, and the CLI prints them. Nothing here is logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Evidence", "RuleFiring", "RuleRef"]


@dataclass(frozen=True, slots=True, order=True)
class Evidence:
    """One input statement a conclusion rests on."""

    ref: str
    concept: str
    code: str | None = None
    value: str | None = None
    lower_certainty: bool = False
    how: str | None = None  # e.g. "ingredient oxycodone (name)", "keyword in display"


@dataclass(frozen=True, slots=True, order=True)
class RuleRef:
    """A rule id and version, with its guideline source."""

    id: str
    version: str
    source: str
    url: str | None = field(default=None, compare=False)  # the guideline's public text


@dataclass(frozen=True, slots=True)
class RuleFiring:
    """The outcome of one rule for one patient: fired or not, and why."""

    rule: RuleRef
    fired: bool
    when: bool
    unless: bool
    evidence: tuple[Evidence, ...]
