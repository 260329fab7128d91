"""The closed set of rule operators and their evaluation.

A rule's ``when``/``unless`` is a TOML table with exactly one operator key. Operators (documented
for knowledge authors in ``service/knowledge/README.md``):

    all = [..] | any = [..] | not = {..} | always = true
    has = "concept"        current, present finding/diagnosis/treatment
    ever = "concept"       present now or in history
    negative = "concept"   screened and absent (boolean ``false``)
    documented = "concept" any statement, present or absent
    imaging = "concept"    found in an imaging report (DiagnosticReport.conclusionCode)
    value = {concept, gte|gt|lte|lt = "param"[, advancing = true]}  latest numeric reading
                           (advancing: a reading in weeks that grows with the time since it
                           was taken, e.g. gestational age); {concept, known = bool}: whether
                           there is a numeric reading at all
    rising = "concept"     latest reading higher than the one before
    recent = {concept, within_months = "param"}     statement dated within the window
      (findings = "any": a finding recorded absent counts too - imaging that showed no stenosis
      is imaging on record)
    since = {concept, at_least_months = "param"}    current statement that started at least
                           that long before the evaluation date (long-term use of a drug)
    treated = {weeks = "param"}                     conservative treatment spanning the window
    fact = "name"          derived by an earlier rule
    slot = {name, in = [..]}                        a value set by an earlier rule
    age | duration | onset_age = {gte|gt|lte|lt = "param"} or {known = bool}
    mme = {gte|gt|lte|lt = "param"}     daily MME of the current opioids whose dose is computable
    mme_unknown = {known = true}        a current opioid whose daily MME cannot be computed
    profile = "name"       the guideline profile in use
    medication_ended = true  a medication recorded as current whose period has ended
    condition_abated = true  a condition recorded as current whose abatement is on or before
                           the evaluation date

Comparisons name parameters, never literal numbers, so every threshold lives in
``parameters.toml``. Each node returns whether it holds and the evidence that made it hold.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.domain.trace import Evidence

__all__ = ["Context", "Expr", "Outcome", "Reading", "References", "compile_expr"]

_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether an expression holds, and the evidence behind it."""

    ok: bool
    evidence: tuple[Evidence, ...] = ()


FALSE = Outcome(ok=False)


class Context(Protocol):
    """What expressions may ask of the engine (implemented by ``engine.Evaluation``)."""

    def present(self, concept: str, *, history: bool = False) -> tuple[Evidence, ...]: ...

    def absent(self, concept: str) -> tuple[Evidence, ...]: ...

    def imaging(self, concept: str) -> tuple[Evidence, ...]: ...

    def readings(self, concept: str, *, advancing: bool = False) -> list[Reading]: ...

    def recent(
        self, concept: str, months: float, *, absent_too: bool = False
    ) -> tuple[Evidence, ...]: ...

    def since(self, concept: str, months: float) -> tuple[Evidence, ...]: ...

    def medications_ended(self) -> tuple[Evidence, ...]: ...

    def conditions_abated(self) -> tuple[Evidence, ...]: ...

    def treated_weeks(self) -> tuple[float, tuple[Evidence, ...]]: ...

    def derived(self, name: str) -> tuple[Evidence, ...] | None: ...

    def slot(self, name: str) -> tuple[str | None, tuple[Evidence, ...]]: ...

    def param(self, name: str) -> float: ...

    def deceased(self) -> tuple[Evidence, ...]: ...

    def measure(self, name: str) -> tuple[float | None, tuple[Evidence, ...]]: ...

    @property
    def profile(self) -> str: ...


@dataclass(slots=True)
class References:
    """Names an expression reads, for start-up cross-checks."""

    concepts: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    slots: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)

    def merge(self, other: References) -> References:
        """Add another node's references to these."""
        self.concepts += other.concepts
        self.parameters += other.parameters
        self.facts += other.facts
        self.slots += other.slots
        self.profiles += other.profiles
        return self


class Expr(Protocol):
    """A compiled expression node."""

    def evaluate(self, ctx: Context) -> Outcome: ...

    def references(self) -> References: ...


def _references(children: Iterable[Expr]) -> References:
    refs = References()
    for child in children:
        refs.merge(child.references())
    return refs


