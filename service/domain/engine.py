"""The inference engine: ordered rules over matched facts, no clock and no I/O.

``evaluate(kb, record, as_of=..., profile=...)`` matches the record's items to concepts, then runs
the rules of ``rules.toml`` in order. A rule fires when its ``when`` holds and its ``unless`` does
not; its effects then derive facts for later rules, fill named slots (first rule wins: pain type,
certainty, each stage, the recommended stage), raise red flags, propose services and activities,
or add notes. Proposals of the same service merge (highest priority wins, reasons accumulate);
a service whose catalogue entry names a substitute (MRI -> CT with an MRI-unsafe implant) is
swapped here, so rules never repeat that logic. The result is an :class:`Assessment` whose every
conclusion carries its rules and evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from service.domain.assessment import (
    Assessment,
    Conclusion,
    Finding,
    ProposedService,
)
from service.domain.expressions import Reading
from service.domain.facts import Fact, Matcher, OutOfRange
from service.domain.knowledge import DRUGS_PLACEHOLDER, FACT_PREFIX, KnowledgeBase, Proposal, Rule
from service.domain.medications import IngredientIndex
from service.domain.mme import opioid_doses
from service.domain.model import Item, Origin, PatientRecord, Polarity, Supply
from service.domain.trace import Evidence, RuleFiring, RuleRef

__all__ = ["evaluate", "supplied_until"]

_DAYS_PER_WEEK = 7.0
_INGREDIENT_HOW = "ingredient "  # how a drug-class fact found by ingredient is traced (facts.py)
_NO_DRUG_NAMED = "a drug of this class (recorded without a drug name)"
_DAYS_PER_MONTH = 365.25 / 12


def _years_between(start: date, end: date) -> int:
    """Completed years from ``start`` to ``end``."""
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(slots=True)
class Evaluation:
    """The working state of one patient's evaluation; implements ``expressions.Context``."""

    kb: KnowledgeBase
    record: PatientRecord
    as_of: datetime
    profile: str
    facts: dict[str, list[Fact]]
    rejected: list[OutOfRange]
    ingredients: IngredientIndex
    derived_facts: dict[str, tuple[Evidence, ...]] = field(default_factory=dict)
    derived_reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    slots: dict[str, Conclusion] = field(default_factory=dict)
    red_flags: dict[str, Finding] = field(default_factory=dict)
    issues: dict[str, Finding] = field(default_factory=dict)
    hold: Finding | None = None
    proposals: dict[str, ProposedService] = field(default_factory=dict)
    activities: dict[str, Finding] = field(default_factory=dict)
    notes: dict[str, Finding] = field(default_factory=dict)
    firings: list[RuleFiring] = field(default_factory=list)
    stopped: bool = False
    ended: tuple[Evidence, ...] = ()  # medications recorded as current whose period has ended
    abated: tuple[Evidence, ...] = ()  # conditions recorded as current that have abated

    # --- Context: what expressions may ask -------------------------------------------------
    def present(self, concept: str, *, history: bool = False) -> tuple[Evidence, ...]:
        """Evidence of a current (or, with ``history``, past) positive statement."""
        if concept not in self.facts:
            return ()  # most concepts are not in a record: the common case, kept cheap
        wanted = {Polarity.PRESENT, Polarity.HISTORY} if history else {Polarity.PRESENT}
        return self._evidence(
            f
            for f in self.facts.get(concept, ())
            if f.item.polarity in wanted and f.item.origin is not Origin.IMAGING
        )

    def absent(self, concept: str) -> tuple[Evidence, ...]:
        """Evidence that the concept was screened and found absent."""
        return self._evidence(
            f for f in self.facts.get(concept, ()) if f.item.polarity is Polarity.ABSENT
        )

    def imaging(self, concept: str) -> tuple[Evidence, ...]:
        """Evidence of the concept in an imaging report."""
        return self._evidence(
            f
            for f in self.facts.get(concept, ())
            if f.item.origin is Origin.IMAGING and f.item.polarity is Polarity.PRESENT
        )

    def readings(self, concept: str, *, advancing: bool = False) -> list[Reading]:
        """Numeric readings, oldest first (latest wins). ``advancing``: a reading in weeks that
        grows with time (gestational age) is read as it stands on the evaluation date, its value
        plus the weeks since it was taken (undated: as taken)."""
        facts = [
            f
            for f in self.facts.get(concept, ())
            if f.item.value is not None and f.item.polarity is Polarity.PRESENT
        ]
        facts.sort(key=lambda f: (self._moment(f.item.when), f.item.ref))
        return [
            Reading(
                float(f.item.value) + (self._weeks_since(f.item.when) if advancing else 0.0),
                f.item.comparator,
                f.evidence(),
            )
            for f in facts
            if f.item.value is not None
        ]

    def _weeks_since(self, when: datetime | None) -> float:
        if when is None:
            return 0.0
        return max((self.as_of - _aware(when)).total_seconds(), 0.0) / 86400 / _DAYS_PER_WEEK

    def recent(
        self, concept: str, months: float, *, absent_too: bool = False
    ) -> tuple[Evidence, ...]:
        """Evidence of the concept dated within ``months`` before the evaluation date
        (``absent_too``: a finding recorded absent counts, as a statement that was made)."""
        horizon = self.as_of - timedelta(days=months * _DAYS_PER_MONTH)
        return self._evidence(
            f
            for f in self.facts.get(concept, ())
            if (absent_too or f.item.polarity is not Polarity.ABSENT)
            and f.item.when is not None
            and horizon <= _aware(f.item.when) <= self.as_of
        )

    def since(self, concept: str, months: float) -> tuple[Evidence, ...]:
        """Evidence of a current statement of the concept that started at least ``months``
        before the evaluation date (a drug taken long-term), each naming its start."""
        horizon = self.as_of - timedelta(days=months * _DAYS_PER_MONTH)
        return tuple(
            sorted(
                {
                    replace(f.evidence(), value=f"since {_aware(f.item.when).date().isoformat()}")
                    for f in self.facts.get(concept, ())
                    if f.item.polarity is Polarity.PRESENT
                    and f.item.origin is not Origin.IMAGING
                    and f.item.when is not None
                    and _aware(f.item.when) <= horizon
                }
            )
        )

    def medications_ended(self) -> tuple[Evidence, ...]:
        """Medications whose status says current but whose period ended before the evaluation
        date (read as history, not as current)."""
        return self.ended

    def conditions_abated(self) -> tuple[Evidence, ...]:
        """Conditions whose clinicalStatus says current (or is absent) but that abated on or
        before the evaluation date (read as history, not as current)."""
        return self.abated

    def treated_weeks(self) -> tuple[float, tuple[Evidence, ...]]:
        """The longest documented conservative-treatment span, in weeks."""
        best = 0.0
        evidence: list[Evidence] = []
        for concept in self.kb.rules_file.treatments:
            for fact in self.facts.get(concept, ()):
                if fact.item.polarity is Polarity.ABSENT or fact.item.when is None:
                    continue
                weeks = self._span_weeks(fact.item)
                if weeks > best:
                    best, evidence = weeks, [fact.evidence()]
        return best, tuple(evidence)

    def derived(self, name: str) -> tuple[Evidence, ...] | None:
        """Evidence of a derived fact, or None if no rule derived it."""
        return self.derived_facts.get(name)

    def slot(self, name: str) -> tuple[str | None, tuple[Evidence, ...]]:
        """A slot's value, if a rule has set it, and the evidence behind it."""
        found = self.slots.get(name)
        return (found.value, found.evidence) if found else (None, ())

    def param(self, name: str) -> float:
        """A parameter's value."""
        return self.kb.param(name)

    def deceased(self) -> tuple[Evidence, ...]:
        """Evidence that the patient is recorded as deceased on the evaluation date (a death
        dated after it does not count: the patient was alive then)."""
        demographics = self.record.demographics
        if not demographics.deceased:
            return ()
        if demographics.deceased_at is not None and _aware(demographics.deceased_at) > self.as_of:
            return ()
        ref = demographics.ref or self.record.subject
        return (Evidence(ref=ref, concept="deceased"),)

    def measure(self, name: str) -> tuple[float | None, tuple[Evidence, ...]]:
        """Age, symptom duration (weeks), age at onset, or the daily opioid dose in MME (summed
        over the current opioids whose dose is computable; ``mme_unknown``: how many are not),
        with the evidence behind it."""
        if name == "age":
            return self._age_at(self.as_of.date())
        if name in {"mme", "mme_unknown"}:
            return self._mme(unknown=name == "mme_unknown")
        onset, evidence = self._onset()
        if onset is None:
            return None, ()
        if name == "duration":
            return (self.as_of - onset).total_seconds() / 86400 / _DAYS_PER_WEEK, evidence
        age, age_evidence = self._age_at(onset.date())
        return age, evidence + age_evidence if age is not None else ()

    # --- helpers ---------------------------------------------------------------------------
    def _mme(self, *, unknown: bool) -> tuple[float | None, tuple[Evidence, ...]]:
        doses = []
        for fact in self.facts.get(self.kb.medications.opioid_class, ()):
            if fact.item.polarity is Polarity.PRESENT:
                for dose in opioid_doses(fact.item, self.ingredients, self.kb.medications.mme,
                                         self.kb.medications.opioid_class):  # fmt: skip
                    doses.append((dose, fact))
        wanted = [(d, f) for d, f in doses if (d.mme is None) == unknown]
        if not wanted:
            return None, ()
        evidence = tuple(sorted({replace(f.evidence(), value=d.describe()) for d, f in wanted}))
        if unknown:
            return float(len(wanted)), evidence
        return round(sum(d.mme or 0.0 for d, _ in wanted), 1), evidence

    def _evidence(self, facts: Iterable[Fact]) -> tuple[Evidence, ...]:
        found = {f.evidence() for f in facts}
        return tuple(sorted(found)) if found else ()

    def _moment(self, when: datetime | None) -> datetime:
        return _aware(when) if when else datetime.min.replace(tzinfo=UTC)

    def _span_weeks(self, item: Item) -> float:
        start = _aware(item.when) if item.when else self.as_of
        end = _aware(item.until) if item.until else self.as_of
        return max((min(end, self.as_of) - start).total_seconds(), 0.0) / 86400 / _DAYS_PER_WEEK

    def _age_at(self, day: date) -> tuple[float | None, tuple[Evidence, ...]]:
        demographics = self.record.demographics
        if demographics.birth_date is None:
            return None, ()
        evidence = Evidence(ref=demographics.ref or self.record.subject, concept="birth-date")
        return float(_years_between(demographics.birth_date, day)), (evidence,)

    def _onset(self) -> tuple[datetime | None, tuple[Evidence, ...]]:
        """RULES §1: earliest onset of a current back-pain Condition, else its recorded date,
        else a symptom-onset Observation (also reported in the Assessment for the views)."""
        spec = self.kb.rules_file.duration
        conditions = [
            f
            for concept in spec.onset_concepts
            for f in self.facts.get(concept, ())
            if f.item.origin is Origin.CONDITION and f.item.polarity is Polarity.PRESENT
        ]
        observations = [
            f for f in self.facts.get(spec.onset_observation, ()) if f.item.when is not None
        ]
        for candidates in (
            [(f.item.when, f) for f in conditions],
            [(f.item.recorded, f) for f in conditions if not f.item.when],
            [(f.item.when, f) for f in observations],
        ):
            dated = [(_aware(moment), fact) for moment, fact in candidates if moment is not None]
            if dated:
                moment, fact = min(dated, key=lambda pair: (pair[0], pair[1].item.ref))
                return moment, (fact.evidence(),)
        return None, ()


