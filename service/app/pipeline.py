"""The one evaluation path: every entry point evaluates through :class:`Pipeline`.

    body bytes ─ read (content, limits, R4 validation, relevance selection) ─┐
    Bundle dict (CDS prefetch, FHIR server pull, bulk NDJSON) ──────────────────┤
                                                                              ▼
    options (resolve_options) ─▶ digest (canonical JSON + options) ─▶ ingest ─▶ score
    questionnaires ─▶ domain.engine.evaluate ─▶ fhir.result (emit) ─▶ TriageResult

HTTP ``$triage``, ``/ui/summary``, the CDS Hooks services, ``Patient/{id}/$triage``,
subscription re-evaluation, the CLI, bulk and Spark, the conformance-package examples, the golden
tests and the benchmarks all call :meth:`Pipeline.run_body` (bytes) or :meth:`Pipeline.evaluate`
(a Bundle already read); the ``*_async`` forms run the same work on a worker thread so the event
loop keeps serving. The digest is computed here and only here, from the canonical JSON of the
Bundle (sorted keys, no whitespace) and the options, so the same input gives the same ids
whichever door it came through.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, TypeVar

import anyio.to_thread
import orjson

from service.app.options import RawOptions, TriageOptions, resolve_options
from service.domain.assessment import Assessment
from service.domain.engine import evaluate
from service.domain.errors import NoPatientError
from service.domain.facts import Matcher
from service.domain.forms import form_findings
from service.domain.instruments import score
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.model import PatientRecord
from service.fhir.apply import ApplyRequest, read_apply_request
from service.fhir.canonicals import canonical
from service.fhir.emit import Emitter
from service.fhir.errors import InputError, Problem
from service.fhir.ingest import Ingested, ingest
from service.fhir.limits import DEFAULT_MAX_DEPTH
from service.fhir.relevance import Relevance
from service.fhir.request import TriageRequest, read_triage_request, validation_mode
from service.fhir.result import (
    carried_inputs,
    general_outcome,
    incomplete_search,
    no_patient_reason,
    patient_entries,
    result_bundle,
)  # fmt: skip
from service.fhir.types import Json
from service.settings import Settings

__all__ = [
    "Limits", "Pipeline", "TriageResult", "canonical_bytes", "digest_of", "strict_validation",
]  # fmt: skip

log = logging.getLogger("painpath.triage")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request body may cost (docs/interface.md "Errors": 413)."""

    max_bytes: int = 64 * 1024 * 1024
    max_entries: int = 50_000
    max_depth: int = DEFAULT_MAX_DEPTH


@dataclass(frozen=True, slots=True)
class TriageResult:
    """The result Bundle and the assessments behind it (for summaries and metrics)."""

    bundle: Json
    assessments: tuple[Assessment, ...]
    found: Ingested  # the input as read (records, entry paths) for views of this run
    options: TriageOptions
    input_bundle: Json  # the Bundle that was evaluated (views and CDS cards read it)


def canonical_bytes(resource: Json) -> bytes:
    """Stable JSON bytes (sorted keys, no whitespace) of a resource, for digests.

    orjson serialises at most 254 levels; an entry nested deeper (only one the rules never read
    can get here, ``validate_bundle``) is refused as too costly, never a 5xx."""
    try:
        return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise InputError.one("too-costly", f"The input cannot be serialised: {exc}") from exc


def digest_of(bundle: Json, options: TriageOptions) -> str:
    """The input digest that seeds every generated id: the Bundle's canonical JSON and the
    options that change the answer."""
    return _pending_digest(bundle, options)()


def _seed(data: bytes, options: TriageOptions) -> str:
    seed = hashlib.sha256(data)
    seed.update(f"|{options.as_of.isoformat()}|{options.profile}".encode())
    return seed.hexdigest()


