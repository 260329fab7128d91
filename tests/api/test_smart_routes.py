"""Whatever reaches /smart/launch or /smart/callback, the answer is the page with a reason in it,
never a 5xx and never a JSON error (a browser shows it). Nothing here reaches an EHR: the one
allowed iss is never generated, and no launch cookie exists."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api.app import create_app
from service.settings import Settings

NAMES = ["iss", "launch", "state", "code", "error", "error_description", "aud", "x"]
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
QUERIES = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=5)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    configured = Settings(
        _env_file=None,
        smart_app_client_id="painpath",
        smart_app_issuers=["https://ehr.example/fhir"],
    )
    with TestClient(create_app(configured)) as app:
        yield app


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(["/smart/launch", "/smart/callback"]), query=QUERIES)
def test_any_query_answers_the_page_with_a_reason(
    client: TestClient, path: str, query: dict[str, str]
) -> None:
    answer = client.get(path, params=query, follow_redirects=False)
    assert answer.status_code in {400, 403}, answer.text[-500:]
    assert answer.headers["content-type"].startswith("text/html")
    block = re.search(r'id="page-data">(.*?)</script>', answer.text, re.S)
    assert block is not None
    smart = json.loads(block.group(1))["smart"]
    assert smart["status"] == answer.status_code
    assert smart["error"]
