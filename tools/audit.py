"""``python -m tools.audit [REQUIREMENTS]``: pip-audit that tells the truth (``make audit``).

pip-audit prints "No known vulnerabilities found" and exits 0 even when it could look up none
of the packages (each is then only "skipped" in its JSON report, e.g. "Dependency not found on
PyPI and could not be audited" when the vulnerability database cannot be reached). This wrapper
runs pip-audit on the locked set with a JSON report and decides from the report:

- exit 0, "audited N packages: no known vulnerabilities": every package was looked up, none has
  a known vulnerability;
- exit 1, one line per finding: a known vulnerability (whatever else happened) fails the build;
- exit 3, "NOT AUDITED: <reason>": some or all packages could not be looked up, pip-audit failed
  or timed out. ``make test`` reports this loudly and goes on; it never counts as audited.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EXIT_CLEAN", "EXIT_FINDINGS", "EXIT_NOT_AUDITED", "Verdict", "judge", "main"]

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_NOT_AUDITED = 3
ROOT = Path(__file__).resolve().parents[1]
_TIMEOUT_S = 300


@dataclass(frozen=True, slots=True)
class Verdict:
    """The exit code and the lines to print."""

    code: int
    lines: tuple[str, ...]


def _finding(dependency: dict[str, Any], vuln: dict[str, Any]) -> str:
    fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
    aliases = ", ".join(vuln.get("aliases") or [])
    named = f"{vuln.get('id', '?')}" + (f" ({aliases})" if aliases else "")
    package = f"{dependency['name']} {dependency.get('version', '?')}"
    return f"VULNERABLE: {package}: {named}; fixed in {fixes}"


def judge(report: dict[str, Any]) -> Verdict:
    """The verdict on one pip-audit JSON report (``pip-audit -f json``)."""
    dependencies: list[dict[str, Any]] = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    findings = [_finding(d, v) for d in audited for v in d.get("vulns") or []]
    not_audited: tuple[str, ...] = ()
    if skipped:
        reason = skipped[0]["skip_reason"]
        not_audited = (
            f"NOT AUDITED: {len(skipped)} of {len(dependencies)} packages could not be looked up "
            f"(first: {reason})",
        )
    if findings:
        return Verdict(EXIT_FINDINGS, (*findings, *not_audited))
    if not dependencies:
        return Verdict(EXIT_NOT_AUDITED, ("NOT AUDITED: the report lists no packages",))
    if not_audited:
        return Verdict(EXIT_NOT_AUDITED, not_audited)
    return Verdict(EXIT_CLEAN, (f"audited {len(audited)} packages: no known vulnerabilities",))


def run_pip_audit(requirements: Path, pip_audit: str) -> Verdict:
    """Run pip-audit on ``requirements`` (hash-pinned) and judge its report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        argv = [pip_audit, "-r", str(requirements), "--disable-pip", "--no-deps",
                "--require-hashes", "--progress-spinner", "off", "--timeout", "20",
                "-f", "json", "-o", str(out)]  # fmt: skip
        try:
            done = subprocess.run(  # noqa: S603 - a fixed argv, no shell
                argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return Verdict(
                EXIT_NOT_AUDITED, (f"NOT AUDITED: pip-audit timed out ({_TIMEOUT_S} s)",)
            )
        except OSError as exc:
            return Verdict(EXIT_NOT_AUDITED, (f"NOT AUDITED: pip-audit did not run: {exc}",))
        try:
            report = json.loads(out.read_text())
        except (OSError, ValueError):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return Verdict(
                EXIT_NOT_AUDITED,
                (f"NOT AUDITED: pip-audit exited {done.returncode} without a report: {last}",),
            )
    return judge(report)


def main(argv: list[str] | None = None) -> int:
    """Audit, print the verdict, return its exit code."""
    parser = argparse.ArgumentParser(prog="python -m tools.audit", description=__doc__)
    parser.add_argument(
        "requirements", nargs="?", type=Path, default=ROOT / "requirements.lock",
        help="hash-pinned requirements file (default: requirements.lock)",
    )  # fmt: skip
    parser.add_argument(
        "--pip-audit",
        default=str(Path(sys.executable).parent / "pip-audit"),
        help="the pip-audit executable (default: beside this Python)",
    )
    args = parser.parse_args(argv)
    verdict = run_pip_audit(args.requirements, args.pip_audit)
    for line in verdict.lines:
        print(line)  # noqa: T201 - the command's output
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
