"""The input digest that seeds every id: the canonical JSON (sorted keys) and the options, hashed
with SHA-256, whether the hash runs inline (small inputs) or on a helper thread while ingest reads
the Bundle (whole records)."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime

import pytest
from fhir_testkit import CAUDA, CLAIM, Json, case_bundle

from service.app import pipeline as pipeline_module
from service.app.pipeline import Pipeline, canonical_bytes, digest_of
from service.fhir.emit import make_id

AS_OF = "2026-11-24T10:00:00+01:00"


def _padded(claims: int) -> Json:
    """The cauda-equina Bundle with ``claims`` distinct Claims (entries no rule reads)."""
    bundle = case_bundle(CAUDA)
    for n in range(claims):
        claim = {**copy.deepcopy(CLAIM), "id": f"claim-{n}"}
        bundle["entry"].append({"fullUrl": f"Claim/claim-{n}", "resource": claim})
    return bundle


def _reordered(node: object) -> object:
    """The same JSON with every object's keys in reverse order."""
    if isinstance(node, dict):
        return {k: _reordered(node[k]) for k in reversed(list(node))}
    if isinstance(node, list):
        return [_reordered(v) for v in node]
    return node


@pytest.mark.parametrize("background_from", [0, 1 << 40])  # always on the helper thread, never
def test_digest_is_sha256_of_the_canonical_json_on_both_sides_of_the_hand_off(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, background_from: int
) -> None:
    monkeypatch.setattr(pipeline_module, "_BACKGROUND_HASH_BYTES", background_from)
    options = pipeline.options({"asOf": AS_OF}, now=datetime.now(UTC))
    suffix = f"|{options.as_of.isoformat()}|{options.profile}".encode()
    for bundle in (case_bundle(CAUDA), _padded(400)):
        expected = hashlib.sha256(canonical_bytes(bundle) + suffix).hexdigest()
        assert digest_of(bundle, options) == expected
        assert digest_of(_reordered(bundle), options) == expected  # type: ignore[arg-type]


def test_whole_record_ids_come_from_the_digest(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a body hashed in the background the ids are still those of the input digest, and
    the same input in another key order gives the same Bundle."""
    bundle = _padded(400)
    monkeypatch.setattr(pipeline_module, "_BACKGROUND_HASH_BYTES", len(canonical_bytes(bundle)))
    options = pipeline.options({"asOf": AS_OF}, now=datetime.now(UTC))
    result = pipeline.evaluate(bundle, options).bundle
    digest = digest_of(bundle, options)
    assert result["id"] == make_id(digest, options.as_of.isoformat(), "bundle")
    again = pipeline.evaluate(_reordered(bundle), options).bundle  # type: ignore[arg-type]
    assert again == result
