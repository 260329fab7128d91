"""``Patient/{id}/$triage`` against the configured FHIR server: pull, evaluate, write back.

    read Patient -> search the types the rules read (concurrently, every page) -> collection
    Bundle -> validate -> Engine.triage (the same code as POST $triage) -> [write back]

Write-back (``service.server.writeback``) is one transaction of PUTs at deterministic ids, after
finding the patient's live PainPath results: ``CarePlan?subject=``, ``ServiceRequest?subject=``,
the Provenances that target those CarePlans, and what those Provenances target (read by
``_id``). Runs for the same patient are serialised by a per-patient lock held across pull,
evaluation and write, so concurrent runs in one process write one after the other; across
processes the deterministic ids still prevent duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio

from service.app.options import TriageOptions
from service.app.pipeline import Pipeline, TriageResult
from service.fhir.errors import InputError, Problem
from service.fhir.types import Json
from service.fhir.validate import validate_bundle
from service.server.errors import UpstreamNotFoundError, UpstreamStatusError
from service.server.fhir_server import FhirServerClient
from service.server.pull import (
    PULL_TYPES,
    collection_bundle,
    not_the_patient,
    search_params,
    subject_patient_id,
)
from service.server.writeback import (
    WritePlan,
    build_writeback,
    is_painpath_result,
    live_results,
    targets_by_type,
)

__all__ = ["PatientRun", "PatientTriage"]

log = logging.getLogger("painpath.patient_triage")


@dataclass(slots=True)
class PatientRun:
    """One evaluation of a server patient, and what was written."""

    result: TriageResult
    write: WritePlan | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class PatientTriage:
    """Evaluates server patients; shared by the API route and the subscription receiver."""

    def __init__(
        self,
        client: FhirServerClient,
        pipeline: Pipeline,
        *,
        everything: bool = False,
    ) -> None:
        self.client = client
        self.pipeline = pipeline
        self.everything = everything
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, patient_id: str) -> asyncio.Lock:
        lock = self._locks.get(patient_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[patient_id] = lock
        return lock

    def default_options(self) -> TriageOptions:
        """Options for a run nobody asked for explicitly (a subscription): now, default profile."""
        return self.pipeline.options(now=datetime.now(UTC))

    # --- pull ------------------------------------------------------------------------------------
    async def pull(self, patient_id: str) -> Json:
        """The patient's collection Bundle, read from the server."""
        patient = await self.client.read("Patient", patient_id)
        wrong = not_the_patient(patient, patient_id)
        if wrong is not None:
            raise UpstreamStatusError(
                wrong, request=("GET", self.client.resource_url("Patient", patient_id))
            )
        if self.everything:
            found = await self.client.everything(patient_id, PULL_TYPES)
        else:
            found = []
            async with anyio.create_task_group() as group:
                for rtype in PULL_TYPES:
                    group.start_soon(self._search_into, found, rtype, patient_id)
        bundle = collection_bundle(self.client.base, patient, found)
        try:
            validate_bundle(bundle, max_entries=10**6, max_depth=self.pipeline.limits.max_depth)
        except InputError as exc:
            raise UpstreamStatusError(
                f"the server's data for Patient/{patient_id} is not valid FHIR R4: {exc}",
                request=("GET", self.client.resource_url("Patient", patient_id)),
            ) from exc
        return bundle

    async def _search_into(self, found: list[Json], rtype: str, patient_id: str) -> None:
        found += await self.client.search(rtype, search_params(rtype, patient_id))

    # --- evaluate (+ write) ---------------------------------------------------------------------
    async def run(
        self,
        patient_id: str,
        options: TriageOptions,
        *,
        writeback: bool,
        ignored: Sequence[Problem] = (),
    ) -> PatientRun:
        """Evaluate one patient from the server; with ``writeback`` also write the results.
        ``ignored``: request parameters not used, reported in the result (``Pipeline``)."""
        if not writeback:
            return await self._evaluate(patient_id, options, ignored)
        async with self._lock(patient_id):
            run = await self._evaluate(patient_id, options, ignored)
            started = time.perf_counter()
            run.write = await self._write(patient_id, run.result)
            run.timings_ms["write"] = (time.perf_counter() - started) * 1000
            return run

    async def _evaluate(
        self, patient_id: str, options: TriageOptions, ignored: Sequence[Problem] = ()
    ) -> PatientRun:
        started = time.perf_counter()
        bundle = await self.pull(patient_id)
        pulled = time.perf_counter()
        result = await self.pipeline.evaluate_async(bundle, options, ignored=ignored)
        timings = {
            "pull": (pulled - started) * 1000,
            "evaluate": (time.perf_counter() - pulled) * 1000,
        }
        log.info(
            "Patient/%s evaluated from the server: %d entries in, pull %.0f ms",
            patient_id, len(bundle["entry"]), timings["pull"],
        )  # fmt: skip
        return PatientRun(result, None, timings)

    async def _write(self, patient_id: str, result: TriageResult) -> WritePlan:
        subject = f"Patient/{patient_id}"
        assessment = next(a for a in result.assessments if a.subject == subject)
        existing = await self.existing_results(patient_id)
        plan = build_writeback(
            [e["resource"] for e in result.bundle["entry"]],
            subject=subject,
            ruleset_version=assessment.ruleset_version,
            base=self.client.base,
            existing=existing,
        )
        if plan.transaction["entry"]:
            response = await self.client.transaction(plan.transaction)
            _check_transaction(response, self.client.base)
        log.info(
            "Patient/%s written back: %d written, %d superseded",
            patient_id, len(plan.written), len(plan.superseded),
        )  # fmt: skip
        return plan

    async def existing_results(self, patient_id: str) -> list[Json]:
        """The live PainPath results the server holds for a patient."""
        subject = [("subject", f"Patient/{patient_id}")]
        plans = live_results(await self.client.search("CarePlan", subject))
        requests = live_results(await self.client.search("ServiceRequest", subject))
        found = {f"{r['resourceType']}/{r['id']}": r for r in plans + requests}
        if plans:
            targets = ",".join(f"CarePlan/{p['id']}" for p in plans)
            provenances = await self.client.search("Provenance", [("target", targets)])
            for rtype, ids in sorted(targets_by_type(provenances).items()):
                missing = sorted(i for i in ids if f"{rtype}/{i}" not in found)
                if missing:
                    for r in await self.client.search(rtype, [("_id", ",".join(missing))]):
                        found[f"{r['resourceType']}/{r['id']}"] = r
        return live_results(list(found.values()))

    async def patient_of(self, reference: str) -> str | None:
        """The patient a ``Type/id`` on the server is about; None when it is PainPath's own
        result or about no patient. Raises :class:`UpstreamNotFoundError` when it is gone."""
        rtype, _, rid = reference.partition("/")
        resource = await self.client.read(rtype, rid)
        return None if is_painpath_result(resource) else subject_patient_id(resource)

    async def changed_since(self, since: str, types: tuple[str, ...]) -> set[str]:
        """Patients whose resources of ``types`` changed at or after ``since`` (a ping)."""
        patients: set[str] = set()
        for rtype in types:
            for resource in await self.client.search(rtype, [("_lastUpdated", f"ge{since}")]):
                patient = None if is_painpath_result(resource) else subject_patient_id(resource)
                if patient:
                    patients.add(patient)
        return patients

    async def reevaluate(self, patient_id: str) -> PatientRun | None:
        """Re-evaluate and write back after a notification; a vanished patient is logged."""
        try:
            return await self.run(patient_id, self.default_options(), writeback=True)
        except UpstreamNotFoundError:
            log.warning("notification for Patient/%s: not on the server; skipped", patient_id)
            return None


def _check_transaction(response: Json, base: str) -> None:
    bad = [
        str((e.get("response") or {}).get("status"))
        for e in response.get("entry", ())
        if not str((e.get("response") or {}).get("status", "")).startswith("2")
    ]
    if response.get("type") != "transaction-response" or bad:
        raise UpstreamStatusError(
            f"the write-back transaction was not applied as sent ({', '.join(bad) or 'no'} "
            "failed entries)",
            request=("POST", base),
        )
