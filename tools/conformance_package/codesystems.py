"""The PainPath CodeSystems, read from the knowledge files (https://hl7.org/fhir/R4/codesystem.html).

Sources, one per CodeSystem:

- ``painpath``: every ``painpath`` code of valuesets.toml (docs/interface.md input codes and
  PainPath additions) and the observation codes of catalogue.toml ``[displays.painpath]``;
- ``pain-type``, ``neuropathic-certainty``, ``treatment-stage``, ``eligibility``: catalogue
  ``[displays.*]``; ``service``, ``red-flag``, ``care-activity``: catalogue services, red flags
  and activities; ``painpath-meta``: the guideline profiles (the result Bundle's ``meta.tag``);
- ``outcome``: OperationOutcome ``details`` codes: catalogue notes plus the codes the FHIR
  adapter itself reports (``OUTCOME_CODES``; a test checks every ``detail=`` in service/fhir);
- ``instrument-answers``: the choice codes of instruments.toml, with the Questionnaires' displays;
- ``cds-override-reason``: catalogue ``[displays.cds-override-reason]``, the ``overrideReasons``
  of the CDS Hooks cards (service.cds_hooks.cards).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.fhir.canonicals import value_set
from service.fhir.systems import cs
from tools.conformance_package.common import Json, Meta

__all__ = ["OUTCOME_CODES", "code_systems", "local_codes"]

# OperationOutcome detail codes the FHIR adapter (service/fhir/result.py) adds beside the notes.
OUTCOME_CODES = {
    "skipped-entry": (
        "Input entry skipped",
        "An input entry was not used; diagnostics says why, expression where.",
    ),
    "value-out-of-range": (
        "Value out of range",
        "A score or measurement outside its valid range was ignored.",
    ),
    "value-unit-not-understood": (
        "Value unit not understood",
        "A measurement whose unit PainPath cannot convert to the unit its thresholds use was "
        "ignored (diagnostics names the unit sent and the unit expected).",
    ),
    "value-not-read": (
        "Value not read",
        "A recognised finding, score or measurement whose value says nothing (an unknown answer, "
        "a dataAbsentReason) or cannot be read (an answer PainPath does not know, a number for a "
        "yes/no finding, no number for a score) was not used; diagnostics says which.",
    ),
    "search-incomplete": (
        "Search result incomplete",
        "The input is one page of a larger search result (a next link, or a total above its "
        "matches): the patients were evaluated on the entries sent only.",
    ),
    "questionnaire-not-scored": (
        "Questionnaire not scored",
        "A QuestionnaireResponse could not be scored (e.g. incomplete).",
    ),
    "entry-invalid": (
        "Input entry not valid FHIR R4",
        "An input entry of a resource type PainPath does not read is not valid R4; it was not "
        "used and the request was evaluated (validation=strict refuses it with a 400 instead). "
        "expression points at the problem.",
    ),
    "entries-not-used": (
        "Entries not used",
        "Entries of resource types the rules do not read, counted by type.",
    ),
    "what-would-change": (
        "What would change the decision",
        "A decision left open (insufficient data, or an undocumented red-flag screen) and the "
        "findings that would decide it, each with the code or Questionnaire that records it.",
    ),
    "code-not-recognised": (
        "Code not recognised",
        "Entries of a type PainPath reads whose codes, displays and text no concept recognised, "
        "one issue per distinct code with the number of entries and their paths.",
    ),
}

Concept = tuple[str, str, str]  # code, display, definition ("" for none)


def _human(code: str) -> str:
    return code.replace("-", " ").capitalize()


def _concepts(items: Iterable[Concept]) -> list[Json]:
    found = []
    for code, display, definition in items:
        concept: Json = {"code": code, "display": display}
        if definition:
            concept["definition"] = definition
        found.append(concept)
    return found


def _answer_displays(questionnaires: list[Json]) -> dict[str, str]:
    displays: dict[str, str] = {}
    for questionnaire in questionnaires:
        for item in questionnaire.get("item", []):
            for option in item.get("answerOption", []):
                coding = option.get("valueCoding", {})
                if coding.get("system") == cs("instrument-answers"):
                    displays[coding["code"]] = coding.get("display", _human(coding["code"]))
    return displays


def _instrument_answers(meta: Meta, questionnaires: list[Json]) -> list[Concept]:
    displays = _answer_displays(questionnaires)
    found: dict[str, Concept] = {}
    instruments: dict[str, Any] = meta.kb.instruments["instruments"]
    for instrument in instruments.values():
        for item in instrument["items"]:
            for code, points in item.get("map", {}).items():
                definition = f"{instrument['title']}, item {item['linkId']}: scores {points}."
                found.setdefault(code, (code, displays.get(code, _human(code)), definition))
    return list(found.values())


def local_codes(meta: Meta) -> list[Concept]:
    """The painpath CodeSystem's concepts: valuesets.toml inputs, then the output codes."""
    inputs = [
        (entry.code, entry.display, concept.title)
        for concept in meta.kb.valuesets.concepts.values()
        for entry in concept.codes
        if entry.system == "painpath"
    ]
    outputs = [(code, text, "") for code, text in meta.kb.catalogue.displays["painpath"].items()]
    return inputs + outputs


