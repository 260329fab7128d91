"""The PainPath image, built from the repository's Dockerfile and run for real (issue 17).

One container for the module: host network (the only network here), non-root, read-only root with
a tmpfs on /tmp, all capabilities dropped. Its answers are compared byte for byte with a local
``painpath serve`` (what ``make run`` starts) on another port. The last test stops it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from docker_engine import REPORT, Engine, ca_bundle
from fhir_testkit import AS_OF
from live_servers import free_port, start_painpath

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("*.json"))
PROFILES = ROOT / "fhir_profiles"
FHIR_JSON = "application/fhir+json"
IMAGE_USER = "10001:10001"
TRIAGE = "/fhir/$triage?" + urlencode({"asOf": AS_OF})
GRACE_S = 10.0  # docker stop's default grace period (and Kubernetes' is 30 s)
START_TIMEOUT_S = 60.0
HEALTHY_TIMEOUT_S = 60.0  # the image's HEALTHCHECK: start period 15 s, first probe after 30 s


class Container:
    def __init__(self, engine: Engine, name: str, base: str) -> None:
        self.engine, self.name, self.base = engine, name, base

    def inspect(self) -> dict[str, Any]:
        (state,) = json.loads(self.engine.docker("inspect", self.name).stdout)
        return dict(state)

    def exec(self, *cmd: str) -> tuple[int, str]:
        result = self.engine.docker("exec", self.name, *cmd, check=False)
        return result.returncode, result.stdout + result.stderr


def _wait_for(url: str, started: float, *, post: bytes | None = None) -> float:
    """Seconds since ``started`` when ``url`` first answered 200 (POSTing ``post`` if given)."""
    with httpx.Client(timeout=5, trust_env=False) as http:
        while time.monotonic() - started < START_TIMEOUT_S:
            try:
                if post is None:
                    answer = http.get(url)
                else:
                    answer = http.post(url, content=post, headers={"Content-Type": FHIR_JSON})
                if answer.status_code == 200:
                    return round(time.monotonic() - started, 2)
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer 200 within {START_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def container(engine: Engine, painpath_image: str) -> Iterator[Container]:
    port = free_port()
    name = f"painpath-image-test-{os.getpid()}"
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    engine.docker(
        "run",
        "--detach",
        "--name",
        name,
        "--network=host",
        "--read-only",
        "--tmpfs=/tmp:rw,noexec,nosuid,size=64m",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--stop-timeout",
        str(int(GRACE_S)),
        "--env",
        "PAINPATH_HOST=127.0.0.1",
        "--env",
        f"PAINPATH_PORT={port}",
        painpath_image,
    )
    try:
        first = SAMPLES[0].read_bytes()
        REPORT["cold_start_to_healthz_s"] = _wait_for(f"{base}/healthz", started)
        REPORT["cold_start_to_first_triage_s"] = _wait_for(f"{base}{TRIAGE}", started, post=first)
        yield Container(engine, name, base)
    finally:
        logs = engine.docker("logs", name, check=False)
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "container.log").write_text(logs.stdout + logs.stderr)
        engine.docker("rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def local() -> Iterator[str]:
    """``painpath serve`` from the virtual environment, as ``make run`` starts it."""
    port = free_port()
    server = start_painpath(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(15)


def _same_answer(
    method: str, path: str, local: str, container: Container, body: bytes | None = None
) -> httpx.Response:
    headers = {"Content-Type": FHIR_JSON} if body is not None else {}
    with httpx.Client(timeout=30, trust_env=False) as http:
        mine = http.request(method, f"{local}{path}", content=body, headers=headers)
        theirs = http.request(method, f"{container.base}{path}", content=body, headers=headers)
    assert (theirs.status_code, theirs.headers.get("content-type")) == (
        mine.status_code,
        mine.headers.get("content-type"),
    ), path
    assert theirs.content == mine.content, f"{path}: the container answers differently"
    return theirs


def test_probes_and_metadata_answer(container: Container, local: str) -> None:
    with httpx.Client(timeout=10, trust_env=False) as http:
        assert http.get(f"{container.base}/healthz").json()["status"] == "ok"
        assert http.get(f"{container.base}/readyz").status_code == 200
    metadata = _same_answer("GET", "/fhir/metadata", local, container)
    assert metadata.json()["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_triage_answers_byte_for_byte_as_make_run(
    container: Container, local: str, sample: Path
) -> None:
    answer = _same_answer("POST", TRIAGE, local, container, sample.read_bytes())
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "Bundle"


def _packaged_resources() -> list[str]:
    paths = []
    for path in sorted(PROFILES.rglob("*.json")):
        resource = json.loads(path.read_text())
        if "resourceType" in resource and "id" in resource:
            paths.append(f"/fhir/{resource['resourceType']}/{resource['id']}")
    return paths


def test_serves_the_whole_package(container: Container, local: str) -> None:
    """Every conformance resource, the CDS Hooks discovery and the web page, as ``make run``."""
    paths = _packaged_resources()
    assert len(paths) > 10
    for path in [*paths, "/cds-services", "/"]:
        assert _same_answer("GET", path, local, container).status_code == 200, path


def test_runs_as_the_image_user_not_root(container: Container) -> None:
    assert container.inspect()["Config"]["User"] == IMAGE_USER
    status, out = container.exec("python3", "-c", "import os; print(os.getuid(), os.getgid())")
    assert (status, out.split()) == (0, ["10001", "10001"])
    # the server process itself (pid 1)
    status, out = container.exec("cat", "/proc/1/status")
    uid_line = next(line for line in out.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["10001"] * 4


def test_the_root_filesystem_is_read_only(container: Container) -> None:
    assert container.inspect()["HostConfig"]["ReadonlyRootfs"] is True
    probe = "open({!r}, 'w').write('x')"
    status, out = container.exec("python3", "-c", probe.format("/app/written"))
    assert status != 0
    assert "Read-only file system" in out
    tmpfs_file = "/tmp/written"  # noqa: S108 - inside the container, on its tmpfs
    status, out = container.exec("python3", "-c", probe.format(tmpfs_file))
    assert status == 0, out


def test_the_build_ca_bundle_is_not_in_the_image(engine: Engine, painpath_image: str) -> None:
    """CA_BUNDLE serves pip in the builder stage only: no copy of it in the final image."""
    size = ca_bundle().stat().st_size
    walk = (
        "import os\n"
        "for top in ('/app', '/opt', '/tmp', '/etc', '/usr/local', '/root', '/src'):\n"
        "    for d, _, files in os.walk(top):\n"
        "        for f in files:\n"
        "            p = os.path.join(d, f)\n"
        f"            if 'pip-ca' in p or (os.path.isfile(p) and os.path.getsize(p) == {size}):\n"
        "                print(p)\n"
    )
    found = engine.docker(
        "run",
        "--rm",
        "--network=host",
        "--user=0",
        "--entrypoint=python3",
        painpath_image,
        "-c",
        walk,
    ).stdout.split()
    assert not [p for p in found if "pip-ca" in p or Path(p).name == "ca.crt"], found
    machine = ca_bundle().read_bytes()
    for path in found:
        status = engine.docker(
            "run", "--rm", "--network=host", "--entrypoint=cat", painpath_image, path, check=False
        )
        assert status.stdout.encode() != machine, path


def test_the_healthcheck_becomes_healthy(container: Container) -> None:
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    while True:
        health = container.inspect()["State"]["Health"]
        if health["Status"] == "healthy":
            break
        assert health["Status"] == "starting", health
        assert time.monotonic() < deadline, health
        time.sleep(1)
    assert health["Log"][-1]["ExitCode"] == 0


def test_sigterm_stops_it_within_the_grace_period(container: Container) -> None:
    """Runs last in this module: the container is stopped afterwards."""
    assert container.inspect()["State"]["Running"] is True
    started = time.monotonic()
    container.engine.docker("kill", f"--signal={signal.SIGTERM.name}", container.name)
    while container.inspect()["State"]["Running"]:
        assert time.monotonic() - started < GRACE_S, "still running at the end of the grace period"
        time.sleep(0.05)
    REPORT["sigterm_to_exit_s"] = round(time.monotonic() - started, 2)
    state = container.inspect()["State"]
    # uvicorn exits 0 after its graceful shutdown (pid 1 ignores the re-raised SIGTERM)
    assert (state["ExitCode"], state["OOMKilled"]) in {(0, False), (128 + signal.SIGTERM, False)}
    logs = container.engine.docker("logs", container.name)
    assert "Finished server process" in logs.stdout + logs.stderr