def _applies(ev: Evaluation, rule: Rule) -> bool:
    """False when every effect of the rule is a slot some earlier rule already filled."""
    then = rule.spec.then
    only_slots = not (
        then.derive
        or then.red_flag
        or then.issue
        or then.propose
        or then.activity
        or then.note
        or then.hold
    )
    return not (only_slots and then.set and all(name in ev.slots for name in then.set))


def _apply(ev: Evaluation, rule: Rule, evidence: tuple[Evidence, ...]) -> None:
    then = rule.spec.then
    ref = rule.ref
    reason = rule.spec.reason or rule.spec.title
    if DRUGS_PLACEHOLDER in reason:
        reason = reason.replace(DRUGS_PLACEHOLDER, _drug_names(ev, evidence))
    for name in then.derive:
        ev.derived_facts[name] = tuple(sorted({*ev.derived_facts.get(name, ()), *evidence}))
        known = ev.derived_reasons.get(name, ())
        ev.derived_reasons[name] = known + ((reason,) if reason not in known else ())
    for name, value in then.set.items():
        ev.slots.setdefault(name, Conclusion(value, ref, reason, evidence))
    if then.red_flag:
        _merge_finding(ev.red_flags, then.red_flag, ref, reason, evidence)
    if then.issue:
        _merge_finding(ev.issues, then.issue, ref, reason, evidence)
    if then.hold:
        held = {"hold": ev.hold} if ev.hold else {}
        _merge_finding(held, "hold", ref, reason, evidence)
        ev.hold = held["hold"]
    for activity in then.activity:
        _merge_finding(ev.activities, activity, ref, reason, evidence)
    if then.note:
        _merge_finding(ev.notes, then.note, ref, reason, evidence)
    for proposal in then.propose:
        _propose(ev, proposal, ref, reason, evidence)
    ev.stopped = ev.stopped or then.stop