def _merge(outcomes: Iterable[Outcome]) -> tuple[Evidence, ...]:
    return tuple(sorted({ev for out in outcomes for ev in out.evidence}))


@dataclass(frozen=True, slots=True)
class Reading:
    """A numeric reading. With a ``comparator`` (``<5``: below 5) it stands for every value on
    that side, and a comparison holds only if it holds for all of them: ``<5`` is not above 10,
    ``>15`` is above 10, and ``<15`` is neither above nor not above 10, so it does not count."""

    value: float
    comparator: str | None
    evidence: Evidence

    def holds(self, op: str, threshold: float) -> bool:
        """True when every value the reading stands for satisfies ``op threshold``."""
        if op in {"gt", "gte"}:
            low = self._low()
            if low is None:
                return False
            value, strict = low
            return value > threshold or (value == threshold and (strict or op == "gte"))
        high = self._high()
        if high is None:
            return False
        value, strict = high
        return value < threshold or (value == threshold and (strict or op == "lte"))

    def above(self, other: Reading) -> bool:
        """True when every value this reading stands for exceeds every value of ``other``."""
        low, high = self._low(), other._high()
        if low is None or high is None:
            return False
        return low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1]))

    def _low(self) -> tuple[float, bool] | None:
        """(lower bound, bound excluded), None when unbounded below."""
        if self.comparator in {"<", "<="}:
            return None
        return self.value, self.comparator == ">"

    def _high(self) -> tuple[float, bool] | None:
        if self.comparator in {">", ">="}:
            return None
        return self.value, self.comparator == "<"


@dataclass(frozen=True, slots=True)
class _All:
    children: tuple[Expr, ...]

    def evaluate(self, ctx: Context) -> Outcome:
        outcomes = []
        for child in self.children:
            out = child.evaluate(ctx)
            if not out.ok:
                return FALSE
            outcomes.append(out)
        return Outcome(True, _merge(outcomes))

    def references(self) -> References:
        return _references(self.children)


@dataclass(frozen=True, slots=True)
class _Any:
    children: tuple[Expr, ...]

    def evaluate(self, ctx: Context) -> Outcome:
        held = [out for out in (c.evaluate(ctx) for c in self.children) if out.ok]
        return Outcome(True, _merge(held)) if held else FALSE

    def references(self) -> References:
        return _references(self.children)


@dataclass(frozen=True, slots=True)
class _Not:
    child: Expr

    def evaluate(self, ctx: Context) -> Outcome:
        return Outcome(not self.child.evaluate(ctx).ok)

    def references(self) -> References:
        return self.child.references()


@dataclass(frozen=True, slots=True)
class _Always:
    def evaluate(self, ctx: Context) -> Outcome:
        return Outcome(True)

    def references(self) -> References:
        return References()


def _held(evidence: tuple[Evidence, ...]) -> Outcome:
    return Outcome(True, evidence) if evidence else FALSE


@dataclass(frozen=True, slots=True)
class _Concept:
    kind: str
    concept: str

    def evaluate(self, ctx: Context) -> Outcome:
        if self.kind == "has":
            return _held(ctx.present(self.concept))
        if self.kind == "ever":
            return _held(ctx.present(self.concept, history=True))
        if self.kind == "negative":
            return _held(ctx.absent(self.concept))
        if self.kind == "imaging":
            return _held(ctx.imaging(self.concept))
        if self.kind == "rising":
            return _rising(ctx.readings(self.concept))
        # documented: present, absent or history
        evidence = ctx.present(self.concept, history=True) + ctx.absent(self.concept)
        return _held(evidence)

    def references(self) -> References:
        return References(concepts=[self.concept])


def _rising(readings: list[Reading]) -> Outcome:
    """The latest reading is above the one before it (for every value each stands for)."""
    if len(readings) < 2 or not readings[-1].above(readings[-2]):
        return FALSE
    return Outcome(True, (readings[-2].evidence, readings[-1].evidence))


def _compare(spec: dict[str, Any], where: str) -> tuple[str, str]:
    keys = [k for k in spec if k in _COMPARATORS]
    if len(keys) != 1:
        raise ValueError(f"{where}: needs exactly one of {sorted(_COMPARATORS)}")
    return keys[0], str(spec[keys[0]])


