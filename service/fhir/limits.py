"""Cheap structural limits checked right after the JSON parse, before any FHIR validation.

orjson itself refuses nesting deeper than 1024 (and NaN/Infinity, lone surrogates, invalid
UTF-8), so the parse is bounded; the schema validator and the models below it recurse, so the
depth is limited far lower here. FHIR resources are rarely deeper than about 20 levels.

Measured on a 2 MB, 3,600-entry Bundle (``tests/fuzz``): orjson parse 10 ms, a stack
walk over (node, depth) pairs 22 ms, the level-by-level walk below 5 ms (a byte pre-scan that
strips strings with a regex took 52 ms), against seconds of schema validation, so the walk runs
on every body. It stops at the first level past the limit.
"""

from __future__ import annotations

from typing import Any

from service.fhir.errors import InputError

__all__ = ["DEFAULT_MAX_DEPTH", "check_depth", "json_depth"]

DEFAULT_MAX_DEPTH = 64


def json_depth(value: Any, *, stop_at: int | None = None) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, ``{}`` is 1); stops early past ``stop_at``.

    Level by level (no recursion, so any limit is safe), testing exact ``dict``/``list`` types as
    orjson produces them: about 4x faster than a stack of (node, depth) pairs.
    """
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if stop_at is not None and depth > stop_at:
            return depth
        below: list[Any] = []
        push = below.append
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    push(child)
        level = below
    return depth


def check_depth(value: Any, max_depth: int) -> None:
    """413 ``too-costly`` when the JSON nests deeper than ``max_depth``."""
    if json_depth(value, stop_at=max_depth) > max_depth:
        raise InputError.one(
            "too-costly", f"JSON nests deeper than the limit of {max_depth} levels"
        )
