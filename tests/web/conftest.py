"""Browser test set-up: Debian's Chromium, playwright-core from npm, and PainPath under uvicorn.

The set-up installs what it needs (idempotent; ``make test`` does it up front):
- ``/usr/bin/chromium`` from Debian (``apt-get install -y chromium``, after ``apt-get update`` only
  if the package is unknown); needs root, which CI has.
- playwright-core, pinned by ``driver/package-lock.json``, with ``npm ci`` into the git-ignored
  ``driver/node_modules/``. playwright-core never downloads a browser: the driver launches
  ``/usr/bin/chromium`` by ``executablePath``.
The page is then driven once per session by ``driver/drive.mjs`` (node), which prints what the
page shows as JSON and saves screenshots under ``test-artifacts/``.

The SMART App Launch tests add a real EHR: sekmet (the FHIR server, ``sekmet_testkit``) holding
two patients, and the test EHR of ``ehr/`` (oidc-provider and a FHIR front, ``smart_testkit``)
over it; PainPath is set up to launch from it, in-process under uvicorn for Chromium
(``smart_url``) and behind a TestClient for the in-process tests (``smart_client``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import load_patient
from live_servers import free_port, serve_app
from node_tools import ensure_npm_ci
from sekmet_testkit import run_sekmet
from smart_testkit import (
    EHR_PATIENT_CASE,
    IN_PROCESS_CALLBACK,
    PICKED_PATIENT_CASE,
    RESTRICTED_PATIENT,
    Ehr,
    run_ehr,
    smart_settings,
)

from service.api.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).parent / "driver"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
SAMPLE_FILES = sorted((ROOT / "samples").glob("*.json"))  # the repository's samples/
SAMPLES_AS_OF = "2026-11-24T10:00:00+01:00"  # the evaluation date README uses for them
INSTALL_TIMEOUT_S = 900
DRIVE_TIMEOUT_S = 600


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, timeout=INSTALL_TIMEOUT_S, **kwargs)


def ensure_chromium() -> None:
    """Debian's chromium at /usr/bin/chromium."""
    if CHROMIUM.is_file():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail("/usr/bin/chromium is missing and apt-get is not available to install it")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    known = subprocess.run(
        ["apt-cache", "show", "chromium"], capture_output=True, check=False, timeout=60
    )
    if known.returncode != 0:
        _run([apt, "update"], env=env)
    _run([apt, "install", "-y", "--no-install-recommends", "chromium"], env=env)


def ensure_driver() -> None:
    """Install pinned playwright-core (``npm ci``) unless it is up to date."""
    ensure_npm_ci(DRIVER, purpose="playwright-core for the browser tests")


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """PainPath under uvicorn on a free 127.0.0.1 port."""
    settings = Settings(_env_file=None)
    with serve_app(create_app(settings)) as url:
        yield url


def _drive(script: str, *args: str, record: str) -> dict[str, Any]:
    """Run a driver script in Chromium and return what it printed (JSON), also kept in
    test-artifacts/``record``."""
    ensure_chromium()
    ensure_driver()
    ARTIFACTS.mkdir(exist_ok=True)
    node = shutil.which("node")
    assert node is not None, "node (20) is needed for the browser tests"
    done = subprocess.run(
        [node, script, *args],
        cwd=DRIVER,
        capture_output=True,
        text=True,
        timeout=DRIVE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    (ARTIFACTS / record).write_text(json.dumps(result, indent=2))
    return result


@pytest.fixture(scope="session")
def shown(base_url: str) -> dict[str, Any]:
    """What the page shows for every bundled sample (chosen from the menu) and every file of
    samples/ (pasted), with layout, axe-core and print results (artefacts in test-artifacts/)."""
    return _drive(
        "drive.mjs",
        base_url,
        str(ARTIFACTS),
        SAMPLES_AS_OF,
        *map(str, SAMPLE_FILES),
        record="web-shown.json",
    )


@pytest.fixture(scope="session")
def docs_page(base_url: str) -> dict[str, Any]:
    """What ``/docs`` shows with the network outside PainPath cut off (``driver/docs.mjs``)."""
    return _drive("docs.mjs", base_url, str(ARTIFACTS), record="docs-shown.json")


# ---- SMART App Launch: a real EHR (authorization server + FHIR front) over a real FHIR server ---


@pytest.fixture(scope="session")
def ehr_patients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """sekmet with the two patients loaded: (its base URL, {case: patient id})."""
    with run_sekmet(tmp_path_factory.mktemp("sekmet-smart")) as base:
        headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
        with httpx.Client(base_url=base, headers=headers, timeout=30.0, trust_env=False) as fhir:
            ids = {
                case: load_patient(fhir, case, prefix)
                for case, prefix in ((EHR_PATIENT_CASE, "ehr-"), (PICKED_PATIENT_CASE, "pick-"))
            }
        yield base, ids


@pytest.fixture(scope="session")
def smart_port() -> int:
    """The port PainPath listens on for Chromium (its redirect URI is registered at the EHR)."""
    return free_port()


@pytest.fixture(scope="session")
def ehr(ehr_patients: tuple[str, dict[str, str]], smart_port: int) -> Iterator[Ehr]:
    """The test EHR (oidc-provider + FHIR front) over sekmet, with PainPath registered."""
    upstream, ids = ehr_patients
    redirects = [f"http://127.0.0.1:{smart_port}/smart/callback", IN_PROCESS_CALLBACK]
    with run_ehr(upstream, redirects, standalone_patient=ids[PICKED_PATIENT_CASE]) as running:
        yield running


@pytest.fixture(scope="session")
def smart_url(ehr: Ehr, smart_port: int) -> Iterator[str]:
    """PainPath under uvicorn (in this process, so its lines count for coverage)."""
    with serve_app(create_app(smart_settings(ehr)), port=smart_port) as url:
        yield url


@pytest.fixture
def smart_client(ehr: Ehr) -> Iterator[TestClient]:
    """PainPath in-process behind a TestClient, set up for the test EHR."""
    with TestClient(create_app(smart_settings(ehr))) as client:
        yield client


@pytest.fixture(scope="session")
def smart_shown(smart_url: str, ehr: Ehr, ehr_patients: tuple[str, dict[str, str]]) -> Any:
    """What Chromium saw in each SMART launch (``driver/smart.mjs``): an EHR launch from the
    chart, a standalone launch, a consent the user cancelled, a token the EHR's FHIR server no
    longer accepts (401) and an iss PainPath refuses."""
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    app = f"{smart_url}/smart/launch"
    scenarios = [
        {"name": "ehr", "start": ehr.launch_url(app, patient)},
        {"name": "standalone", "start": app},
        {"name": "denied", "start": ehr.launch_url(app, patient), "abort": True},
        {"name": "withdrawn", "start": ehr.launch_url(app, RESTRICTED_PATIENT)},
        {"name": "bad-iss", "start": f"{app}?launch=x&iss=http://127.0.0.1:9/fhir"},
    ]
    config = {"painpath": smart_url, "shotDir": str(ARTIFACTS), "scenarios": scenarios}
    return _drive("smart.mjs", json.dumps(config), record="smart-shown.json")["scenarios"]
