"""Example instances: what ``$triage`` answers for the sample inputs in ``samples/``.

They are produced by the running code (the same path as the API: validate, ingest, evaluate,
emit) on a fixed evaluation date, so they are real outputs and change when the outputs change.
OperationOutcome entries are left out (they are messages, not resources a server stores).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from service.app.pipeline import Pipeline
from service.domain.knowledge import KnowledgeBase
from tools.conformance_package.common import Json

__all__ = ["EXAMPLE_AS_OF", "EXAMPLE_INPUTS", "examples"]

EXAMPLE_INPUTS = ("cauda-equina", "persistent-sciatica", "opioid-review")
EXAMPLE_AS_OF = "2026-11-24T10:00:00+01:00"


def examples(kb: KnowledgeBase, samples: Path) -> list[tuple[str, Json]]:
    """``(sample name, resource)`` for every stored resource of each sample's result Bundle."""
    pipeline = Pipeline(kb)
    found = []
    for name in EXAMPLE_INPUTS:
        body = (samples / f"{name}.json").read_bytes()
        now = datetime(2026, 11, 24, tzinfo=UTC)
        bundle = pipeline.run_body(body, {"asOf": EXAMPLE_AS_OF}, now=now).bundle
        found += [
            (name, entry["resource"])
            for entry in bundle["entry"]
            if entry["resource"]["resourceType"] != "OperationOutcome"
        ]
    return found