@dataclass(frozen=True, slots=True)
class _Value:
    concept: str
    op: str | None
    param: str | None
    advancing: bool = False
    known: bool | None = None

    def evaluate(self, ctx: Context) -> Outcome:
        readings = ctx.readings(self.concept, advancing=self.advancing)
        if self.known is not None:
            if not readings:
                return Outcome(not self.known)
            return Outcome(True, (readings[-1].evidence,)) if self.known else FALSE
        if not readings or self.op is None or self.param is None:
            return FALSE
        latest = readings[-1]
        ok = latest.holds(self.op, ctx.param(self.param))
        return Outcome(True, (latest.evidence,)) if ok else FALSE

    def references(self) -> References:
        return References(concepts=[self.concept], parameters=[self.param] if self.param else [])


@dataclass(frozen=True, slots=True)
class _Recent:
    concept: str
    param: str
    absent_too: bool = False

    def evaluate(self, ctx: Context) -> Outcome:
        return _held(ctx.recent(self.concept, ctx.param(self.param), absent_too=self.absent_too))

    def references(self) -> References:
        return References(concepts=[self.concept], parameters=[self.param])


@dataclass(frozen=True, slots=True)
class _Since:
    concept: str
    param: str

    def evaluate(self, ctx: Context) -> Outcome:
        return _held(ctx.since(self.concept, ctx.param(self.param)))

    def references(self) -> References:
        return References(concepts=[self.concept], parameters=[self.param])


@dataclass(frozen=True, slots=True)
class _MedicationEnded:
    def evaluate(self, ctx: Context) -> Outcome:
        return _held(ctx.medications_ended())

    def references(self) -> References:
        return References()


@dataclass(frozen=True, slots=True)
class _ConditionAbated:
    def evaluate(self, ctx: Context) -> Outcome:
        return _held(ctx.conditions_abated())

    def references(self) -> References:
        return References()


def _true_leaf(key: str, value: Any) -> Expr:
    if value is not True:
        raise ValueError(f"{key}: needs true")
    return _MedicationEnded() if key == "medication_ended" else _ConditionAbated()


@dataclass(frozen=True, slots=True)
class _Treated:
    param: str

    def evaluate(self, ctx: Context) -> Outcome:
        weeks, evidence = ctx.treated_weeks()
        return Outcome(True, evidence) if weeks >= ctx.param(self.param) else FALSE

    def references(self) -> References:
        return References(parameters=[self.param])


@dataclass(frozen=True, slots=True)
class _Measure:
    """Age, symptom duration or age at onset compared with a parameter, or known/unknown."""

    name: str
    op: str | None
    param: str | None
    known: bool | None

    def evaluate(self, ctx: Context) -> Outcome:
        value, evidence = ctx.measure(self.name)
        if self.known is not None:
            return Outcome((value is not None) == self.known, evidence if value is not None else ())
        if value is None or self.op is None or self.param is None:
            return FALSE
        ok = _COMPARATORS[self.op](value, ctx.param(self.param))
        return Outcome(True, evidence) if ok else FALSE

    def references(self) -> References:
        return References(parameters=[self.param] if self.param else [])


@dataclass(frozen=True, slots=True)
class _Fact:
    name: str

    def evaluate(self, ctx: Context) -> Outcome:
        evidence = ctx.derived(self.name)
        return FALSE if evidence is None else Outcome(True, evidence)

    def references(self) -> References:
        return References(facts=[self.name])


@dataclass(frozen=True, slots=True)
class _Slot:
    name: str
    values: tuple[str, ...]

    def evaluate(self, ctx: Context) -> Outcome:
        value, evidence = ctx.slot(self.name)
        return Outcome(True, evidence) if value in self.values else FALSE

    def references(self) -> References:
        return References(slots=[self.name])


@dataclass(frozen=True, slots=True)
class _Profile:
    name: str

    def evaluate(self, ctx: Context) -> Outcome:
        return Outcome(ctx.profile == self.name)

    def references(self) -> References:
        return References(profiles=[self.name])


