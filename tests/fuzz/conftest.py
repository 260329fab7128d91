"""Fuzz fixtures: one in-process app for the whole module (building it loads the knowledge base),
and a counter of the cases run, printed at the end (the issue asks for the case count)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings

CASES: Counter[str] = Counter()


@pytest.fixture(scope="session")
def fuzz_client() -> Iterator[TestClient]:
    """PainPath with default limits, independent of the environment."""
    settings = Settings(_env_file=None, fhir_server=None, log_level="WARNING")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def fuzz_cases() -> Counter[str]:
    """Cases run so far, by suite (reported in the terminal summary)."""
    return CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how many fuzz cases ran, by suite."""
    if CASES:
        total = sum(count for name, count in CASES.items() if ":" not in name)
        parts = ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
        terminalreporter.write_line(f"fuzz cases: {total} ({parts})")
