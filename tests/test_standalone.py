"""The repository stands alone: no tracked file points at documents outside it.

The interface, the clinical rules and the references live in ``docs/`` (interface.md,
clinical-rules.md, clinical-references.md). A file that names the specification folder kept
beside a working copy (as a relative or absolute path, or one of its sub-folders) or one of the
outside specification files by name would send a reader to something a clone does not have. The
folder's name is assembled below rather than written out, so this file does not name it either.
Exempt: this file, anything under ``node_modules``, binary files, and ``.ci/`` (the CI runner's
entry point describes the CI machine, which is not part of the project).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve().relative_to(ROOT)
_SPEC = "sha" + "red"  # the specification folder beside a working copy, never in a clone
_OUTSIDE = re.compile(
    rf"\.\./{_SPEC}|/work/{_SPEC}|{_SPEC}/(?:clinical|reference)\b"
    r"|\b(?:CONTRACT|RULES|REFERENCE|HOUSE_STYLE|INTEROP|TOOLS)\.md\b"
)
_EXEMPT_DIRS = {"node_modules", ".ci"}
_SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


def tracked_files(root: Path) -> list[Path]:
    """The files git tracks under ``root``; every file but caches and virtualenvs without git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return [
            p.relative_to(root)
            for p in sorted(root.rglob("*"))
            if p.is_file() and not _SKIP_DIRS & set(p.relative_to(root).parts)
        ]
    return [Path(name) for name in listed.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    """The file as UTF-8 text; None for a binary file (a NUL byte, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_references(root: Path, paths: Iterable[Path]) -> list[str]:
    """``path:line: match`` for every mention of a document outside the repository."""
    found: list[str] = []
    for path in paths:
        if path == SELF or _EXEMPT_DIRS & set(path.parts) or not (root / path).is_file():
            continue
        text = _text(root / path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{path}:{number}: {m.group(0)}" for m in _OUTSIDE.finditer(line)]
    return found


def test_no_tracked_file_points_outside_the_repository() -> None:
    paths = tracked_files(ROOT)
    assert len(paths) > 100, "the file listing found almost nothing; is ROOT right?"
    found = outside_references(ROOT, paths)
    assert found == [], (
        "point at docs/interface.md, docs/clinical-rules.md or docs/clinical-references.md, or "
        "name the specification by title and version:\n" + "\n".join(found)
    )


def test_the_scan_finds_each_kind_of_outside_reference(tmp_path: Path) -> None:
    planted = {
        "a.py": f'"""See ../{_SPEC}/CONTRACT.md."""\n',
        "b.md": f"Read the rules in /work/{_SPEC}/clinical/RULES.md\n",
        "c.toml": "# codes from REFERENCE.md\n",
        "d.txt": "HOUSE_STYLE.md says so\n",
        "e.txt": "see INTEROP.md and TOOLS.md\n",
        "f.json": f'{{"x": "../{_SPEC}"}}\n',
        "g.py": f"# the spec lives in /work/{_SPEC}\n",
        "h.md": f"see {_SPEC}/reference for the interop notes\n",
    }
    for name, text in planted.items():
        (tmp_path / name).write_text(text)
    found = outside_references(tmp_path, [Path(name) for name in planted])
    assert {line.split(":")[0] for line in found} == set(planted)
    # two each in a.py, b.md and e.txt, one each in c, d, f, g and h
    assert len(found) == 11


def test_the_scan_exempts_binaries_node_modules_and_near_misses(tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.md").write_text(f"../{_SPEC}/CONTRACT.md\n")
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text(f"# a clean clone with ../{_SPEC} beside it\n")
    (tmp_path / "blob.bin").write_bytes(b"\0\x01CONTRACT.md")
    (tmp_path / "latin1.txt").write_bytes("CONTRACT.md caf\xe9".encode("latin-1"))
    (tmp_path / "ok.md").write_text(
        "docs/interface.md; PainPath RULES §2; CONTRACT_MD; RULES.mdx\n"
    )
    paths = [Path("node_modules/x.md"), Path(".ci/run"), Path("blob.bin"), Path("latin1.txt")]
    paths.append(Path("ok.md"))
    assert outside_references(tmp_path, paths) == []
