"""Knowledge files: schema, loading and start-up validation.

The clinical content lives in ``service/knowledge/*.toml`` (data only):

- ``valuesets.toml``   concepts -> codes (SNOMED CT, ICD-10-CM, ICD-10, LOINC, RxNorm, local)
- ``parameters.toml``  every threshold and duration, with unit and source
- ``catalogue.toml``   output vocabulary: services, activities, red flags, notes, profiles
- ``rules.toml``       ordered rules: ``when``/``unless`` expressions and ``then`` effects
- ``instruments.toml`` questionnaire scoring (items -> totals)
- ``medications.toml`` ingredients (codes, names, brands) -> drug classes (concepts)
- ``orders.toml``      CDS order checks: what a draft order is, which findings contradict it
- ``explanation.toml`` the patient explanation's plain-language text

Each file is validated with ``extra="forbid"`` models, then cross-checked (every concept,
parameter, derived fact, slot, service and activity a rule names must exist, and a rule may only
read facts and slots set by rules before it; a code written in several files has one display).
Any failure raises :class:`KnowledgeError`, which stops start-up with a message naming the file
and the rule.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.domain.errors import KnowledgeError
from service.domain.expressions import Expr, compile_expr
from service.domain.instruments import Instruments, check_instruments
from service.domain.medications import Medications, check_medications
from service.domain.orders import KnownNames, OrderChecks, check_orders, compile_kind_texts
from service.domain.trace import RuleRef
from service.domain.vocabulary import Priority

__all__ = [
    "Catalogue",
    "Concept",
    "KnowledgeBase",
    "Rule",
    "ValueSets",
    "default_knowledge",
    "load_knowledge",
]

_M = TypeVar("_M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Strict):
    """One code of a value set, with its verification grade and source."""

    system: str
    code: str
    display: str
    status: str
    source: str
    match: Literal["exact", "prefix"] = "exact"
    # the number a code stands for when the input carries none (ICD-10-CM Z3A.20 = 20 weeks of
    # gestation), with a comparator when it is a bound (Z3A.01 "less than 8 weeks" = <8)
    value: float | None = None
    comparator: Literal["<", "<=", ">=", ">"] | None = None


FACT_PREFIX = "fact:"  # a catalogue ``substitute_if`` key naming a derived fact, not a concept
DRUGS_PLACEHOLDER = "{drugs}"  # in a rule's reason: the medications its evidence names


class Concept(_Strict):
    """A clinical concept the rules can name, and the codes that express it."""

    title: str
    includes: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    # words that, anywhere in the text, stop a keyword match ("screening for", "family history")
    exclude: list[str] = Field(default_factory=list)
    codes: list[CodeEntry] = Field(default_factory=list)
    value_type: Literal["boolean", "integer", "quantity", "datetime"] | None = None
    range: tuple[float, float] | None = None
    unit: str | None = None  # canonical UCUM unit of a quantity: a key of ``[units]``


class UnitDef(_Strict):
    """A canonical UCUM unit and every unit converted into it (UCUM codes and common spellings,
    each with the factor that turns its value into the canonical unit)."""

    title: str
    convert: dict[str, float]


class Answer(_Strict):
    """A coded answer that stands for yes, no or a number (e.g. LOINC LA33-6 = yes)."""

    system: str
    code: str
    display: str
    means: Literal["yes", "no", "unknown"] | float
    status: str
    source: str


class ValueSets(_Strict):
    """``valuesets.toml``."""

    version: str
    systems: dict[str, str]
    concepts: dict[str, Concept]
    answers: list[Answer] = Field(default_factory=list)
    absent_words: list[str] = Field(default_factory=list)
    present_words: list[str] = Field(default_factory=list)
    units: dict[str, UnitDef] = Field(default_factory=dict)


class Parameter(_Strict):
    """A tunable threshold or duration."""

    value: float
    unit: str
    description: str
    source: str


class Parameters(_Strict):
    """``parameters.toml``."""

    version: str
    parameters: dict[str, Parameter]


class Coding(_Strict):
    """A standard coding attached to an output (service code, activity code)."""

    system: str
    code: str
    display: str
    status: str = "LOCAL"


class ServiceDef(_Strict):
    """A ServiceRequest PainPath may propose."""

    title: str
    stage: Literal["conservative", "injection", "surgical-referral", "referral", "imaging"]
    category: Coding | None = None
    code: Coding | None = None
    substitute_if: dict[str, str] = Field(default_factory=dict)


class ActivityDef(_Strict):
    """A CarePlan activity detail (advice, exercise, a medication proposal)."""

    title: str
    kind: Literal["ServiceRequest", "MedicationRequest", "CommunicationRequest", "Task"]
    code: Coding | None = None
    description: str
    caution: str | None = None
    do_not_perform: bool = False


class RedFlagDef(_Strict):
    """A red flag, the DetectedIssue severity it carries and its urgency when no proposal
    states a higher one (RULES §3 table)."""

    title: str
    severity: Literal["high", "moderate", "low"]
    urgency: Priority = "routine"


class MedicationIssueDef(_Strict):
    """A medication-safety finding (RULES §7 ⚠) and the DetectedIssue it becomes: its HL7 v3
    ActCode detected-issue type (DRG interaction, DOSEH high dose, AGE, COND) and severity."""

    title: str
    severity: Literal["high", "moderate", "low"]
    actcode: Literal["DRG", "DOSEH", "DOSEL", "DOSECOND", "AGE", "COND"]
    actcode_display: str
    mitigation: str


class HoldDef(_Strict):
    """How a held plan reads (RULES §8): the activity status reason and description prefix."""

    status_reason: str
    prefix: str


class Prompt(_Strict):
    """One finding that would decide an open question, and the code that records it."""

    text: str
    system: str
    code: str
    questionnaire: str | None = None  # a PainPath Questionnaire id that records it


class FormDef(_Strict):
    """A PainPath Questionnaire that records findings (RULES §9): its items are the prompts of
    ``what_would_change`` that name it (``service.domain.forms``)."""

    title: str
    description: str


class WhatWouldChange(_Strict):
    """RULES §9: what would decide a decision a rule left open (or an undocumented screen)."""

    about: str
    prompts: list[Prompt]


class NoteDef(_Strict):
    """An OperationOutcome issue PainPath may add."""

    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    text: str


class ProfileDef(_Strict):
    """A guideline profile selectable per request."""

    title: str
    guideline: str
    url: str


class Catalogue(_Strict):
    """``catalogue.toml``: the output vocabulary."""

    version: str
    services: dict[str, ServiceDef]
    activities: dict[str, ActivityDef]
    red_flags: dict[str, RedFlagDef]
    medication_issues: dict[str, MedicationIssueDef] = Field(default_factory=dict)
    hold: HoldDef
    what_would_change: dict[str, WhatWouldChange] = Field(default_factory=dict)
    questionnaires: dict[str, FormDef] = Field(default_factory=dict)
    notes: dict[str, NoteDef]
    profiles: dict[str, ProfileDef]
    default_profile: str
    displays: dict[str, dict[str, str]]


class Source(_Strict):
    """Where a rule comes from; ``url`` the guideline's public text (the pages link to it)."""

    guideline: str
    section: str
    url: str | None = Field(default=None, pattern=r"^https://[^\s]+$")
    grade: str | None = None