def _merge_finding(
    store: dict[str, Finding], code: str, ref: RuleRef, reason: str, evidence: tuple[Evidence, ...]
) -> None:
    found = store.get(code)
    store[code] = (
        found.merged(ref, reason, evidence) if found else Finding(code, (ref,), (reason,), evidence)
    )


def _propose(
    ev: Evaluation, proposal: Proposal, ref: RuleRef, reason: str, evidence: tuple[Evidence, ...]
) -> None:
    service, priority = proposal.service, proposal.priority
    for condition, substitute in ev.kb.catalogue.services[service].substitute_if.items():
        because, title = _substitution_cause(ev, condition)
        if because:
            reason = f"{reason} ({title}: {ev.kb.catalogue.services[substitute].title} instead)"
            service, evidence = substitute, tuple(sorted({*evidence, *because}))
            break
    found = ev.proposals.get(service)
    new = ProposedService(service, priority, (ref,), (reason,), evidence)
    ev.proposals[service] = found.merged(new) if found else new


def _substitution_cause(ev: Evaluation, condition: str) -> tuple[tuple[Evidence, ...], str]:
    """The evidence for a ``substitute_if`` condition (a present concept, or with the ``fact:``
    prefix a fact an earlier rule derived) and the words that explain it (the concept's title,
    or the reasons of the rules that derived the fact)."""
    if condition.startswith(FACT_PREFIX):
        name = condition.removeprefix(FACT_PREFIX)
        return ev.derived(name) or (), "; ".join(ev.derived_reasons.get(name, ()))
    return ev.present(condition), ev.kb.valuesets.concepts[condition].title


