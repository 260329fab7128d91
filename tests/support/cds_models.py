"""CDS Hooks JSON checked against the specification's own logical models.

The models are HL7's: the CDS Hooks 2.0 logical models (StructureDefinitions of kind ``logical``:
``CDSHooksServices`` for discovery, ``CDSHooksRequest`` with the hook contexts, and
``CDSHooksResponse`` for cards) and their code systems, published in the FHIR Tools IG
(``hl7.fhir.uv.tools``) for the FHIR validator to check CDS Hooks traffic. They are vendored
unchanged in ``tests/cds/spec_models/`` (CC0; source and commit in its README.md).

This module applies them the way the FHIR validator reads them, to plain JSON:

- every property of an object must be an element of the model (or, under ``extension``, a named
  extension: ``extension-style = named-elements``); ``json-name`` renames a property
  (``access_token``), ``json-property-key`` makes an element a JSON object keyed by ``key``
  (prefetch), ``json-nullable`` allows ``null``, ``contentReference`` reuses another element's
  children, ``type-specifier`` picks the hook's context model (its ``condition`` is FHIRPath,
  evaluated with ``%resource`` bound to the request);
- cardinality (``min``/``max``: ``*`` is a JSON array), primitive types by the FHIR R4 regexes
  (``uuid`` with its ``implied-string-prefix`` ``urn:uuid:``), ``fixedCode``;
- ``required`` bindings against the code systems of the vendored ValueSets;
- FHIR resources (``Resource``, ``Bundle``) against the official FHIR R4 JSON Schema with the
  ``jsonschema`` library, and ``Coding`` against the schema's Coding definition;
- every invariant (``cds-r-1``, ``cds-resp-1``…, ``ord-1``) evaluated by ``fhirpathpy``, a FHIRPath
  engine nobody here wrote, on each instance of its element (a primitive is seen as
  ``{"value": …}``, as FHIRPath sees FHIR primitives). Only ``true`` passes.

``Checker.check(document, "CDSHooksResponse")`` returns the problems (empty when the document
conforms) and counts every check it made in ``checks``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirpathpy import evaluate
from jsonschema import Draft6Validator

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "cds" / "spec_models"
R4_SCHEMA = ROOT / "service" / "fhir" / "schema" / "fhir.r4.schema.json"
TOOLS = "http://hl7.org/fhir/tools/StructureDefinition/"
EXT = "http://hl7.org/fhir/tools/StructureDefinition/"
FHIR_NS = {"f": "http://hl7.org/fhir"}

# FHIR R4 primitive regexes (datatypes.html); ``markdown`` and ``string`` are any non-empty string
_PRIMITIVES: dict[str, re.Pattern[str]] = {
    "code": re.compile(r"[^\s]+( [^\s]+)*"),
    "id": re.compile(r"[A-Za-z0-9\-\.]{1,64}"),
    "uri": re.compile(r"\S*"),
    "url": re.compile(r"\S*"),
    "uuid": re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "string": re.compile(r"[\s\S]+"),
    "markdown": re.compile(r"[\s\S]+"),
}

# Errata: where a vendored model contradicts the CDS Hooks 2.0 text itself, the text wins, and
# only by the exact difference named here. The Tools IG's CDSIndicator code system lists
# info | warning | error, while CDS Hooks 2.0 ("Card attributes": indicator) defines
# info | warning | critical. tests/cds/test_cds_spec_models.py fails once the models agree.
ERRATA: dict[str, set[str]] = {"http://hl7.org/fhir/tools/ValueSet/CDSIndicator": {"critical"}}
# ord-1 (order-select ``selections``) is written with the regex ``[\\d\\w-.]``, valid only in
# Java's dialect (a range starting at a class escape reads ``-`` as a literal); Python's ``re``
# (fhirpathpy) and JavaScript's unicode mode (fhirpath.js) both refuse to compile it. It is
# evaluated with the ``-`` escaped, which is what Java reads; the original is tried first.
REGEX_ERRATA: dict[str, tuple[str, str]] = {"ord-1": ("\\\\w-.]", "\\\\w\\\\-.]")}


def _ext(element: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in element.get("extension", []) if e.get("url") == EXT + name]


@dataclass
class Model:
    """One logical model: its elements by path, its base model's url."""

    url: str
    name: str
    base: str | None
    elements: dict[str, dict[str, Any]]

    def children(self, path: str) -> list[dict[str, Any]]:
        depth = path.count(".") + 1
        return [
            e
            for p, e in self.elements.items()
            if p.startswith(path + ".") and p.count(".") == depth
        ]