class Proposal(_Strict):
    """A ServiceRequest a rule proposes."""

    service: str
    priority: Priority = "routine"


class Effect(_Strict):
    """What a rule concludes when it fires."""

    derive: list[str] = Field(default_factory=list)
    set: dict[str, str] = Field(default_factory=dict)
    red_flag: str | None = None
    issue: str | None = None  # a medication-safety DetectedIssue (catalogue medication_issues)
    # RULES §8: hold the routine plan (activities on hold, routine ServiceRequests not emitted)
    hold: bool = False
    propose: list[Proposal] = Field(default_factory=list)
    activity: list[str] = Field(default_factory=list)
    note: str | None = None
    stop: bool = False


class RuleSpec(_Strict):
    """One rule as written in ``rules.toml``."""

    id: str
    version: str
    title: str
    reason: str | None = None
    source: Source
    when: dict[str, Any]
    unless: dict[str, Any] | None = None
    then: Effect


class DurationSpec(_Strict):
    """Which concepts date the symptom onset (RULES §1)."""

    onset_concepts: list[str]
    onset_observation: str


class TextSpec(_Strict):
    """Keyword matching of text-only CodeableConcepts."""

    negation_cues: list[str]
    negation_window_words: int


class RulesFile(_Strict):
    """``rules.toml``."""

    version: str
    duration: DurationSpec
    text: TextSpec
    treatments: list[str]
    rules: list[RuleSpec]


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule."""

    spec: RuleSpec
    when: Expr
    unless: Expr | None
    ref: RuleRef  # id, version and guideline source, cited by every firing and conclusion

    @property
    def id(self) -> str:
        """The rule id."""
        return self.spec.id


class ExplanationHeadings(_Strict):
    """The section headings of the patient explanation."""

    pain_type: str
    plan: str
    steps: str
    avoid: str
    later: str
    urgent_help: str
    same_day: str


class UrgentHelp(_Strict):
    """The red-flag symptoms every patient explanation lists."""

    intro: str
    symptoms: list[str] = Field(min_length=1)
    also_intro: str
    also: list[str] = Field(min_length=1)


class ExplanationText(_Strict):
    """``explanation.toml``: the plain-language text of the patient explanation."""

    version: str
    title: str
    draft_note: str
    headings: ExplanationHeadings
    pain_type: dict[str, str]
    plan: dict[str, str]
    red_flags: dict[str, str]
    services: dict[str, str]
    activities: dict[str, str]
    urgent_help: UrgentHelp


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """Everything the engine needs, validated and compiled."""

    valuesets: ValueSets
    parameters: Parameters
    catalogue: Catalogue
    rules_file: RulesFile
    rules: tuple[Rule, ...]
    instruments: dict[str, Any]
    scoring: Instruments
    orders: OrderChecks
    medications: Medications
    order_texts: tuple[tuple[re.Pattern[str], str], ...]  # the kinds' free-text fallbacks
    explanation: ExplanationText

    @property
    def version(self) -> str:
        """The rule-set version emitted with every output."""
        return self.rules_file.version

    def param(self, name: str) -> float:
        """A parameter's value."""
        return self.parameters.parameters[name].value


