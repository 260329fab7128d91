"""The documents in docs/ keep step with the code where a test can tell.

- Every rule source "PainPath RULES §n" and every "REFERENCE §n" / "clinical references §n" a
  knowledge file, module or output cites is a section of docs/clinical-rules.md or
  docs/clinical-references.md.
- docs/interface.md names every route the app serves, every OperationOutcome detail code, every
  service code, red flag, medication-safety finding and guideline profile; docs/clinical-rules.md
  names every parameter.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from service.api.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KNOWLEDGE = ROOT / "service" / "knowledge"
_RULE_CITE = re.compile(r"RULES §(\d+)")
_REFERENCE_CITE = re.compile(r"(?:REFERENCE|clinical references) §(\d+(?:\.\d+)?)")
_PARAMETER = re.compile(r"\{[^}]*\}")


def _sources() -> Iterator[tuple[Path, str]]:
    """Knowledge files and Python modules: where citations are written."""
    for pattern in ("service/**/*.py", "service/knowledge/*.toml", "tools/**/*.py"):
        for path in sorted(ROOT.glob(pattern)):
            yield path, path.read_text()


def _headings(doc: str, level: str) -> set[str]:
    return set(re.findall(rf"^{level} §(\d+(?:\.\d+)?)\b", (DOCS / doc).read_text(), re.M))


def _cited(pattern: re.Pattern[str], sources: Iterable[tuple[Path, str]]) -> dict[str, str]:
    """Section -> the first file citing it."""
    cited: dict[str, str] = {}
    for path, text in sources:
        for section in pattern.findall(text):
            cited.setdefault(section, str(path.relative_to(ROOT)))
    return cited


def test_every_cited_rule_section_exists() -> None:
    cited = _cited(_RULE_CITE, _sources())
    assert {"0", "2", "4"} <= set(cited), "the citation scan found too little"
    missing = {s: f for s, f in cited.items() if s not in _headings("clinical-rules.md", "##")}
    assert missing == {}, f"cited but not a section of docs/clinical-rules.md: {missing}"


def test_every_cited_reference_section_exists() -> None:
    cited = _cited(_REFERENCE_CITE, _sources())
    assert {"1.1", "3.1"} <= set(cited), "the citation scan found too little"
    sections = _headings("clinical-references.md", "##") | _headings(
        "clinical-references.md", "###"
    )
    missing = {s: f for s, f in cited.items() if s not in sections}
    assert missing == {}, f"cited but not a section of docs/clinical-references.md: {missing}"


def test_a_missing_section_is_caught() -> None:
    planted = [(ROOT / "x.toml", 'source = "RULES §42"; "REFERENCE §9.9"')]
    assert _cited(_RULE_CITE, planted) == {"42": "x.toml"}
    assert "42" not in _headings("clinical-rules.md", "##")
    assert _cited(_REFERENCE_CITE, planted) == {"9.9": "x.toml"}


def _routes(routes: Iterable[Any]) -> Iterator[str]:
    """Every path of an app's routes, through included routers."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            yield path
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)


def _in_doc(path: str, doc: str) -> bool:
    """The route's path (parameter names ignored) appears in the document as a whole path."""
    pattern = re.escape(_PARAMETER.sub("{}", path)) + r"(?![\w/{}.$-])"
    return re.search(pattern, _PARAMETER.sub("{}", doc)) is not None


def test_the_interface_lists_every_route() -> None:
    paths = set(_routes(create_app(Settings()).routes)) - {"/docs/oauth2-redirect"}
    assert {"/fhir/$triage", "/cds-services/{service_id}", "/ui/summary"} <= paths
    doc = (DOCS / "interface.md").read_text()
    assert sorted(p for p in paths if not _in_doc(p, doc)) == []


def test_a_route_missing_from_the_interface_is_caught() -> None:
    doc = "| `POST /fhir/$triage` | ... |\n| `GET /fhir/{type}/{id}` | ... |"
    assert _in_doc("/fhir/{resource_type}/{resource_id}", doc)
    assert not _in_doc("/fhir/{resource_type}", doc)
    assert not _in_doc("/fhir/Patient/{patient_id}/$triage", doc)


def _backticked(doc: str) -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", (DOCS / doc).read_text()))


def test_the_interface_lists_every_code_it_promises() -> None:
    outcome = json.loads((ROOT / "fhir_profiles/codesystems/CodeSystem-outcome.json").read_text())
    catalogue = tomllib.loads((KNOWLEDGE / "catalogue.toml").read_text())
    codes = {c["code"] for c in outcome["concept"]} | set(catalogue["services"])
    codes |= set(catalogue["profiles"]) | set(catalogue["red_flags"])
    codes |= set(catalogue.get("medication_issues", {}))
    assert sorted(codes - _backticked("interface.md")) == []


def test_the_clinical_rules_name_every_parameter() -> None:
    parameters = tomllib.loads((KNOWLEDGE / "parameters.toml").read_text())["parameters"]
    assert len(parameters) > 20
    assert sorted(set(parameters) - _backticked("clinical-rules.md")) == []
