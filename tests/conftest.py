"""Shared fixtures: the knowledge base, the pipeline, an API client and result-Bundle readers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir_testkit import is_produced

from service.api.app import create_app
from service.app.pipeline import Pipeline
from service.domain.knowledge import KnowledgeBase, default_knowledge
from service.fhir.systems import cs
from service.settings import Settings

Json = dict[str, Any]
AS_OF = "2026-11-24T10:00:00+01:00"  # a fixed clock at a non-UTC offset


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The packaged knowledge base."""
    return default_knowledge()


@pytest.fixture(scope="session")
def pipeline(kb: KnowledgeBase) -> Pipeline:
    """The pipeline over the packaged knowledge base."""
    return Pipeline(kb)


@pytest.fixture
def settings() -> Settings:
    """Default settings, independent of the environment."""
    return Settings(_env_file=None)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An API client over a fresh app (lifespan run)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _codes(concept: Json | None, system: str) -> list[str]:
    return [c["code"] for c in (concept or {}).get("coding", []) if c.get("system") == system]


def _summary(bundle: Json, subject: str | None = None) -> Json:
    resources = [e["resource"] for e in bundle.get("entry", []) if is_produced(e)]
    if subject is not None:
        resources = [
            r
            for r in resources
            if (r.get("subject") or r.get("patient") or {}).get("reference") == subject
            or r["resourceType"] in {"Provenance", "OperationOutcome"}
        ]
    out: Json = {
        "redFlags": [], "medicationIssues": [], "services": {}, "medications": [], "issues": [],
        "stages": {}, "activities": [],
    }  # fmt: skip
    for r in resources:
        rtype = r["resourceType"]
        if rtype == "Observation" and _codes(r["code"], cs("painpath")) == ["pain-type"]:
            out["painType"] = _codes(r["valueCodeableConcept"], cs("pain-type"))[0]
            out["certainty"] = _codes(
                r["component"][0]["valueCodeableConcept"], cs("neuropathic-certainty")
            )[0]
        elif rtype == "Observation":
            for comp in r["component"]:
                out["stages"][_codes(comp["code"], cs("treatment-stage"))[0]] = _codes(
                    comp["valueCodeableConcept"], cs("eligibility")
                )[0]
        elif rtype == "CarePlan":
            out["recommendedStage"] = _codes(r["category"][0], cs("treatment-stage"))[0]
            out["medications"] = sorted(
                _codes(a["detail"]["code"], cs("care-activity"))[0]
                for a in r.get("activity", [])
                if "detail" in a
                and a["detail"]["kind"] == "MedicationRequest"
                and _codes(a["detail"]["code"], cs("care-activity"))
                and not a["detail"].get("doNotPerform")
            )
            out["activities"] = sorted(
                code
                for a in r.get("activity", [])
                if "detail" in a
                for code in _codes(a["detail"]["code"], cs("care-activity"))
            )
            out["held"] = sorted(
                a["detail"]["instantiatesCanonical"][0].rsplit("/service-", 1)[1]
                for a in r.get("activity", [])
                if a.get("detail", {}).get("status") == "on-hold"
                and "/service-" in a["detail"]["instantiatesCanonical"][0]
            )
        elif rtype == "ServiceRequest":
            out["services"][_codes(r["category"][0], cs("service"))[0]] = r["priority"]
        elif rtype == "DetectedIssue":
            out["redFlags"] += _codes(r["code"], cs("red-flag"))
            out["medicationIssues"] += _codes(r["code"], cs("medication-issue"))
        elif rtype == "OperationOutcome":
            out["issues"] += [
                c["code"] for i in r["issue"] for c in i.get("details", {}).get("coding", [])
            ]
    out["redFlags"].sort()
    out["medicationIssues"].sort()
    return out


@pytest.fixture(scope="session")
def summarize() -> Callable[..., Json]:
    """Read a result Bundle back into the golden-case vocabulary."""
    return _summary
