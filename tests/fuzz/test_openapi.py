"""Schemathesis against PainPath's own OpenAPI, in-process (ASGI), deterministic and bounded:
no operation answers 5xx for any generated input, and every error is an OperationOutcome."""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from service.api.app import create_app
from service.settings import Settings

_APP = create_app(Settings(_env_file=None, fhir_server=None, log_level="WARNING"))
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx(
    case: Any, fuzz_client: TestClient, fuzz_cases: Counter[str]
) -> None:
    fuzz_cases["openapi"] += 1
    answer = case.call(session=fuzz_client)
    assert answer.status_code < 500, (case.method, case.path, answer.status_code, answer.text[:300])
    if answer.status_code >= 400 and case.path.startswith("/fhir"):
        assert answer.json()["resourceType"] == "OperationOutcome"
