"""Questionnaire scoring: item answers of PainPath's instruments -> totals the rules can read.

``service/knowledge/instruments.toml`` describes each instrument as data: its Questionnaire
canonical, its items (``boolean``: yes scores a weight; ``number``: an integer taken as is within a
range; ``choice``: an answer code mapped to a score), how items aggregate (``sum``, or ``percent``
of the answered items' maximum, as the ODI does) and the outputs it yields (a valuesets.toml
concept and the code the total carries). :func:`check_instruments` validates that table once at
start-up with ``extra="forbid"`` models and raises :class:`KnowledgeError` on any defect.

:func:`score` turns each :class:`QuestionnaireAnswers` whose canonical (``|version`` ignored)
names an instrument into one :class:`Item` per output, exactly as if the integrator had sent the
total as an Observation, so the engine needs no special case. A response is scored completely or
not at all: an unknown questionnaire, an answer of the wrong type or out of range, an item answered
twice, or too many unanswered items yield problem strings instead. Problems name the response
reference, the linkId and the reason, never the answer itself (no PHI in messages). Answers to
linkIds an instrument does not score are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.domain.errors import KnowledgeError
from service.domain.model import Code, Item, Origin, QuestionnaireAnswers

__all__ = [
    "NO_CODES",
    "YES_CODES",
    "BooleanItem",
    "ChoiceItem",
    "Instrument",
    "InstrumentItem",
    "Instruments",
    "NumberItem",
    "Output",
    "check_instruments",
    "score",
]

Answer = str | float | bool
#: valueCoding codes read as a boolean answer (compared case-insensitively); LA33-6/LA32-8 = LOINC.
YES_CODES = frozenset({"yes", "agree", "la33-6"})
NO_CODES = frozenset({"no", "disagree", "la32-8"})


class _AnswerError(ValueError):
    """An answer that cannot be scored; the message is the reason, never the answer."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ItemBase(_Strict):
    link_id: str = Field(alias="linkId", min_length=1)
    text: str = Field(min_length=1)


class BooleanItem(_ItemBase):
    """A yes/no item: yes scores ``weight`` (may be negative), no scores 0."""

    scoring: Literal["boolean"]
    weight: float

    @property
    def maximum(self) -> float:
        """The highest score the item can give."""
        return max(self.weight, 0.0)

    def points(self, value: Answer) -> float:
        """The item score for an answer; raise _AnswerError if it is not a yes/no."""
        if isinstance(value, bool):
            return self.weight if value else 0.0
        if isinstance(value, str) and value.lower() in YES_CODES | NO_CODES:
            return self.weight if value.lower() in YES_CODES else 0.0
        raise _AnswerError("is not a boolean or a yes/no coding")


class NumberItem(_ItemBase):
    """An integer item scored as answered, within ``range`` (inclusive)."""

    scoring: Literal["number"]
    range: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> NumberItem:
        if self.range[0] > self.range[1]:
            raise ValueError("range must be [low, high]")
        return self

    @property
    def maximum(self) -> float:
        """The highest score the item can give."""
        return self.range[1]

    def points(self, value: Answer) -> float:
        """The item score for an answer; raise _AnswerError if not an integer in range."""
        if isinstance(value, bool | str) or not float(value).is_integer():
            raise _AnswerError("is not an integer")
        low, high = self.range
        if not low <= value <= high:
            raise _AnswerError(f"is outside {low:g}..{high:g}")
        return float(value)


class ChoiceItem(_ItemBase):
    """A coded item: the answer code is looked up in ``map``."""

    scoring: Literal["choice"]
    options: dict[str, float] = Field(alias="map", min_length=1)

    @property
    def maximum(self) -> float:
        """The highest score the item can give."""
        return max(self.options.values())

    def points(self, value: Answer) -> float:
        """The item score for an answer; raise _AnswerError if not one of the codes."""
        if not isinstance(value, str):
            raise _AnswerError("is not a coded answer")
        if value not in self.options:
            raise _AnswerError("has a code that is not an option of the item")
        return self.options[value]


InstrumentItem = Annotated[BooleanItem | NumberItem | ChoiceItem, Field(discriminator="scoring")]


class Output(_Strict):
    """A total an instrument yields: the concept, its code, and the items it aggregates."""

    concept: str
    system: str
    code: str
    items: Literal["all"] | list[str]