@dataclass
class _Walk:
    """One document's walk: the document (``%resource``) and the problems found."""

    root: Any
    problems: list[str] = field(default_factory=list)


@dataclass
class Checker:
    """The vendored models, code systems and the R4 schema; ``checks`` counts what was checked."""

    models: dict[str, Model] = field(default_factory=dict)
    codes: dict[str, set[str]] = field(default_factory=dict)
    checks: Counter[str] = field(default_factory=Counter)
    _schema: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path = MODELS) -> Checker:
        checker = cls()
        for path in sorted(folder.glob("StructureDefinition-*.json")):
            sd = json.loads(path.read_text(encoding="utf-8"))
            base = sd.get("baseDefinition")
            elements = {e["path"]: e for e in sd["differential"]["element"]}
            checker.models[sd["url"]] = Model(sd["url"], sd["name"], base, elements)
        systems: dict[str, set[str]] = {}
        for path in sorted(folder.glob("CodeSystem-*.xml")):
            root = ET.parse(path).getroot()  # noqa: S314 (vendored HL7 files)
            url = root.find("f:url", FHIR_NS)
            codes = {c.get("value", "") for c in root.findall("f:concept/f:code", FHIR_NS)}
            systems[url.get("value", "") if url is not None else ""] = codes
        for path in sorted(folder.glob("ValueSet-*.xml")):
            root = ET.parse(path).getroot()  # noqa: S314
            url = root.find("f:url", FHIR_NS)
            included = root.findall("f:compose/f:include/f:system", FHIR_NS)
            members = set().union(*(systems[s.get("value", "")] for s in included))
            checker.codes[url.get("value", "") if url is not None else ""] = members
        checker._schema = json.loads(R4_SCHEMA.read_text(encoding="utf-8"))
        return checker

    # -- entry point -----------------------------------------------------------------------------

    def check(self, document: Any, model_name: str) -> list[str]:
        model = self.models[TOOLS + model_name]
        walk = _Walk(document)
        self._object(walk, document, model, model.name, model.name)
        return walk.problems

    # -- walking ---------------------------------------------------------------------------------

    def _object(self, walk: _Walk, value: Any, model: Model, path: str, where: str) -> None:
        """``value`` is an instance of the element at ``path`` in ``model`` (a complex one)."""
        self.checks["object"] += 1
        if not isinstance(value, dict):
            walk.problems.append(f"{where}: an object is expected")
            return
        elements = {self._json_name(e): e for e in self._elements(model, path)}
        for key in value:
            self.checks["known-property"] += 1
            if key not in elements:
                walk.problems.append(f"{where}.{key}: not an element of {model.name}")
        for name, element in elements.items():
            if name not in value:
                self.checks["cardinality"] += 1
                if element.get("min", 0) > 0:
                    walk.problems.append(
                        f"{where}.{name}: required (min {element['min']}) but absent"
                    )
            else:
                self._element(walk, value[name], element, model, f"{where}.{name}")
        self._invariants(walk, model.elements.get(path, {}), value, where)

    def _elements(self, model: Model, path: str) -> list[dict[str, Any]]:
        """The element's children, with those its type inherits (``extension``, from
        CDSHooksElement: the model's base, or the type of an inline element)."""
        found = model.children(path)
        types = {t["code"] for t in model.elements.get(path, {}).get("type", [])}
        base = model.base if path == model.name else next(iter(types & set(self.models)), None)
        if base is not None and base in self.models:
            inherited = self.models[base]
            found += self._elements(inherited, inherited.name)
        return found

    @staticmethod
    def _json_name(element: dict[str, Any]) -> str:
        renamed = _ext(element, "json-name")
        return str(renamed[0]["valueString"]) if renamed else element["path"].rsplit(".", 1)[1]

    def _element(
        self, walk: _Walk, value: Any, element: dict[str, Any], model: Model, here: str
    ) -> None:
        """A present property: keyed object, array (max *) or single value."""
        self.checks["cardinality"] += 1
        keyed = _ext(element, "json-property-key")
        if keyed:
            if not isinstance(value, dict):
                walk.problems.append(f"{here}: an object keyed by {keyed[0]['valueCode']} expected")
                return
            for key, item in value.items():
                self._object(walk, {"key": key, "value": item}, model, element["path"],
                             f"{here}[{key!r}]")  # fmt: skip
            return
        many = element.get("max") == "*"
        if many != isinstance(value, list):
            shape = "an array (max *)" if many else "a single value (max 1)"
            walk.problems.append(f"{here}: {shape} is expected")
            return
        items = value if many else [value]
        if len(items) < element.get("min", 0):
            walk.problems.append(f"{here}: at least {element['min']} item(s) required")
        for index, item in enumerate(items):
            self._value(walk, item, element, model, f"{here}[{index}]" if many else here)

    def _value(
        self, walk: _Walk, item: Any, element: dict[str, Any], model: Model, where: str
    ) -> None:
        if item is None:
            self.checks["nullable"] += 1
            if not _ext(element, "json-nullable"):
                walk.problems.append(f"{where}: null is not allowed")
            return
        reference = element.get("contentReference")
        if reference:
            self._object(walk, item, model, reference.lstrip("#"), where)
            self._invariants(walk, element, item, where)
            return
        code = self._type(element, walk.root)
        if code == TOOLS + "CDSHooksExtensions":
            self.checks["extension"] += 1
            if not isinstance(item, dict):
                walk.problems.append(f"{where}: extension must be an object of named extensions")
            return
        if code.startswith(TOOLS) or code == "Base":
            target = self.models.get(code)
            if target is not None and target.name != "CDSHooksElement":
                self._object(walk, item, target, target.name, where)
            else:  # an inline (backbone) element of this model
                self._object(walk, item, model, element["path"], where)
            return
        self._leaf(walk, item, element, code, where)
        self._invariants(walk, element, item, where)

    def _type(self, element: dict[str, Any], root: Any) -> str:
        for specifier in _ext(element, "type-specifier"):
            parts = {p["url"]: p for p in specifier["extension"]}
            condition = parts["condition"]["valueString"]
            self.checks["type-specifier"] += 1
            if evaluate({}, condition, {"resource": root}) == [True]:
                return str(parts["type"]["valueCode"])
        return str(element["type"][0]["code"])

    def _leaf(self, walk: _Walk, item: Any, element: dict[str, Any], code: str, where: str) -> None:
        self.checks[f"type:{code}"] += 1
        if code in {"Resource", "Bundle", "Coding"}:
            walk.problems.extend(self._fhir(item, code, where))
            return
        if code == "boolean":
            ok = isinstance(item, bool)
        elif code == "integer":
            ok = isinstance(item, int) and not isinstance(item, bool)
        else:
            prefix = _ext(element, "implied-string-prefix")
            text = (
                (prefix[0]["valueString"] if prefix else "") + item
                if isinstance(item, str)
                else None
            )
            pattern = _PRIMITIVES.get(code)
            ok = text is not None and pattern is not None and pattern.fullmatch(text) is not None
        if not ok:
            walk.problems.append(f"{where}: {item!r} is not a valid {code}")
            return
        walk.problems.extend(self._fixed_and_bound(item, element, where))

    def _fixed_and_bound(self, item: Any, element: dict[str, Any], where: str) -> list[str]:
        found = []
        fixed = element.get("fixedCode")
        if fixed is not None:
            self.checks["fixed"] += 1
            if item != fixed:
                found.append(f"{where}: must be {fixed!r}")
        binding = element.get("binding", {})
        if binding.get("strength") == "required":
            self.checks["binding"] += 1
            allowed = self.codes[binding["valueSet"]] | ERRATA.get(binding["valueSet"], set())
            if item not in allowed:
                found.append(f"{where}: {item!r} not in {binding['valueSet']} {sorted(allowed)}")
        return found

    def _fhir(self, item: Any, code: str, where: str) -> list[str]:
        definition = item.get("resourceType") if isinstance(item, dict) else None
        if code == "Coding":
            definition = "Coding"
        elif code == "Bundle" and definition != "Bundle":
            return [f"{where}: a Bundle is expected"]
        if not isinstance(definition, str) or definition not in self._schema["definitions"]:
            return [f"{where}: not a FHIR R4 {code}"]
        validator = Draft6Validator(
            {"$ref": f"#/definitions/{definition}", "definitions": self._schema["definitions"]}
        )
        return [f"{where}: R4 schema: {e.message[:160]}" for e in validator.iter_errors(item)]

    def _invariants(self, walk: _Walk, element: dict[str, Any], item: Any, where: str) -> None:
        for constraint in element.get("constraint", []):
            self.checks[f"invariant:{constraint['key']}"] += 1
            node = item if isinstance(item, dict) else {"value": item}
            expression = constraint["expression"]
            try:
                result = evaluate(node, expression, {"resource": walk.root})
            except re.error:
                old, new = REGEX_ERRATA[constraint["key"]]
                self.checks[f"regex-erratum:{constraint['key']}"] += 1
                result = evaluate(node, expression.replace(old, new), {"resource": walk.root})
            if result != [True]:
                walk.problems.append(
                    f"{where}: {constraint['key']} ({constraint['human']}) -> {result}"
                )