# Bodies from here up are hashed on a helper thread while ingest reads the Bundle: SHA-256 lets
# go of the interpreter lock, so on a whole record (about 8 ms for 11 MB) the two overlap.
# Below it, the hand-off costs more than the hash.
_BACKGROUND_HASH_BYTES = 4 << 20
_hasher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="painpath-digest")


def _pending_digest(bundle: Json, options: TriageOptions) -> Callable[[], str]:
    """:func:`digest_of`, hashed on a helper thread for large inputs: call the result for the
    digest. The canonical JSON is serialised here (that step holds the lock anyway)."""
    data = canonical_bytes(bundle)
    if len(data) < _BACKGROUND_HASH_BYTES:
        digest = _seed(data, options)
        return lambda: digest
    return _hasher.submit(_seed, data, options).result


class _Reading(TypedDict):
    max_bytes: int
    max_entries: int
    max_depth: int
    relevant: Relevance


class Pipeline:
    """The knowledge base with its compiled matcher, shared across requests and threads."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        default_profile: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.kb = kb
        self.matcher = Matcher(kb)
        self.relevance = Relevance(self.matcher)
        self.default_profile = default_profile
        self.limits = limits or Limits()
        # the recording forms (RULES §9) by canonical: their answers are findings
        self.forms = {canonical("Questionnaire", f): f for f in kb.catalogue.questionnaires}

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        """The evaluation path with the knowledge files loaded and the configured limits."""
        limits = Limits(settings.max_body_bytes, settings.max_entries, settings.max_json_depth)
        return cls(load_knowledge(), default_profile=settings.default_profile, limits=limits)

    # --- reading -----------------------------------------------------------------------------
    def _reading(self) -> _Reading:
        """What every body is read within: the configured limits and the relevance test."""
        limits = self.limits
        return _Reading(
            max_bytes=limits.max_bytes, max_entries=limits.max_entries,
            max_depth=limits.max_depth, relevant=self.relevance,
        )  # fmt: skip

    def options(self, *layers: RawOptions, now: datetime) -> TriageOptions:
        """The request's options (later layers win), defaulted from the configuration."""
        return resolve_options(self.kb, *layers, now=now, default_profile=self.default_profile)

    def read(self, body: bytes, *, strict: bool = False) -> TriageRequest:
        """Parse and validate a ``$triage`` body within the configured limits (``strict``:
        refuse invalid entries of types PainPath does not read, instead of warning)."""
        return read_triage_request(body, **self._reading(), strict=strict)

    def read_apply(self, body: bytes, *, strict: bool = False) -> ApplyRequest:
        """Parse and validate a ``PlanDefinition/$apply`` body (its ``data`` Bundle is checked
        like a ``$triage`` body; ``strict`` as :meth:`read`) within the configured limits."""
        return read_apply_request(body, **self._reading(), strict=strict)

    async def read_apply_async(self, body: bytes, *, strict: bool = False) -> ApplyRequest:
        """:meth:`read_apply` on a worker thread."""
        return await _offload(lambda: self.read_apply(body, strict=strict))

    def read_populate(self, body: bytes, *, strict: bool = False) -> ApplyRequest:
        """Parse and validate a ``Questionnaire/$populate`` body (SDC names: ``questionnaire``
        or ``canonical`` at type level; ``local``, ``context``, ``content`` accepted, unused)."""
        return read_apply_request(
            body,
            **self._reading(),
            strict=strict,
            targets=("questionnaire", "canonical"),
            ignored_names=("local", "context", "content", "identifier"),
        )

    async def read_populate_async(self, body: bytes, *, strict: bool = False) -> ApplyRequest:
        """:meth:`read_populate` on a worker thread."""
        return await _offload(lambda: self.read_populate(body, strict=strict))

    # --- evaluating --------------------------------------------------------------------------
    def run_body(
        self, body: bytes, *layers: RawOptions, now: datetime, ignored: Sequence[Problem] = ()
    ) -> TriageResult:
        """Read a body (Bundle or Parameters) and evaluate it; the body's options win.
        ``ignored``: request parameters that were not used, reported as :meth:`evaluate` does."""
        request = self.read(body, strict=strict_validation(*layers))
        options = self.options(*layers, request.options, now=now)
        return self.evaluate(
            request.bundle,
            options,
            selected=request.selected,
            warnings=request.warnings,
            ignored=ignored,
        )

    async def run_body_async(
        self, body: bytes, *layers: RawOptions, now: datetime, ignored: Sequence[Problem] = ()
    ) -> TriageResult:
        """:meth:`run_body` on a worker thread."""
        return await _offload(lambda: self.run_body(body, *layers, now=now, ignored=ignored))

    async def evaluate_async(
        self,
        bundle: Json,
        options: TriageOptions,
        *,
        selected: frozenset[int] | None = None,
        warnings: Sequence[Problem] = (),
        ignored: Sequence[Problem] = (),
    ) -> TriageResult:
        """:meth:`evaluate` on a worker thread."""
        return await _offload(
            lambda: self.evaluate(
                bundle, options, selected=selected, warnings=warnings, ignored=ignored
            )
        )

    def evaluate(
        self,
        bundle: Json,
        options: TriageOptions,
        *,
        selected: frozenset[int] | None = None,
        warnings: Sequence[Problem] = (),
        ignored: Sequence[Problem] = (),
    ) -> TriageResult:
        """Evaluate every patient in a validated Bundle (``selected``: the entries validation
        found relevant, ``TriageRequest.selected``; otherwise relevance is asked here;
        ``warnings``: the invalid entries validation let through, ``BundleCheck.warnings``;
        ``ignored``: request parameters not used, ``QueryOptions.ignored``; both reported in the
        result's general OperationOutcome)."""
        pending = _pending_digest(bundle, options)
        found = ingest(bundle, self.relevance, selected=selected)
        digest = pending()
        if not found.records:
            raise NoPatientError(no_patient_reason(found.skipped))
        emitter = Emitter(self.kb, digest, found.ref_types)
        entries: list[Json] = []
        assessments = []
        for record in found.records:
            assessment, problems = self._assess(record, found, options)
            assessments.append(assessment)
            entries += patient_entries(emitter, assessment, found, problems)
        general = general_outcome(
            found, digest, options.as_of, warnings, ignored, incomplete=incomplete_search(bundle)
        )
        if general:
            entries.append(general)
        log.info(
            "triage evaluated patients=%d entries_in=%d entries_out=%d",
            len(found.records), len(bundle.get("entry", ())), len(entries),
        )  # fmt: skip
        result = result_bundle(
            entries,
            digest,
            as_of=options.as_of,
            profile=options.profile,
            transaction=options.return_mode == "transaction",
            carried=carried_inputs(entries, found, digest),
        )
        return TriageResult(result, tuple(assessments), found, options, bundle)

    def _assess(
        self, record: PatientRecord, found: Ingested, options: TriageOptions
    ) -> tuple[Assessment, list[str]]:
        screened, answers = form_findings(
            self.kb, found.answers.get(record.subject, []), self.forms
        )
        items, problems = score(self.kb.scoring, answers, systems=self.kb.valuesets.systems)
        items = screened + items
        if items:
            record = PatientRecord(record.subject, record.demographics, record.items + tuple(items))
        assessment = evaluate(
            self.kb, record, as_of=options.as_of, profile=options.profile, matcher=self.matcher
        )
        return assessment, problems


def strict_validation(*layers: RawOptions) -> bool:
    """Whether the request options ask ``validation=strict`` (400 for an unknown mode)."""
    mode = "lenient"
    for layer in layers:
        value = layer.get("validation")
        if value is not None:  # sent empty, it is a bad value like any other
            mode = validation_mode(value)
    return mode == "strict"


async def _offload(work: Callable[[], T]) -> T:
    """Run CPU-bound evaluation on a worker thread (validation and the engine hold no lock)."""
    return await anyio.to_thread.run_sync(work)
