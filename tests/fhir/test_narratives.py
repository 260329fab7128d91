"""CarePlan and DetectedIssue narratives of every golden output: valid R4 narrative XHTML
(https://hl7.org/fhir/R4/narrative.html#xhtml: an XHTML-namespace ``div`` root, only the basic
formatting elements, no script/style/form/frame elements, no event attributes, well-formed, some
text) and the scannable layout of issue 9: a header with pain type and certainty, red flags first
in bold, the stage ladder with the recommended stage marked, each proposal with a reason line,
and missing-data items for an insufficient-data stage."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from service.app.pipeline import Pipeline
from service.domain.knowledge import KnowledgeBase, default_knowledge

Json = dict[str, Any]
CASES = sorted((Path(__file__).parents[1] / "golden" / "cases").glob("*.json"))
PP = "https://painpath.dev/fhir/CodeSystem"
X = "{http://www.w3.org/1999/xhtml}"
# R4 narrative: basic HTML formatting elements only
ALLOWED = {
    *[
        "a",
        "abbr",
        "acronym",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
    ],
    *[
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
    ],
    *["td", "tfoot", "th", "thead", "tr", "tt", "ul", "var"],
}
ATTRIBUTES = {"class", "style", "id", "href", "name", "title", "lang", "colspan", "rowspan", "alt"}
ATTRIBUTES |= {"src", "{http://www.w3.org/XML/1998/namespace}lang"}


@cache
def _kb() -> KnowledgeBase:
    return default_knowledge()


@cache
def _result(path: Path) -> Json:
    case = json.loads(path.read_text(encoding="utf-8"))
    pipeline = Pipeline(_kb())
    options = pipeline.options(
        {"asOf": case["asOf"], "profile": case["profile"]}, now=datetime.now(UTC)
    )
    bundle: Json = pipeline.evaluate(case["bundle"], options).bundle
    return bundle


def _resources(bundle: Json, rtype: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def _code(concept: Json, system: str) -> str:
    return next(str(c["code"]) for c in concept["coding"] if c["system"] == f"{PP}/{system}")


def _display(system: str, code: str) -> str:
    return _kb().catalogue.displays[system][code]


def _text(node: ET.Element) -> str:
    return "".join(node.itertext())


def _parse(resource: Json) -> ET.Element:
    """Check the narrative against the R4 XHTML rules and return its root div."""
    text = resource["text"]
    assert text["status"] == "generated"
    root = ET.fromstring(text["div"])  # noqa: S314 - our own output, parsed to prove well-formed
    assert root.tag == f"{X}div"
    for node in root.iter():
        assert node.tag.startswith(X), node.tag
        assert node.tag.removeprefix(X) in ALLOWED, node.tag
        for attribute in node.attrib:
            assert not attribute.lower().startswith("on"), attribute
            assert attribute in ATTRIBUTES, attribute
    assert _text(root).strip(), "txt-2: the narrative has non-whitespace content"
    return root


def _sections(root: ET.Element) -> dict[str, list[str]]:
    """Each ``<p><b>Title</b></p>`` heading with the items of the list that follows it."""
    out: dict[str, list[str]] = {}
    children = list(root)
    for i, node in enumerate(children):
        if node.tag == f"{X}p" and len(node) == 1 and _text(node) == _text(node[0]):
            nxt = children[i + 1] if i + 1 < len(children) else None
            if nxt is not None and nxt.tag == f"{X}ul":
                out[_text(node)] = [_text(li) for li in nxt]
    return out


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_careplan_and_issue_narratives(path: Path) -> None:
    bundle = _result(path)
    plans = _resources(bundle, "CarePlan")
    issues = _resources(bundle, "DetectedIssue")
    for issue in issues:
        root = _parse(issue)
        codes = {c["system"].rsplit("/", 1)[-1] for c in issue["code"]["coding"]}
        catalogue = _kb().catalogue
        if "medication-issue" in codes:
            title = catalogue.medication_issues[_code(issue["code"], "medication-issue")].title
        else:
            title = catalogue.red_flags[_code(issue["code"], "red-flag")].title
        assert _text(root[0]) == title
        assert root[0][0].tag == f"{X}b"
        assert _text(root[1]).strip()
    for plan in plans:
        _check_plan(bundle, plan)


def _check_plan(bundle: Json, plan: Json) -> None:
    root = _parse(plan)
    pain = _resources(bundle, "Observation")[0]
    pain_type = _code(pain["valueCodeableConcept"], "pain-type")
    certainty = _code(pain["component"][0]["valueCodeableConcept"], "neuropathic-certainty")
    # a stat/urgent red flag holds the routine plan: the flags are then the headline and the
    # pain type follows them (RULES §8); otherwise the pain type leads and the flags follow
    held = any(a.get("detail", {}).get("status") == "on-hold" for a in plan.get("activity", []))
    header = _text(root[2] if held else root[0])
    assert header.startswith(f"Pain type: {_display('pain-type', pain_type)}")
    assert _display("neuropathic-certainty", certainty) in header
    sections = _sections(root)
    headings = list(sections)
    flags = [
        _code(i["code"], "red-flag")
        for i in _resources(bundle, "DetectedIssue")
        if any(c["system"] == f"{PP}/red-flag" for c in i["code"]["coding"])
    ]
    if flags:
        # red flags come first, each in bold: the very first line when they hold the plan
        assert headings[0] == "Red flags"
        assert len(sections["Red flags"]) == len(flags)
        assert (_text(root[0]) == "Red flags") is held
        bold = {_text(b) for b in root[1 if held else 2].iter(f"{X}b")}
        assert {_kb().catalogue.red_flags[f].title for f in flags} <= bold
    else:
        assert not held
        assert _text(root[1]) == "No red flag found."
    ladder = sections["Treatment stages"]
    recommended = _code(plan["category"][0], "treatment-stage")
    marked = [line for line in ladder if "(recommended)" in line]
    if recommended == "urgent-referral":
        assert ladder[0] == "Urgent referral (red flag)"
        assert marked == []
    else:
        assert len(marked) == 1
        assert marked[0].startswith(_display("treatment-stage", recommended))
    stages = {
        _code(c["code"], "treatment-stage"): _code(c["valueCodeableConcept"], "eligibility")
        for c in _resources(bundle, "Observation")[1]["component"]
    }
    for stage, value in stages.items():
        line = next(x for x in ladder if x.startswith(_display("treatment-stage", stage) + ":"))
        assert _display("eligibility", value) in line
        assert " - " in line  # the reason
    proposals = sections["Proposals"]
    for request in _resources(bundle, "ServiceRequest"):
        title = _kb().catalogue.services[_code(request["category"][0], "service")].title
        line = next(x for x in proposals if x.startswith(title))
        assert line.split("): ", 1)[1].strip(), f"{title} has a reason line"
    insufficient = [s for s, v in stages.items() if v == "insufficient-data"]
    if insufficient:
        missing = sections["Missing data"]
        for stage in insufficient:
            assert any(x.startswith(_display("treatment-stage", stage) + ":") for x in missing)
    assert headings.index("Treatment stages") < headings.index("Proposals")


def test_every_kind_of_narrative_is_covered() -> None:
    bundles = [_result(p) for p in CASES]
    plans = [p for b in bundles for p in _resources(b, "CarePlan")]
    assert len(plans) > 80
    assert any(_resources(b, "DetectedIssue") for b in bundles)
    assert any("Missing data" in p["text"]["div"] for p in plans)
    assert any("urgent-referral" in json.dumps(p["category"]) for p in plans)