def _drug_names(ev: Evaluation, evidence: tuple[Evidence, ...]) -> str:
    """The medications behind a reason's evidence, as the record names them (the concept text
    or the first coding display of the medication entry; else the ingredient recognised)."""
    names: list[str] = []
    for item in evidence:
        how = item.how or ""
        if not how.startswith(_INGREDIENT_HOW):
            continue
        fact = next((f for f in ev.facts.get(item.concept, ()) if f.item.ref == item.ref), None)
        words = fact.item.text if fact is not None else None
        name = words.split(" | ")[0] if words else how[len(_INGREDIENT_HOW) :].split(" (")[0]
        if name not in names:
            names.append(name)
    return ", ".join(names) if names else _NO_DRUG_NAMED


def _run(ev: Evaluation, rule: Rule) -> None:
    when = rule.when.evaluate(ev)
    blocked = rule.unless.evaluate(ev).ok if (when.ok and rule.unless is not None) else False
    fired = when.ok and not blocked
    ev.firings.append(RuleFiring(rule.ref, fired, when.ok, blocked, when.evidence))
    if fired:
        _apply(ev, rule, when.evidence)


def match_facts(
    matcher: Matcher, items: tuple[Item, ...]
) -> tuple[dict[str, list[Fact]], list[OutOfRange]]:
    """Group an item list's facts by concept."""
    facts: dict[str, list[Fact]] = {}
    rejected: list[OutOfRange] = []
    for item in items:
        found, bad = matcher.match(item)
        rejected += bad
        for fact in found:
            facts.setdefault(fact.concept, []).append(fact)
    return facts, rejected