@dataclass(frozen=True, slots=True)
class _Deceased:
    expected: bool

    def evaluate(self, ctx: Context) -> Outcome:
        evidence = ctx.deceased()
        if self.expected:
            return _held(evidence)
        return FALSE if evidence else Outcome(True)

    def references(self) -> References:
        return References()


def _children(value: Any, where: str) -> tuple[Expr, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: needs a non-empty list")
    return tuple(compile_expr(child) for child in value)


def _table(value: Any, where: str, required: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or any(key not in value for key in required):
        raise ValueError(f"{where}: needs a table with {', '.join(required)}")
    return value


def _measure(name: str, value: Any) -> Expr:
    spec = _table(value, name, [])
    if "known" in spec:
        return _Measure(name, None, None, bool(spec["known"]))
    op, param = _compare(spec, name)
    return _Measure(name, op, param, None)


def _concept_leaf(key: str, value: Any) -> Expr:
    return _Concept(key, str(value))


def _value_leaf(key: str, value: Any) -> Expr:
    spec = _table(value, key, ["concept"])
    advancing = spec.get("advancing", False)
    if not isinstance(advancing, bool):
        raise ValueError(f"{key}: advancing needs true or false")
    if "known" in spec:
        if not isinstance(spec["known"], bool) or len(spec) != 2:
            raise ValueError(f"{key}: known needs true or false and nothing else")
        return _Value(str(spec["concept"]), None, None, known=spec["known"])
    op, param = _compare(spec, key)
    return _Value(str(spec["concept"]), op, param, advancing)


def _recent_leaf(key: str, value: Any) -> Expr:
    spec = _table(value, key, ["concept", "within_months"])
    findings = spec.get("findings", "present")
    if findings not in {"present", "any"} or set(spec) - {"concept", "within_months", "findings"}:
        raise ValueError(f"{key}: findings is 'present' or 'any', and nothing else is allowed")
    return _Recent(str(spec["concept"]), str(spec["within_months"]), findings == "any")


def _since_leaf(key: str, value: Any) -> Expr:
    spec = _table(value, key, ["concept", "at_least_months"])
    return _Since(str(spec["concept"]), str(spec["at_least_months"]))


def _slot_leaf(key: str, value: Any) -> Expr:
    spec = _table(value, key, ["name", "in"])
    return _Slot(str(spec["name"]), tuple(str(v) for v in spec["in"]))


def _deceased_leaf(key: str, value: Any) -> Expr:
    if not isinstance(value, bool):
        raise ValueError(f"{key}: needs true or false")
    return _Deceased(value)


_CONCEPT_TESTS = ("has", "ever", "negative", "documented", "imaging", "rising")
_LEAVES: dict[str, Callable[[str, Any], Expr]] = {
    **dict.fromkeys(_CONCEPT_TESTS, _concept_leaf),
    **dict.fromkeys(("age", "duration", "onset_age", "mme", "mme_unknown"), _measure),
    "value": _value_leaf,
    "recent": _recent_leaf,
    "since": _since_leaf,
    "medication_ended": _true_leaf,
    "condition_abated": _true_leaf,
    "treated": lambda key, value: _Treated(str(_table(value, key, ["weeks"])["weeks"])),
    "fact": lambda key, value: _Fact(str(value)),
    "slot": _slot_leaf,
    "profile": lambda key, value: _Profile(str(value)),
    "deceased": _deceased_leaf,
}


def _compile_leaf(key: str, value: Any) -> Expr:
    """One operator over facts, measures, slots or the request (table: ``_LEAVES``)."""
    leaf = _LEAVES.get(key)
    if leaf is None:
        raise ValueError(f"unknown operator {key!r}")
    return leaf(key, value)


def compile_expr(node: Any) -> Expr:
    """Compile one TOML expression table into an evaluable node (ValueError on bad input)."""
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"an expression is a table with exactly one operator, got {node!r}")
    ((key, value),) = node.items()
    if key == "all":
        return _All(_children(value, key))
    if key == "any":
        return _Any(_children(value, key))
    if key == "not":
        return _Not(compile_expr(value))
    if key == "always":
        return _Always()
    return _compile_leaf(key, value)
