"""The test EHR of the SMART App Launch tests (tests/web/ehr/ehr.mjs, oidc-provider from npm)
and a user who signs in and consents on its pages without a browser (for the in-process tests;
the browser tests drive the same pages in Chromium).

``run_ehr(upstream, redirect_uris, ...)`` starts ``node ehr.mjs`` on two free 127.0.0.1 ports
(the authorization server and the FHIR front over ``upstream``, the real FHIR server) and yields
its URLs; the process is stopped when the context ends.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from live_servers import free_port
from node_tools import ensure_npm_ci

from service.settings import Settings

__all__ = [
    "CLIENT_ID",
    "CONFIDENTIAL_ID",
    "CONFIDENTIAL_SECRET",
    "EHR_DIR",
    "EHR_PATIENT_CASE",
    "IN_PROCESS_CALLBACK",
    "PICKED_PATIENT_CASE",
    "RESTRICTED_PATIENT",
    "Ehr",
    "consent",
    "run_ehr",
    "smart_settings",
]

EHR_DIR = Path(__file__).resolve().parents[1] / "web" / "ehr"
CLIENT_ID = "painpath-page"  # registered as a public client
CONFIDENTIAL_ID = "painpath-page-confidential"  # and as a confidential one, with this secret:
CONFIDENTIAL_SECRET = "s3cret:with/odd%chars"  # noqa: S105 - the test EHR's, made up here
EHR_PATIENT_CASE = "cauda-equina-saddle-anaesthesia"  # launched from the chart (red flag)
PICKED_PATIENT_CASE = "mechanical-low-back-pain-fever-screened-absent"  # standalone launch
IN_PROCESS_CALLBACK = "http://testserver/smart/callback"  # behind a TestClient
RESTRICTED_PATIENT = "restricted-patient"  # the EHR withdraws tokens for this chart at once
_START_TIMEOUT_S = 30.0
_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.S)


@dataclass(frozen=True)
class Ehr:
    """The running test EHR."""

    issuer: str  # the authorization server
    front: str  # the FHIR front (and /ehr/launch)
    fhir: str  # FHIR base advertising permission-v2 (the iss of a v2 launch)
    fhir_v1: str  # FHIR base advertising only permission-v1

    def launch_url(self, app: str, patient: str, *, base: str = "/fhir") -> str:
        """The EHR's own launch link: opening it starts an EHR launch of ``app``."""
        query = httpx.QueryParams({"app": app, "patient": patient, "base": base})
        return f"{self.front}/ehr/launch?{query}"

    def launch_params(self, app: str, patient: str) -> dict[str, str]:
        """The ``launch`` and ``iss`` the EHR sends ``app`` when it launches it for ``patient``."""
        answer = httpx.get(self.launch_url(app, patient), trust_env=False, timeout=10.0)
        assert answer.status_code == 302, answer.text
        sent = httpx.URL(answer.headers["location"]).params
        return {"launch": sent["launch"], "iss": sent["iss"]}


def smart_settings(ehr: Ehr, **extra: Any) -> Settings:
    """PainPath set up to launch from the test EHR; a standalone launch goes to its v1 base."""
    settings: dict[str, Any] = {
        "smart_app_client_id": CLIENT_ID,
        "smart_app_issuers": [ehr.fhir],
        "smart_app_default_iss": ehr.fhir_v1,
        "fhir_retries": 0,
        **extra,
    }
    return Settings(_env_file=None, **settings)


@contextlib.contextmanager
def run_ehr(upstream: str, redirect_uris: list[str], *, standalone_patient: str) -> Iterator[Ehr]:
    """The test EHR over the FHIR server ``upstream``, with PainPath's client registered."""
    ensure_npm_ci(EHR_DIR, purpose="oidc-provider for the SMART launch tests")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20.19+) is needed for the SMART launch tests")
    config = {
        "authPort": free_port(), "frontPort": free_port(), "upstream": upstream,
        "clientId": CLIENT_ID, "redirectUris": redirect_uris,
        "confidentialClient": {"id": CONFIDENTIAL_ID, "secret": CONFIDENTIAL_SECRET},
        "standalonePatient": standalone_patient, "restrictedPatient": RESTRICTED_PATIENT,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="painpath-ehr-") as work:
        config_path = Path(work) / "ehr.json"
        config_path.write_text(json.dumps(config))
        errors = (Path(work) / "stderr.log").open("w+")
        proc = subprocess.Popen(
            [node, "ehr.mjs", str(config_path)], cwd=EHR_DIR, stdout=subprocess.PIPE,
            stderr=errors, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # one JSON line once both listeners are up
            if not line:
                errors.seek(0)
                pytest.fail(f"the test EHR did not start:\n{errors.read()[-4000:]}")
            urls = json.loads(line)
            yield Ehr(urls["issuer"], urls["front"], urls["fhir"], urls["fhirV1"])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            errors.close()
            if proc.stdout is not None:
                proc.stdout.close()


def consent(authorize_url: str, redirect_prefix: str, *, login: str = "dr-jones",
            abort: bool = False) -> str:  # fmt: skip
    """Follow an authorization request through the EHR's sign-in and consent pages as a user
    would (or press its Cancel link when ``abort``); the URL the EHR sends the browser back to."""
    with httpx.Client(trust_env=False, timeout=30.0) as browser:
        url = authorize_url
        for _ in range(20):
            if url.startswith(redirect_prefix):
                return url
            answer = browser.get(url)
            if answer.is_redirect:
                url = urljoin(url, answer.headers["location"])
                continue
            assert answer.status_code == 200, answer.text[:2000]
            if abort:
                cancel = re.search(r'href="([^"]+/abort)"', answer.text)
                assert cancel is not None, answer.text[:2000]
                url = urljoin(url, html.unescape(cancel.group(1)))
                continue
            action = _FORM.search(answer.text)
            assert action is not None, answer.text[:2000]
            prompt = "login" if 'value="login"' in answer.text else "consent"
            form = {"prompt": prompt, "login": login, "password": "any"}
            posted = browser.post(urljoin(url, html.unescape(action.group(1))), data=form)
            assert posted.is_redirect, posted.text[:2000]
            url = urljoin(url, posted.headers["location"])
        raise AssertionError("the EHR's pages did not end in a redirect to the app")
