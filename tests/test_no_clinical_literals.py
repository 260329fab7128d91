"""No clinical code or threshold literal in Python: codes live in service/knowledge/*.toml.

The scan looks at every string constant in service/ and tools/ for shapes of LOINC codes
(``12345-6``), SNOMED CT identifiers (6-18 digits), ICD-10 codes (``M54.5``) and RxNorm-style
numeric codes in a coding position, and at every ``"code": "..."`` dict literal. Knowledge files
and tests are exempt; so is the vendored R4 schema (JSON, not Python).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LOINC = re.compile(r"^\d{1,6}-\d$")
_SNOMED = re.compile(r"^\d{6,18}$")
_ICD = re.compile(r"^[A-TV-Z]\d\d(\.[0-9A-Z]{1,4})?$")


def _suspects(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        text = node.value
        if _LOINC.match(text) or _SNOMED.match(text) or _ICD.match(text):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {text!r}")
    return found


def test_no_code_literals_in_python() -> None:
    paths = [*(ROOT / "service").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]
    suspects = [s for p in sorted(paths) for s in _suspects(p)]
    assert suspects == [], "clinical codes belong in service/knowledge/*.toml:\n" + "\n".join(
        suspects
    )


def test_the_scan_finds_a_planted_code(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('MRI = {("loinc", "30679-5"), ("sct", "241648005")}\nX = "M54.5"\n')
    assert len(_suspects(planted, tmp_path)) == 3
