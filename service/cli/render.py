"""Rich terminal output of the CLI: the coloured one-screen summary of ``painpath triage`` (the
same content as the web page, in the same order) and the decision-trace tree of ``painpath
explain``. Both read the JSON view of ``service.app.view``; colour is dropped when the output is
not a terminal (or ``NO_COLOR`` is set), so the text stays the same for scripts and tests.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from service.fhir.types import Json

__all__ = ["patient_line", "print_explanation", "print_summary", "print_tree"]

_ELIGIBILITY = {
    "eligible": "green", "not-eligible": "dim", "insufficient-data": "yellow", "deferred": "red",
}  # fmt: skip
_PRIORITY = {"stat": "bold red", "asap": "bold red", "urgent": "yellow", "routine": "green"}


def _line(*parts: tuple[str, str] | str) -> Text:
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(*part)
        else:
            text.append(part)
    return text


def patient_line(p: Json) -> str:
    """Who the patient is, as the record gives it: name, age, sex, birth date, identifiers."""
    who = p.get("person") or {}
    facts = [f"{who['age']} years" if who.get("age") is not None else None, who.get("sex")]
    facts.append(f"born {who['birthDate']}" if who.get("birthDate") else None)
    facts += [f"{i.get('label') or 'ID'} {i['value']}" for i in who.get("identifiers") or []]
    known = ", ".join(f for f in facts if f)
    name = who.get("name") or "Name not recorded"
    return f"{name} ({known})" if known else name


def _summary_lines(p: Json) -> list[Text]:
    head = _line(
        (patient_line(p), "bold"),
        f"  evaluated {p['asOf'][:10]}, profile {p['profile']}, rules {p['ruleset']}",
    )
    if not p["inScope"]:
        notes = " ".join(n["text"] for n in p["notes"])
        return [head, _line(("  Out of PainPath's scope: ", "yellow"), notes)]
    flags = p["redFlags"]
    stages: list[tuple[str, str] | str] = ["  Stages:    "]
    for i, stage in enumerate(p["stages"]):
        stages += ["; " if i else "", f"{stage['title']}: "]
        stages.append((stage["display"], _ELIGIBILITY.get(stage["code"], "")))
    recommended = p["recommended"]["display"]
    stages += ["  -> recommended: ", (recommended, "bold red" if flags else "bold cyan")]
    proposals: list[tuple[str, str] | str] = ["  Proposals: "]
    for i, item in enumerate(p["proposals"]):
        proposals += ["; " if i else "", f"{item['title']} ("]
        proposals += [(item["priority"], _PRIORITY.get(item["priority"], ""))]
        proposals += [", after urgent assessment)" if item.get("held") else ")"]
    if not p["proposals"]:
        proposals.append("none")
    pain = _line(
        "  Pain type: ",
        (p["painType"]["display"], "bold magenta"),
        f" (neuropathic component: {p['certainty']['display'].lower()})",
    )
    red = _line(
        "  Red flags: ",
        ("; ".join(f["title"] for f in flags), "bold white on red") if flags else ("none", "green"),
    )
    urgent = str(p.get("headline", "")).startswith("Red flag")  # the flag leads (RULES §8)
    lines = [
        head,
        *([red, pain] if urgent else [pain, red]),
        _line(*stages),
        _line(*proposals),
    ]
    lines += [_line(("  Note:      ", "yellow"), n["text"]) for n in p["notes"]]
    t = p["timeline"]
    if t["durationWeeks"] is not None:
        tried = ", ".join(x["title"] for x in t["treatments"]) or "no treatment documented"
        lines.append(_line(("  Duration:  ", "dim"), f"{t['durationWeeks']} weeks; tried: {tried}"))
    for flag in flags:
        lines.append(
            _line(("  ! ", "bold red"), (flag["title"], "bold red"), f": {flag['reasons'][0]}")
        )
    for stage in p["stages"]:
        if stage["code"] == "insufficient-data":
            lines.append(_line(("  Missing:   ", "yellow"), f"{stage['title']}: {stage['reason']}"))
    for entry in p.get("whatWouldChange") or []:
        lines.append(_line(("  To decide: ", "yellow"), entry["about"]))
        lines += [_line("    - ", prompt["text"]) for prompt in entry["prompts"]]
    return lines


def print_summary(console: Console, view: Json) -> None:
    """The one-screen summary of every patient (blank line between patients)."""
    for i, patient in enumerate(view["patients"]):
        if i:
            console.print()
        for line in _summary_lines(patient):
            console.print(line, soft_wrap=True)


def _rule(rule: Json) -> Text:
    return _line(
        ("rule ", "dim"), (rule["id"], "cyan"), f" v{rule['version']} ", (rule["source"], "dim")
    )


def _evidence(node: Tree, items: list[Json]) -> None:
    for e in items:
        value = f" = {e['value']}" if e["value"] not in (None, "true") else ""
        weak = " (from free text)" if e["fromText"] else ""
        node.add(
            _line(("evidence ", "dim"), f"{e['display']}{value}{weak} ", (f"[{e['ref']}]", "blue"))
        )


def _conclusion(parent: Tree, label: str, item: Json, style: str = "bold") -> Tree:
    node = parent.add(_line(f"{label}: ", (item["display"], style), f" - {item['reason']}"))
    node.add(_rule(item["rule"]))
    _evidence(node, item["evidence"])
    return node


def _flags(tree: Tree, p: Json) -> None:
    flags = tree.add(_line("Red flags", (f" ({len(p['redFlags'])})", "dim")))
    for flag in p["redFlags"]:
        reasons = " ".join(flag["reasons"])
        node = flags.add(_line((flag["title"], "bold red"), f" ({flag['severity']}): {reasons}"))
        for rule in flag["rules"]:
            node.add(_rule(rule))
        _evidence(node, flag["evidence"])


def _stages(tree: Tree, p: Json) -> None:
    stages = tree.add("Treatment stages")
    for stage in p["stages"]:
        mark = " (recommended)" if stage["recommended"] else ""
        node = _conclusion(stages, stage["title"] + mark, stage, _ELIGIBILITY[stage["code"]])
        for detail in stage["detail"]:
            _conclusion(node, detail["name"], detail, _ELIGIBILITY[detail["code"]])
    _conclusion(tree, "Recommended", p["recommended"], "bold cyan")


def _proposals(tree: Tree, p: Json) -> None:
    proposals = tree.add("Proposals")
    for item in p["proposals"]:
        priority = (item["priority"], _PRIORITY[item["priority"]])
        node = proposals.add(_line((item["title"], "bold"), " (", priority, ")"))
        for reason in item["reasons"]:
            node.add(reason)
        for rule in item["rules"]:
            node.add(_rule(rule))
        _evidence(node, item["evidence"])
    care = tree.add("Care activities")
    for item in p["activities"]:
        label = "Do not: " if item["doNotPerform"] else ""
        node = care.add(_line((label, "bold red"), item["title"], f" - {item['reasons'][0]}"))
        for rule in item["rules"]:
            node.add(_rule(rule))


def _firings(tree: Tree, p: Json, all_rules: bool) -> None:
    fired = sum(f["fired"] for f in p["firings"])
    rules = tree.add(f"Rules evaluated: {len(p['firings'])}, fired: {fired}")
    for firing in p["firings"]:
        if not (firing["fired"] or all_rules):
            continue
        status = ("fired ", "green") if firing["fired"] else ("not fired ", "dim")
        node = rules.add(
            _line(status, (firing["id"], "cyan"), f" v{firing['version']} ",
                  (firing["source"], "dim"))
        )  # fmt: skip
        _evidence(node, firing["evidence"])


def _tree(p: Json, all_rules: bool) -> Tree:
    meta = f"  evaluated {p['asOf']}, profile {p['profile']}, rules {p['ruleset']}"
    tree = Tree(_line((patient_line(p), "bold"), meta))
    if p["inScope"]:
        _conclusion(tree, "Pain type", p["painType"], "bold magenta")
        _conclusion(tree, "Neuropathic component", p["certainty"])
        _flags(tree, p)
        _stages(tree, p)
        _proposals(tree, p)
    if p["notes"]:  # no empty node
        notes = tree.add("Notes")
        for note in p["notes"]:
            notes.add(_line((f"{note['severity']}: ", "yellow"), note["text"]))
    if p.get("whatWouldChange"):
        change = tree.add("What would change the decision")
        for entry in p["whatWouldChange"]:
            node = change.add(entry["about"])
            for prompt in entry["prompts"]:
                node.add(prompt["text"])
    _firings(tree, p, all_rules)
    return tree


def print_tree(console: Console, view: Json, *, all_rules: bool = False) -> None:
    """The full decision trace of every patient as a tree."""
    for patient in view["patients"]:
        console.print(_tree(patient, all_rules))


def print_explanation(console: Console, view: Json) -> None:
    """The patient explanation of every patient, as plain text (the DocumentReference's)."""
    for i, patient in enumerate(view["patients"]):
        if i:
            console.print()
        explanation = patient.get("explanation")
        if explanation is None:
            console.print(f"{patient_line(patient)}: outside PainPath's scope, no explanation.")
            continue
        console.print(explanation["text"], end="", soft_wrap=True, markup=False, highlight=False)