def supplied_until(kb: KnowledgeBase, item: Item) -> Item:
    """A dispensed or given medication with the end of its supply filled in: the record's own
    (a dispense's days' supply), else the window after it was supplied (``medications.toml``
    ``[supply]``)."""
    if item.supply is None or item.until is not None or item.when is None:
        return item
    windows = kb.medications.supply
    window = (
        timedelta(days=windows.dispensed_days)
        if item.supply is Supply.DISPENSED
        else timedelta(hours=windows.administered_hours)
    )
    return replace(item, until=_aware(item.when) + window)


def _current_items(
    kb: KnowledgeBase, items: tuple[Item, ...], as_of: datetime
) -> tuple[tuple[Item, ...], set[str], set[str]]:
    """Items that say current but are not at ``as_of`` become history: a medication whose period
    (MedicationStatement ``effectivePeriod.end``, MedicationRequest
    ``dispenseRequest.validityPeriod.end``, an in-progress MedicationAdministration's period)
    ended before the evaluation date (``ended``, reported); a dispensed or given one whose supply
    ran out before it (``supplied_until``; nothing to report); a Condition whose ``abatement[x]``
    is on or before it (``abated``, reported: FHIR con-4 wants it inactive, resolved or in
    remission)."""
    kept: list[Item] = []
    ended: set[str] = set()
    abated: set[str] = set()
    for item in items:
        if item.origin is Origin.MEDICATION:
            item = supplied_until(kb, item)
            if (
                item.polarity is Polarity.PRESENT
                and item.until is not None
                and _aware(item.until) < as_of
            ):
                if item.supply is None:
                    ended.add(item.ref)
                item = replace(item, polarity=Polarity.HISTORY)
        elif (
            item.origin is Origin.CONDITION
            and item.polarity is Polarity.PRESENT
            and item.until is not None
            and _aware(item.until) <= as_of
        ):
            abated.add(item.ref)
            item = replace(item, polarity=Polarity.HISTORY)
        kept.append(item)
    return tuple(kept), ended, abated


def evaluate(
    kb: KnowledgeBase,
    record: PatientRecord,
    *,
    as_of: datetime,
    profile: str,
    matcher: Matcher | None = None,
) -> Assessment:
    """Evaluate one patient's record against the knowledge base at ``as_of``."""
    matcher = matcher or Matcher(kb)
    items, ended, abated = _current_items(kb, record.items, _aware(as_of))
    facts, rejected = match_facts(matcher, items)
    ev = Evaluation(kb, record, _aware(as_of), profile, facts, rejected, matcher.ingredients)
    ev.ended = tuple(
        sorted({replace(f.evidence(), value="period ended") for fs in facts.values()
                for f in fs if f.item.ref in ended})
    )  # fmt: skip
    ev.abated = tuple(
        sorted({replace(f.evidence(), value="abated") for fs in facts.values()
                for f in fs if f.item.ref in abated})
    )  # fmt: skip
    for rule in kb.rules:
        if ev.stopped:
            break
        if _applies(ev, rule):
            _run(ev, rule)
    onset, onset_evidence = ev._onset()
    return Assessment(
        onset=onset,
        onset_ref=onset_evidence[0].ref if onset_evidence else None,
        subject=record.subject,
        as_of=ev.as_of,
        profile=profile,
        ruleset_version=kb.version,
        slots=dict(ev.slots),
        red_flags=tuple(ev.red_flags[k] for k in sorted(ev.red_flags)),
        medication_issues=tuple(ev.issues[k] for k in sorted(ev.issues)),
        hold=ev.hold,
        proposals=tuple(ev.proposals[k] for k in sorted(ev.proposals)),
        activities=tuple(ev.activities[k] for k in sorted(ev.activities)),
        notes=tuple(ev.notes[k] for k in sorted(ev.notes)),
        firings=tuple(ev.firings),
        out_of_range=tuple(rejected),
        derived=dict(ev.derived_facts),
        recognised=frozenset(f.item.ref for found in facts.values() for f in found)
        | {o.ref for o in rejected},
    )
