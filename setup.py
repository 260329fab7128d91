"""Build hook: the wheel carries the conformance package as ``service/fhir_profiles``.

``fhir_profiles/`` stays at the top of the repository (``make package`` writes it there and the
source tree serves it from there); a built wheel copies it into the ``service`` package so that
``painpath serve`` after ``pip install`` serves the same resources from any directory
(``service.conformance.store.default_profiles_dir``). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROFILES = Path(__file__).resolve().parent / "fhir_profiles"


class BuildWithProfiles(build_py):
    """``build_py`` that also copies ``fhir_profiles/`` into ``<build>/service/fhir_profiles``."""

    def run(self) -> None:
        super().run()
        if not PROFILES.is_dir():
            raise SystemExit(f"setup.py: {PROFILES} is missing; run `make package` first")
        target = Path(self.build_lib) / "service" / "fhir_profiles"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(PROFILES, target, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))


setup(cmdclass={"build_py": BuildWithProfiles})
