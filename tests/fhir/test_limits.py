"""The nesting-depth walk that runs on every body before validation."""

from __future__ import annotations

from typing import Any

import pytest

from service.fhir.errors import InputError
from service.fhir.limits import check_depth, json_depth


def nest(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels alternating objects and arrays around ``leaf``."""
    value = leaf
    for level in range(depth):
        value = {"x": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("s", 0), (None, 0), ({}, 1), ([], 1), ([[]], 2), ({"a": [{"b": 1}]}, 3)],
)
def test_depth_of_small_values(value: Any, depth: int) -> None:
    assert json_depth(value) == depth


def test_the_deepest_branch_counts_not_the_first() -> None:
    value = {"a": 1, "b": [2, 3], "c": {"d": [nest(10)]}, "e": {}}
    assert json_depth(value) == 13


def test_stops_one_level_past_the_limit() -> None:
    assert json_depth(nest(500), stop_at=64) == 65
    assert json_depth(nest(500)) == 500  # no recursion: any depth is measured


@pytest.mark.parametrize(("depth", "refused"), [(63, False), (64, False), (65, True)])
def test_check_depth_on_both_sides_of_the_limit(depth: int, refused: bool) -> None:
    value = {"resourceType": "Bundle", "entry": [nest(depth - 2)]}
    assert json_depth(value) == depth
    if refused:
        with pytest.raises(InputError) as caught:
            check_depth(value, 64)
        assert caught.value.kind == "too-costly"
        assert "deeper than the limit of 64" in str(caught.value)
    else:
        check_depth(value, 64)
