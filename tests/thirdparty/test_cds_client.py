"""A third-party CDS Hooks client against a real ``painpath serve``: HealthChain's (PyPI
``healthchain`` 0.16.1) ``SandboxClient`` with its request constructor and CDS Hooks models, run
in its own virtual environment (``tests/thirdparty/healthchain``; made by ``make test`` or here).

Every hook PainPath offers is called the way HealthChain calls a CDS service: ``patient-view`` for
a cauda equina record, ``order-select`` with an MRI for uncomplicated low back pain, ``order-sign``
with an epidural for axial pain. The discovery document, the requests HealthChain built and
PainPath's answers are also checked against the CDS Hooks logical models (``cds_models``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cds_models import Checker
from cds_testkit import (
    case_patient_id,
    case_resources,
    draft_service_request,
    load_case,
    prefetch_for,
)

HEALTHCHAIN = Path(__file__).parent / "healthchain"
VENV_PYTHON = HEALTHCHAIN / ".venv" / "bin" / "python"
STAMP = HEALTHCHAIN / ".venv" / ".installed"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
SERVICES = {
    "patient-view": "painpath-patient-view",
    "order-select": "painpath-order-select",
    "order-sign": "painpath-order-sign",
}


@pytest.fixture(scope="session")
def healthchain_python() -> Path:
    """The HealthChain venv's interpreter, installed from the hashed lock unless up to date."""
    lock = HEALTHCHAIN / "requirements.txt"
    if not STAMP.is_file() or STAMP.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([sys.executable, "-m", "venv", str(HEALTHCHAIN / ".venv")], check=True)
        subprocess.run(
            [str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--require-hashes", "-r",
             str(lock)],
            check=True,
            timeout=600,
        )  # fmt: skip
        STAMP.touch()
    return VENV_PYTHON


def _prefetch(case: str) -> dict[str, Any]:
    """Every prefetch key filled; a key without data gets an empty searchset (HealthChain drops
    ``null`` values when it serialises, and a missing key would ask for fhirServer)."""
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    return {k: v or empty for k, v in prefetch_for(case_resources(load_case(case))).items()}


def _call(hook: str, case: str, orders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    patient = case_patient_id(load_case(case))
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": patient}
    if orders is not None:
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": order} for order in orders],
        }
        if hook == "order-select":
            context["selections"] = [f"{o['resourceType']}/{o['id']}" for o in orders]
    return {
        "hook": hook,
        "service": SERVICES[hook],
        "context": context,
        "prefetch": _prefetch(case),
    }


@pytest.fixture(scope="module")
def report(healthchain_python: Path, painpath_base: str, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, Any]:  # fmt: skip
    mechanical = "mechanical-low-back-pain-fever-screened-absent"
    axial = "esi-axial-pain-not-eligible"
    mri = draft_service_request("draft-mri", case_patient_id(load_case(mechanical)), LOINC,
                                "30679-5", "MRI lumbar spine")  # fmt: skip
    esi = draft_service_request("draft-esi", case_patient_id(load_case(axial)), SNOMED,
                                "171788003", "Lumbar epidural")  # fmt: skip
    scenario = {
        "calls": [
            _call("patient-view", "cauda-equina-saddle-anaesthesia"),
            _call("order-select", mechanical, [mri]),
            _call("order-sign", axial, [esi]),
        ]
    }
    path = tmp_path_factory.mktemp("healthchain") / "scenario.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    done = subprocess.run(
        [str(healthchain_python), str(HEALTHCHAIN / "hc_client.py"), painpath_base, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_healthchain_reads_the_discovery_document(report: dict[str, Any]) -> None:
    services = {s["id"]: s for s in report["discovery"]["services"]}
    assert {sid: s["hook"] for sid, s in services.items()} == {v: k for k, v in SERVICES.items()}
    assert all(
        s["prefetch"]["patient"] == "Patient/{{context.patientId}}" for s in services.values()
    )


def test_healthchain_calls_every_hook_and_parses_the_cards(report: dict[str, Any]) -> None:
    calls = {call["hook"]: call for call in report["calls"]}
    assert set(calls) == set(SERVICES)
    assert all(call["parsed"] for call in calls.values()), (
        "answers parse as HealthChain CDSResponse"
    )

    (view,) = calls["patient-view"]["answer"]["cards"]
    assert view["indicator"] == "critical"
    created = {a["resource"]["resourceType"] for s in view["suggestions"] for a in s["actions"]}
    assert "CarePlan" in created

    (select,) = calls["order-select"]["answer"]["cards"]
    assert select["indicator"] == "warning"
    assert select["summary"].startswith("Lumbar MRI not indicated now")
    assert select["suggestions"][0]["actions"][0]["resourceId"] == "ServiceRequest/draft-mri"

    (sign,) = calls["order-sign"]["answer"]["cards"]
    assert sign["indicator"] == "warning"
    assert sign["summary"].startswith("Epidural steroid injection not supported")
    assert sign["suggestions"][0]["actions"][0]["type"] == "delete"


def test_healthchain_as_shipped_drops_the_order_context(report: dict[str, Any]) -> None:
    """HealthChain 0.16.1's own serialisation loses ``draftOrders``/``selections`` (its
    ``CDSRequest.context`` is typed as the base context): PainPath refuses such a request (400,
    logged by HealthChain on stderr), so the library gets no cards. When this fails, HealthChain
    has fixed it and the typed-request workaround in hc_client.py can go."""
    for call in report["calls"]:
        if call["hook"] == "patient-view":
            continue
        shipped = call["as_shipped"]
        assert "draftOrders" not in shipped["request"]["context"]
        assert shipped["answer"] == {}
        assert shipped["parsed"] is False


def test_what_healthchain_sent_and_got_conforms_to_the_spec_models(
    report: dict[str, Any], painpath_base: str
) -> None:
    checker = Checker.load()
    for call in report["calls"]:
        assert checker.check(call["request"], "CDSHooksRequest") == [], call["hook"]
        assert checker.check(call["answer"], "CDSHooksResponse") == [], call["hook"]
    assert checker.checks["invariant:cds-resp-2"] >= 3  # the delete and create actions were seen