def _read_toml(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise KnowledgeError(f"{name}: file missing in {directory}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{name}: not valid TOML: {exc}") from exc


def _model(model: type[_M], data: dict[str, Any], name: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise KnowledgeError(f"{name}: {where}: {first['msg']}") from exc


def load_knowledge(directory: Path | None = None) -> KnowledgeBase:
    """Load, validate and compile the knowledge files; raise KnowledgeError on any defect."""
    directory = directory or Path(str(resources.files("service.knowledge")))
    valuesets = _model(ValueSets, _read_toml(directory, "valuesets.toml"), "valuesets.toml")
    parameters = _model(Parameters, _read_toml(directory, "parameters.toml"), "parameters.toml")
    catalogue = _model(Catalogue, _read_toml(directory, "catalogue.toml"), "catalogue.toml")
    rules_file = _model(RulesFile, _read_toml(directory, "rules.toml"), "rules.toml")
    instruments = _read_toml(directory, "instruments.toml")
    _check_valuesets(valuesets)
    _check_one_display(directory, valuesets.systems)
    rules = _compile_rules(rules_file, valuesets, parameters, catalogue)
    scoring = check_instruments(instruments, set(valuesets.concepts), systems=valuesets.systems)
    orders = _model(OrderChecks, _read_toml(directory, "orders.toml"), "orders.toml")
    check_orders(orders, _known_names(valuesets, catalogue, rules))
    _check_what_would_change(catalogue, valuesets, {r.id for r in rules}, set(scoring.instruments))
    medications = _model(Medications, _read_toml(directory, "medications.toml"), "medications.toml")
    check_medications(
        medications,
        concepts=set(valuesets.concepts),
        systems=valuesets.systems,
        taken={f"{c.system}|{c.code}" for v in valuesets.concepts.values() for c in v.codes},
    )
    return KnowledgeBase(
        valuesets,
        parameters,
        catalogue,
        rules_file,
        rules,
        instruments,
        scoring,
        orders,
        medications,
        compile_kind_texts(orders),
        _explanation(directory, catalogue),
    )


def _explanation(directory: Path, catalogue: Catalogue) -> ExplanationText:
    """``explanation.toml``, with a text for everything the explanation may have to explain."""
    name = "explanation.toml"
    text = _model(ExplanationText, _read_toml(directory, name), name)
    needed = {
        "pain_type": set(catalogue.displays.get("pain-type", {})),
        "plan": set(catalogue.displays.get("treatment-stage", {})) | {"unknown"},
        "red_flags": set(catalogue.red_flags),
        "services": set(catalogue.services),
        "activities": set(catalogue.activities),
    }
    for table, keys in needed.items():
        have = set(getattr(text, table))
        if keys - have:
            raise KnowledgeError(f"{name} [{table}]: no text for {', '.join(sorted(keys - have))}")
        if have - keys:
            raise KnowledgeError(f"{name} [{table}]: {', '.join(sorted(have - keys))} unknown")
    return text


def _known_names(valuesets: ValueSets, catalogue: Catalogue, rules: tuple[Rule, ...]) -> KnownNames:
    members = {
        name: {(c.system, c.code) for c in concept.codes}
        for name, concept in valuesets.concepts.items()
    }
    return KnownNames(
        services=set(catalogue.services),
        activities=set(catalogue.activities),
        concepts=set(valuesets.concepts),
        slots={slot for rule in rules for slot in rule.spec.then.set},
        members=members,
    )


def _check_what_would_change(
    catalogue: Catalogue, valuesets: ValueSets, rules: set[str], instruments: set[str]
) -> None:
    """Every key is a rule id or a note; every prompt's code is one valuesets.toml lists; every
    Questionnaire a prompt names is a form of ``[questionnaires]`` or an instrument, and every
    form records at least one prompt."""
    listed = {(c.system, c.code) for v in valuesets.concepts.values() for c in v.codes}
    clash = set(catalogue.questionnaires) & instruments
    if clash:
        raise KnowledgeError(
            f"catalogue.toml questionnaires.{min(clash)}: an instrument of the same id exists"
        )
    named: set[str] = set()
    for key, entry in catalogue.what_would_change.items():
        if key not in rules and key not in catalogue.notes:
            raise KnowledgeError(f"catalogue.toml what_would_change.{key}: no such rule or note")
        for prompt in entry.prompts:
            if (prompt.system, prompt.code) not in listed:
                raise KnowledgeError(
                    f"catalogue.toml what_would_change.{key}: {prompt.system}|{prompt.code} "
                    "is not a code valuesets.toml lists"
                )
            form = prompt.questionnaire
            if form is not None and form not in set(catalogue.questionnaires) | instruments:
                raise KnowledgeError(
                    f"catalogue.toml what_would_change.{key}: questionnaire {form!r} is neither "
                    "a [questionnaires] form nor an instrument"
                )
            named.add(form or "")
    unused = sorted(set(catalogue.questionnaires) - named)
    if unused:
        raise KnowledgeError(f"catalogue.toml questionnaires.{unused[0]}: no prompt names it")


@cache
def default_knowledge() -> KnowledgeBase:
    """The packaged knowledge base, loaded once per process."""
    return load_knowledge()


def _check_valuesets(valuesets: ValueSets) -> None:
    for answer in valuesets.answers:
        if answer.system not in valuesets.systems:
            raise KnowledgeError(f"valuesets.toml: answer {answer.code}: unknown system alias")
    for name, concept in valuesets.concepts.items():
        unknown = sorted(set(concept.includes) - set(valuesets.concepts))
        if unknown:
            raise KnowledgeError(f"valuesets.toml: {name}: includes unknown concept(s) {unknown}")
        if concept.unit is not None and concept.unit not in valuesets.units:
            raise KnowledgeError(f"valuesets.toml: {name}: unit {concept.unit!r} not in [units]")
    _check_units(valuesets.units)
    seen: dict[tuple[str, str], str] = {}
    for name, concept in valuesets.concepts.items():
        for entry in concept.codes:
            if entry.system not in valuesets.systems:
                raise KnowledgeError(f"valuesets.toml: {name}: unknown system alias {entry.system}")
            key = (entry.system, entry.code)
            if key in seen:
                raise KnowledgeError(
                    f"valuesets.toml: {entry.system}|{entry.code} in both {seen[key]} and {name}"
                )
            seen[key] = name


_DISPLAYED = ("valuesets.toml", "catalogue.toml", "medications.toml", "orders.toml",
              "instruments.toml")  # fmt: skip


def _check_one_display(directory: Path, systems: dict[str, str]) -> None:
    """One display per code: every ``{system, code, display}`` the knowledge files write (a
    system alias of ``[systems]`` or its URL) gives a code the display every other file gives it,
    so the package's ValueSets and PainPath's outputs never name one code two ways."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for name in _DISPLAYED:
        for entry in _coded(_read_toml(directory, name)):
            key = (systems.get(entry["system"], entry["system"]), entry["code"])
            first = seen.setdefault(key, (entry["display"], name))
            if first[0] != entry["display"]:
                raise KnowledgeError(
                    f"{name}: {key[0]}|{key[1]} displayed {entry['display']!r}, "
                    f"but {first[1]} displays it {first[0]!r} (one display per code)"
                )


def _coded(node: object) -> list[dict[str, str]]:
    """Every table (at any depth) with a string ``system``, ``code`` and ``display``."""
    if isinstance(node, list):
        return [entry for item in node for entry in _coded(item)]
    if not isinstance(node, dict):
        return []
    found = [entry for value in node.values() for entry in _coded(value)]
    if all(isinstance(node.get(key), str) for key in ("system", "code", "display")):
        found.insert(0, node)
    return found


def _check_units(units: dict[str, UnitDef]) -> None:
    for unit, definition in units.items():
        if definition.convert.get(unit) != 1:
            raise KnowledgeError(f"valuesets.toml: units.{unit}: must convert {unit!r} at 1")
        if any(factor <= 0 for factor in definition.convert.values()):
            raise KnowledgeError(f"valuesets.toml: units.{unit}: factors must be positive")
        folded: dict[str, float] = {}
        for name, factor in definition.convert.items():
            if folded.setdefault(name.lower(), factor) != factor:
                raise KnowledgeError(
                    f"valuesets.toml: units.{unit}: {name!r} differs from a unit of the same "
                    "letters in another case; the case-blind lookup would be ambiguous"
                )


def _compile_rules(
    rules_file: RulesFile, valuesets: ValueSets, parameters: Parameters, catalogue: Catalogue
) -> tuple[Rule, ...]:
    facts: set[str] = set()
    slots: set[str] = set()
    ids: set[str] = set()
    names = _Names(set(valuesets.concepts), set(parameters.parameters), set(catalogue.profiles))
    _check_names(
        "duration",
        [*rules_file.duration.onset_concepts, rules_file.duration.onset_observation],
        names.concepts,
    )
    _check_names("treatments", rules_file.treatments, names.concepts)
    compiled: list[Rule] = []
    for spec in rules_file.rules:
        where = f"rules.toml: rule {spec.id}"
        if spec.id in ids:
            raise KnowledgeError(f"{where}: duplicate id")
        ids.add(spec.id)
        try:
            when = compile_expr(spec.when)
            unless = compile_expr(spec.unless) if spec.unless is not None else None
        except ValueError as exc:
            raise KnowledgeError(f"{where}: {exc}") from exc
        for expr in (when, unless):
            if expr is not None:
                _check_refs(where, expr, names, facts, slots)
        _check_effect(where, spec.then, catalogue)
        for proposal in spec.then.propose:
            _check_substitutes(where, proposal.service, catalogue, names.concepts, facts)
        facts.update(spec.then.derive)
        slots.update(spec.then.set)
        source = f"{spec.source.guideline} {spec.source.section}".strip()
        ref = RuleRef(spec.id, spec.version, source, spec.source.url)
        compiled.append(Rule(spec, when, unless, ref))
    return tuple(compiled)


def _check_substitutes(
    where: str, service: str, catalogue: Catalogue, concepts: set[str], facts: set[str]
) -> None:
    """A service's ``substitute_if`` conditions must be concepts, or (``fact:``) facts derived
    before the proposing rule, else the swap could never happen; substitutes must exist."""
    definition = catalogue.services[service]  # _check_effect has refused an unknown one
    for condition, target in definition.substitute_if.items():
        if condition.startswith(FACT_PREFIX):
            if condition.removeprefix(FACT_PREFIX) not in facts:
                raise KnowledgeError(
                    f"{where}: service {service}: substitute_if {condition!r} is not derived "
                    "by an earlier rule"
                )
        elif condition not in concepts:
            raise KnowledgeError(f"{where}: service {service}: substitute_if {condition!r}")
        if target not in catalogue.services:
            raise KnowledgeError(f"{where}: service {service}: unknown substitute {target}")


@dataclass(frozen=True, slots=True)
class _Names:
    concepts: set[str]
    parameters: set[str]
    profiles: set[str]


def _check_names(where: str, used: list[str], known: set[str]) -> None:
    missing = sorted(set(used) - known)
    if missing:
        raise KnowledgeError(f"rules.toml: {where}: unknown name(s) {', '.join(missing)}")


def _check_refs(where: str, expr: Expr, names: _Names, facts: set[str], slots: set[str]) -> None:
    refs = expr.references()
    _check_names(where + " (concepts)", refs.concepts, names.concepts)
    _check_names(where + " (parameters)", refs.parameters, names.parameters)
    _check_names(where + " (profiles)", refs.profiles, names.profiles)
    undefined = sorted(set(refs.facts) - facts)
    if undefined:
        raise KnowledgeError(f"{where}: reads fact(s) no earlier rule derives: {undefined}")
    unset = sorted(set(refs.slots) - slots)
    if unset:
        raise KnowledgeError(f"{where}: reads slot(s) no earlier rule sets: {unset}")


def _check_effect(where: str, effect: Effect, catalogue: Catalogue) -> None:
    _check_names(
        where + " (services)", [p.service for p in effect.propose], set(catalogue.services)
    )
    _check_names(where + " (activities)", effect.activity, set(catalogue.activities))
    if effect.red_flag is not None:
        _check_names(where + " (red flags)", [effect.red_flag], set(catalogue.red_flags))
    if effect.note is not None:
        _check_names(where + " (notes)", [effect.note], set(catalogue.notes))
    if effect.issue is not None:
        _check_names(where + " (issues)", [effect.issue], set(catalogue.medication_issues))
