"""What the R4B models check beyond the R4 JSON Schema, as one fast yes/no walk.

Every entry PainPath reads is held to the R4 JSON Schema (jsonschema-rs) and then to the R4B
models of fhir.resources, which state a few rules the schema cannot:

- a choice element ``value[x]`` is sent once (one-of-many), and once at least where required;
- a required primitive is present, as a value or as its ``_name`` extension (``status``);
- a required complex element is present, and no list of complex values holds a null;
- a primitive's ``_name`` sibling carries an ``id`` or extensions (``"_status": {}`` is refused);
- a value Python must read is one it can: a calendar date (no 30 February), a 32-bit integer
  (the schema types integers as any number; the models refuse 2.5, 0 for a positiveInt),
  base64 that decodes.

Building the models costs about 0.1 ms per resource, a third of a whole record's request once
parsing is paid. :func:`conforms` walks a resource once, with the shapes read from the models' own
field metadata (names, aliases, types, ``one_of_many``, required fields), and answers True only
when every one of those rules holds and every value is one it can vouch for. Anything else - a
rule broken, an element the shapes do not know, a value it does not check itself (``url``,
``uuid``, a leap second, sub-microsecond digits, base64 it cannot decode) - answers False, and
the models run as before, with their verdict and messages (``validate._model_problems``). So True is
trusted and False costs only what every resource cost before; ``tests/fhir/test_model_shapes.py``
holds the walk to the models' verdict on every golden input and on mutations of each rule.
"""

from __future__ import annotations

import base64
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

__all__ = ["conforms"]

# primitive metadata whose constraints the R4 JSON Schema already states as strictly or more so
_SCHEMA_ENOUGH = frozenset(
    {"String", "Code", "Id", "Uri", "Canonical", "Markdown", "Oid", "Xhtml", "Decimal"}
)
_EXTENSION_SIBLING = "FHIRPrimitiveExtension"
_NOT_ELEMENTS = frozenset({"fhir_comments", "resource_type"})  # model fields, not JSON keys
# a time part the walk vouches for: no leap second, at most microseconds (else the models decide)
_SAFE_TIME = re.compile(r"\d\d:\d\d:[0-5]\d(\.\d{1,6})?")


@dataclass(frozen=True, slots=True)
class _Element:
    """One JSON key of a type: a complex child (``complex``: its type name, or ``Resource``),
    or a primitive (``kind``: the fhir_core metadata class name, or ``bool``)."""

    complex: str | None
    kind: str | None
    is_list: bool


@dataclass(frozen=True, slots=True)
class _Shape:
    elements: dict[str, _Element]
    required: tuple[str, ...]  # complex elements that must be present
    required_primitives: tuple[tuple[str, str], ...]  # (name, "_name")
    choices: tuple[tuple[tuple[str, ...], bool], ...]  # (JSON keys, one required)


def conforms(resource: dict[str, Any]) -> bool:
    """True when the R4B models would accept ``resource`` (already valid per the R4 JSON Schema):
    trusted; False means "let the models decide", never "invalid"."""
    rtype = resource.get("resourceType")
    shape = _shape(rtype) if isinstance(rtype, str) else None
    return shape is not None and _fits(resource, shape, is_resource=True)


def _fits(node: dict[str, Any], shape: _Shape, *, is_resource: bool = False) -> bool:
    return _rules_hold(node, shape) and _elements_fit(node, shape, is_resource)


def _rules_hold(node: dict[str, Any], shape: _Shape) -> bool:
    """The required elements are present and every choice is made at most (or exactly) once."""
    for key in shape.required:
        if node.get(key) is None:
            return False
    for name, sibling in shape.required_primitives:
        if node.get(name) is None and not _extended(node.get(sibling)):
            return False
    for keys, required in shape.choices:
        present = sum(1 for key in keys if node.get(key) is not None)
        if present > 1 or (required and present == 0):
            return False
    return True


def _elements_fit(node: dict[str, Any], shape: _Shape, is_resource: bool) -> bool:
    """Every key is an element of the type, with a value the walk vouches for."""
    elements = shape.elements
    for key, value in node.items():
        element = elements.get(key)
        if element is None:
            if is_resource and key == "resourceType":
                continue
            return False
        if value is None or not _value_fits(value, element):
            return False
    return True


def _value_fits(value: Any, element: _Element) -> bool:
    if element.is_list:
        if type(value) is not list:
            return False
        # a primitive's ``_name`` list keeps nulls: they line extensions up with the values
        nulls = element.complex == _EXTENSION_SIBLING
        return all(
            (item is None and nulls) or (item is not None and _one_fits(item, element))
            for item in value
        )
    return _one_fits(value, element)


