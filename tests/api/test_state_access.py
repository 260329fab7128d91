"""``request.app.state`` is read through the typed accessors of ``service.api.deps`` only.

The app's shared objects are set once (the lifespan, ``install_auth``, ``install_observability``,
``install_cds_hooks``) and read by routes and helpers through ``deps`` (``get_metrics(request)``,
``PipelineDep``), so a renamed or retyped state attribute is one edit that mypy checks.
"""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "service" / "api"
# the CDS Hooks feature keeps its own typed accessor next to the state it defines (CdsState)
OWN_ACCESSORS = {("cds_hooks.py", "get_cds_state")}


def _state_reads(path: Path) -> list[tuple[str, int]]:
    """(function, line) of each ``<x>.app.state`` read that is not an assignment target."""
    tree = ast.parse(path.read_text())
    reads: list[tuple[str, int]] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        targets = {
            id(node.value)
            for node in ast.walk(function)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
        }
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "state"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "app"
                and id(node) not in targets
            ):
                reads.append((function.name, node.lineno))
    return reads


def test_only_deps_reads_request_state() -> None:
    offenders = [
        f"{path.relative_to(API)}:{line} ({function})"
        for path in sorted(API.rglob("*.py"))
        if path.name != "deps.py"
        for function, line in _state_reads(path)
        if (path.name, function) not in OWN_ACCESSORS
    ]
    assert offenders == []


def test_the_check_sees_a_read(tmp_path: Path) -> None:
    """The other side: a helper reading the state directly is reported, a write is not."""
    source = tmp_path / "helper.py"
    source.write_text(
        "def helper(request):\n"
        "    request.app.state.seen = True\n"
        "    return request.app.state.metrics\n"
    )
    assert _state_reads(source) == [("helper", 3)]
