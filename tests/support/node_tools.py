"""Node tooling for tests: install a pinned npm folder (``npm ci``) only when it is stale."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def ensure_npm_ci(folder: Path, *, purpose: str, timeout: float = 600) -> None:
    """``npm ci`` in ``folder`` unless its node_modules matches the committed lock file."""
    marker = folder / "node_modules" / ".package-lock.json"
    lock = folder / "package-lock.json"
    if marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm (Node 20) is needed to install {purpose}")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        check=True,
        timeout=timeout,
    )