def _one_fits(value: Any, element: _Element) -> bool:
    if element.complex is not None:
        if type(value) is not dict:
            return False
        name = element.complex
        if (
            name == _EXTENSION_SIBLING
            and value.get("id") is None
            and value.get("extension") is None
        ):
            return False  # the one model with a rule of its own: a ``_name`` says something
        if name == "Resource":  # contained, Bundle.entry.resource: by its own type
            return conforms(value)
        shape = _shape(name)
        return shape is not None and _fits(value, shape)
    return _primitive_fits(value, element.kind)


def _primitive_fits(value: Any, kind: str | None) -> bool:
    if kind in _SCHEMA_ENOUGH:
        return True
    check = _CHECKS.get(kind or "")
    return check is not None and check(value)  # url, uuid, anything new: the models decide


def _integer(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and low <= value <= high


def _time_fits(value: Any) -> bool:
    return type(value) is str and _SAFE_TIME.fullmatch(value) is not None


def _decodes(value: Any) -> bool:
    """True when ``value`` is base64 the models decode (pydantic's Base64Bytes)."""
    if type(value) is not str:
        return False
    try:
        base64.b64decode(value)
    except ValueError:  # bad padding; a non-ASCII text: the models decide
        return False
    return True


def _date_fits(text: Any) -> bool:
    """A date, dateTime or instant (the schema's pattern already held) Python reads as the
    models do: a real calendar day, a time it can represent."""
    if type(text) is not str:
        return False
    if len(text) < 10:  # a year or a year-month: nothing more to check
        return True
    try:
        date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    if len(text) == 10:
        return True
    end = len(text) - 1 if text.endswith("Z") else len(text) - 6
    return _SAFE_TIME.fullmatch(text[11:end]) is not None


# the values the walk checks itself, by fhir_core metadata name (integers: the models' ranges)
_CHECKS: dict[str, Callable[[Any], bool]] = {
    "bool": lambda value: type(value) is bool,
    "Integer": _integer(-(2**31), 2**31 - 1),
    "UnsignedInt": _integer(0, 2**31 - 1),
    "PositiveInt": _integer(1, 2**31 - 1),
    "Integer64": _integer(-(2**63) + 1, 2**63 - 1),
    "Date": _date_fits,
    "DateTime": _date_fits,
    "Instant": _date_fits,
    "Time": _time_fits,
    "EncodedBytes": _decodes,  # base64Binary
}


def _extended(sibling: Any) -> bool:
    """A primitive's ``_name`` that stands in for a missing value: one with extensions."""
    return type(sibling) is dict and bool(sibling.get("extension"))


@cache
def _shape(type_name: str) -> _Shape | None:
    """The shape of one R4B model (a resource, data type or backbone element); None when the
    models have no such type (the models then decide, and refuse)."""
    try:
        model = get_fhir_model_class(type_name)
    except ValueError:  # "... is not a valid FHIR Model"
        return None
    elements: dict[str, _Element] = {}
    required: list[str] = []
    for name, field in model.model_fields.items():
        # a type the walk cannot read is left out: a key of it sends the resource to the models
        element = None if name in _NOT_ELEMENTS else _element(field.annotation)
        if element is not None:
            key = field.alias or name
            elements[key] = element
            if field.is_required():
                required.append(key)
    aliases = {name: (field.alias or name) for name, field in model.model_fields.items()}
    primitives = tuple(
        (aliases[name], aliases[sibling] if sibling else "")
        for name, sibling in model.get_required_fields(None)  # type: ignore[arg-type]
    )
    choices = tuple(
        (
            tuple(aliases[f] for f in fields),
            model.model_fields[fields[0]].json_schema_extra["one_of_many_required"] is True,  # type: ignore[index]
        )
        for fields in model.get_one_of_many_fields(None).values()  # type: ignore[arg-type]
    )
    return _Shape(elements, tuple(required), primitives, choices)


def _element(annotation: Any) -> _Element | None:
    """Read a field annotation: ``X | None``, ``List[X] | None``, ``Annotated[str, Code()]``,
    a model type (``abc.CodeableConceptType``)."""
    inner = _without_none(annotation)
    is_list = typing.get_origin(inner) is list
    if is_list:
        args = typing.get_args(inner)
        inner = _without_none(args[0]) if len(args) == 1 else None
    if inner is None:
        return None
    if inner is bool:
        return _Element(None, "bool", is_list)
    if typing.get_origin(inner) is typing.Annotated:
        metadata = typing.get_args(inner)[1:]
        kind = type(metadata[0]).__name__ if metadata else None
        return _Element(None, kind, is_list)
    klass = getattr(inner, "_model_klass", None)
    if klass is None:
        return None
    name = klass if isinstance(klass, str) else klass.__name__
    name = name.rsplit(".", 1)[-1]
    return _Element("Resource" if name == "Resource" else name, None, is_list)


def _without_none(annotation: Any) -> Any:
    """``X`` of ``X | None`` / ``Optional[X]``; None for a union of several types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return annotation
