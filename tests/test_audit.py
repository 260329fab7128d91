"""``make audit`` tells the truth: audited and clean (0), a finding (1), or NOT AUDITED (3).

The reports below have the shape pip-audit 2 writes with ``-f json``; the first is what it wrote
on a machine that cannot reach the vulnerability database (while printing "No known
vulnerabilities found" and exiting 0). The failure paths run the real pip-audit, offline.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tools.audit import EXIT_CLEAN, EXIT_FINDINGS, EXIT_NOT_AUDITED, judge, main, run_pip_audit

UNREACHABLE = {
    "dependencies": [
        {"name": "rich", "skip_reason": "Dependency not found on PyPI and could not be audited: "
         "rich (13.7.0)"},
        {"name": "orjson", "skip_reason": "Dependency not found on PyPI and could not be audited: "
         "orjson (3.10.0)"},
    ],
    "fixes": [],
}  # fmt: skip
CLEAN = {
    "dependencies": [
        {"name": "rich", "version": "13.7.0", "vulns": []},
        {"name": "orjson", "version": "3.10.0", "vulns": []},
    ],
    "fixes": [],
}
FINDING = {
    "dependencies": [
        {"name": "rich", "version": "13.7.0", "vulns": []},
        {"name": "jinja2", "version": "3.1.2", "vulns": [
            {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": ["CVE-2024-22195"],
             "description": "xmlattr filter allows keys with spaces"},
        ]},
        {"name": "orjson", "skip_reason": "Dependency not found on PyPI and could not be audited: "
         "orjson (3.10.0)"},
    ],
    "fixes": [],
}  # fmt: skip


def test_nothing_looked_up_is_not_audited() -> None:
    verdict = judge(UNREACHABLE)
    assert verdict.code == EXIT_NOT_AUDITED
    assert verdict.lines == (
        "NOT AUDITED: 2 of 2 packages could not be looked up (first: Dependency not found on "
        "PyPI and could not be audited: rich (13.7.0))",
    )


def test_partly_looked_up_is_not_audited() -> None:
    report = {"dependencies": [CLEAN["dependencies"][0], UNREACHABLE["dependencies"][1]]}
    verdict = judge(report)
    assert verdict.code == EXIT_NOT_AUDITED
    assert verdict.lines[0].startswith("NOT AUDITED: 1 of 2 packages")


def test_an_empty_report_is_not_audited() -> None:
    assert judge({"dependencies": []}).code == EXIT_NOT_AUDITED


def test_all_looked_up_and_clean_passes() -> None:
    verdict = judge(CLEAN)
    assert verdict.code == EXIT_CLEAN
    assert verdict.lines == ("audited 2 packages: no known vulnerabilities",)


def test_a_finding_fails_even_when_other_packages_were_not_looked_up() -> None:
    verdict = judge(FINDING)
    assert verdict.code == EXIT_FINDINGS
    assert verdict.lines == (
        "VULNERABLE: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (CVE-2024-22195); fixed in 3.1.3",
        "NOT AUDITED: 1 of 3 packages could not be looked up (first: Dependency not found on "
        "PyPI and could not be audited: orjson (3.10.0))",
    )


def test_pip_audit_without_a_report_is_not_audited(tmp_path: Path) -> None:
    pip_audit = str(Path(sys.executable).parent / "pip-audit")
    verdict = run_pip_audit(tmp_path / "missing.lock", pip_audit)  # pip-audit fails at once
    assert verdict.code == EXIT_NOT_AUDITED
    assert verdict.lines[0].startswith("NOT AUDITED: pip-audit exited ")


def test_pip_audit_missing_is_not_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([str(tmp_path / "x.lock"), "--pip-audit", str(tmp_path / "no-pip-audit")])
    assert code == EXIT_NOT_AUDITED
    assert capsys.readouterr().out.startswith("NOT AUDITED: pip-audit did not run: ")