class Instrument(_Strict):
    """One scored instrument (a table of ``instruments.toml``)."""

    title: str
    questionnaire: str = Field(pattern=r"^https?://[^\s|]+$")
    source: str
    aggregate: Literal["sum", "percent"]
    max_missing: int = Field(default=0, ge=0)
    outputs: list[Output] = Field(min_length=1)
    items: list[InstrumentItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        links = [item.link_id for item in self.items]
        if len(set(links)) != len(links):
            raise ValueError("duplicate item linkId")
        if self.aggregate == "sum" and self.max_missing:
            raise ValueError("a sum needs every item: max_missing must be 0")
        if self.max_missing >= len(links):
            raise ValueError("max_missing must be below the number of items")
        if self.aggregate == "percent" and min(i.maximum for i in self.items) <= 0:
            raise ValueError("percent needs every item's maximum above 0")
        for output in self.outputs:
            _check_output(output, set(links), self.max_missing)
        return self

    def item(self, link_id: str) -> BooleanItem | NumberItem | ChoiceItem:
        """The item with this linkId."""
        return next(item for item in self.items if item.link_id == link_id)

    def links(self, output: Output) -> list[str]:
        """The linkIds an output aggregates."""
        return [i.link_id for i in self.items] if output.items == "all" else output.items


def _check_output(output: Output, links: set[str], max_missing: int) -> None:
    if output.items == "all":
        return
    unknown = sorted(set(output.items) - links)
    if unknown:
        raise ValueError(f"output {output.concept} names unknown linkId(s) {', '.join(unknown)}")
    if len(set(output.items)) <= max_missing:
        raise ValueError(f"output {output.concept} has no more items than max_missing")


class Instruments(_Strict):
    """``instruments.toml``."""

    version: str
    instruments: dict[str, Instrument] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_canonicals(self) -> Instruments:
        urls = [i.questionnaire for i in self.instruments.values()]
        if len(set(urls)) != len(urls):
            raise ValueError("two instruments share a questionnaire canonical")
        return self

    def find(self, canonical: str) -> Instrument | None:
        """The instrument whose Questionnaire this canonical names (``|version`` ignored)."""
        url = canonical.split("|", 1)[0].strip()
        return next((i for i in self.instruments.values() if i.questionnaire == url), None)


def check_instruments(
    raw: Mapping[str, Any], concepts: Set[str], *, systems: Mapping[str, str] | None = None
) -> Instruments:
    """Validate the raw instruments table; raise KnowledgeError naming the defect.

    Every output must name a known concept and, when ``systems`` is given, a known system alias.
    """
    try:
        instruments = Instruments.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise KnowledgeError(f"instruments.toml: {where}: {first['msg']}") from exc
    for name, instrument in instruments.instruments.items():
        for output in instrument.outputs:
            if output.concept not in concepts:
                raise KnowledgeError(f"instruments.toml: {name}: unknown concept {output.concept}")
            if systems is not None and output.system not in systems:
                raise KnowledgeError(f"instruments.toml: {name}: unknown system {output.system}")
    return instruments


def score(
    instruments: Instruments,
    responses: Sequence[QuestionnaireAnswers],
    *,
    systems: Mapping[str, str],
) -> tuple[list[Item], list[str]]:
    """Score every response; return the total Items and the problems found (no PHI)."""
    items: list[Item] = []
    problems: list[str] = []
    for response in responses:
        found, issues = _score_response(instruments, response, systems)
        items.extend(found)
        problems.extend(issues)
    return items, problems


def _score_response(
    instruments: Instruments, response: QuestionnaireAnswers, systems: Mapping[str, str]
) -> tuple[list[Item], list[str]]:
    instrument = instruments.find(response.questionnaire)
    if instrument is None:
        return [], [_unknown(response)]
    scores, problems = _item_scores(instrument, response)
    if problems:
        return [], [f"{response.ref}: {instrument.title} not scored: {p}" for p in problems]
    totals = [_total(instrument, out, scores, response, systems) for out in instrument.outputs]
    return totals, []


def _unknown(response: QuestionnaireAnswers) -> str:
    if not response.questionnaire:
        return f"{response.ref}: QuestionnaireResponse names no questionnaire; not scored"
    url = response.questionnaire[:200]
    return f"{response.ref}: questionnaire {url!r} is not a PainPath instrument; not scored"


def _item_scores(
    instrument: Instrument, response: QuestionnaireAnswers
) -> tuple[dict[str, float], list[str]]:
    grouped: dict[str, list[Answer]] = {}
    for link_id, value in response.answers:
        grouped.setdefault(link_id, []).append(value)
    scores: dict[str, float] = {}
    problems: list[str] = []
    for item in instrument.items:
        try:
            if item.link_id in grouped:
                scores[item.link_id] = _points(item, grouped[item.link_id])
        except _AnswerError as exc:
            problems.append(f"item {item.link_id} {exc}")
    missing = _missing(instrument, grouped)
    return scores, [*problems, *([missing] if missing else [])]


def _points(item: BooleanItem | NumberItem | ChoiceItem, values: list[Answer]) -> float:
    if len(values) > 1:
        raise _AnswerError("is answered more than once")
    return item.points(values[0])


def _missing(instrument: Instrument, grouped: Mapping[str, list[Answer]]) -> str | None:
    missing = [item.link_id for item in instrument.items if item.link_id not in grouped]
    if len(missing) <= instrument.max_missing:
        return None
    limit = instrument.max_missing
    allowed = f"at most {limit} may be" if limit else "none may be"
    return f"{len(missing)} item(s) unanswered ({', '.join(missing)}); {allowed} missing"


def _total(
    instrument: Instrument,
    output: Output,
    scores: Mapping[str, float],
    response: QuestionnaireAnswers,
    systems: Mapping[str, str],
) -> Item:
    if output.system not in systems:
        raise KnowledgeError(f"instruments.toml: unknown system alias {output.system}")
    answered = [link for link in instrument.links(output) if link in scores]
    value = sum(scores[link] for link in answered)
    if instrument.aggregate == "percent":
        ceiling = sum(instrument.item(link).maximum for link in answered)
        value = round(value / ceiling * 100, 1)
    return Item(
        ref=response.ref,
        origin=Origin.QUESTIONNAIRE,
        codes=(Code(systems[output.system], output.code),),
        value=float(value),
        when=response.when,
    )