def _sources(meta: Meta, questionnaires: list[Json]) -> dict[str, tuple[str, list[Concept]]]:
    cat = meta.kb.catalogue

    def displays(name: str) -> list[Concept]:
        return [(code, text, "") for code, text in cat.displays[name].items()]

    notes = [(code, _human(code), n.text) for code, n in cat.notes.items()]
    extra = [(code, text, definition) for code, (text, definition) in OUTCOME_CODES.items()]
    return {
        "painpath": ("PainPath observation codes", local_codes(meta)),
        "pain-type": ("Pain type", displays("pain-type")),
        "neuropathic-certainty": (
            "Neuropathic component certainty (NeuPSIG grade)",
            displays("neuropathic-certainty"),
        ),
        "treatment-stage": ("Treatment stage", displays("treatment-stage")),
        "eligibility": ("Treatment-stage eligibility", displays("eligibility")),
        "service": (
            "PainPath services (ServiceRequest category)",
            [(c, s.title, f"Proposed at the {s.stage} stage.") for c, s in cat.services.items()],
        ),
        "red-flag": (
            "Back pain red flags",
            [
                (c, f.title, f"DetectedIssue severity {f.severity}.")
                for c, f in cat.red_flags.items()
            ],
        ),
        "medication-issue": (
            "Medication-safety findings",
            [
                (c, f.title, f"DetectedIssue severity {f.severity}; ActCode {f.actcode}.")
                for c, f in cat.medication_issues.items()
            ],
        ),
        "care-activity": (
            "PainPath CarePlan activities",
            [(c, a.title, a.description) for c, a in cat.activities.items()],
        ),
        "outcome": ("PainPath OperationOutcome details", notes + extra),
        "painpath-meta": (
            "PainPath guideline profiles",
            [(c, p.title, p.guideline) for c, p in cat.profiles.items()],
        ),
        "instrument-answers": (
            "Instrument answer choices",
            _instrument_answers(meta, questionnaires),
        ),
        "cds-override-reason": (
            "CDS Hooks card override reasons",
            displays("cds-override-reason"),
        ),
    }


def code_systems(meta: Meta, questionnaires: list[Json]) -> list[Json]:
    """Every PainPath CodeSystem, complete, each with its all-codes ValueSet."""
    found = []
    for rid, (title, concepts) in _sources(meta, questionnaires).items():
        codes = [code for code, _, _ in concepts]
        if len(codes) != len(set(codes)):
            raise ValueError(f"CodeSystem {rid}: duplicate codes")
        resource = meta.header(
            "CodeSystem",
            rid,
            title=title,
            description=f"{title}; "
            f"canonical {cs(rid)}. Generated from the PainPath knowledge files.",
        )
        resource.update(
            caseSensitive=True,
            valueSet=value_set(rid),
            content="complete",
            count=len(concepts),
            concept=_concepts(concepts),
        )
        found.append(resource)
    return found
