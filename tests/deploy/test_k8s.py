"""deploy/k8s: every manifest is valid for Kubernetes 1.30, checked offline and strictly.

kubernetes-validate (dev extra) bundles the Kubernetes JSON schemas; its strict schemas reject
unknown fields, so a misspelt key fails here rather than being dropped by the API server.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S_VERSION = "1.30.0"
MANIFESTS = Path(__file__).parents[2] / "deploy" / "k8s"
EXPECTED = {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((path.name, doc))
    return found


def _by_kind(kind: str) -> dict[str, Any]:
    (doc,) = [d for _, d in _documents() if d["kind"] == kind]
    return doc


def _validate(doc: dict[str, Any]) -> str:
    return str(kubernetes_validate.validate(doc, K8S_VERSION, strict=True))


def test_the_manifests_are_all_there() -> None:
    assert {d["kind"] for _, d in _documents()} == EXPECTED


@pytest.mark.parametrize(
    ("name", "doc"), _documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_each_manifest_is_valid_for_the_pinned_kubernetes(name: str, doc: dict[str, Any]) -> None:
    assert _validate(doc) == "1.30", name


@pytest.mark.parametrize(
    "breakage",
    ["replicas-as-text", "unknown-field", "unknown-container-field"],
)
def test_a_broken_copy_is_rejected(breakage: str) -> None:
    broken = copy.deepcopy(_by_kind("Deployment"))
    if breakage == "replicas-as-text":
        broken["spec"]["replicas"] = "two"
    elif breakage == "unknown-field":
        broken["spec"]["replica"] = 2
    else:
        broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


def test_probes_point_at_healthz_and_readyz() -> None:
    (container,) = _by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert set(container["resources"]) == {"requests", "limits"}


def test_the_container_runs_as_non_root_on_a_read_only_filesystem() -> None:
    pod = _by_kind("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001  # the Dockerfile's USER
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_service_and_autoscaler_target_the_deployment() -> None:
    deployment, service = _by_kind("Deployment"), _by_kind("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["port"] == 8080
    hpa = _by_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == 70
    config = _by_kind("ConfigMap")
    assert config["data"]["PAINPATH_HOST"] == "0.0.0.0"  # noqa: S104 - in-cluster bind
    assert config["data"]["PAINPATH_AUTH_MODE"] == "jwt"
    (source,) = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert source["configMapRef"]["name"] == config["metadata"]["name"]


def test_the_deployment_names_the_image_the_container_tests_build() -> None:
    """tests/container builds the Dockerfile under this tag (painpath:<project version>)."""
    project = tomllib.loads((MANIFESTS.parents[1] / "pyproject.toml").read_text())["project"]
    (container,) = _by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"painpath:{project['version']}"
    assert container["imagePullPolicy"] == "IfNotPresent"  # a locally built image is used as is
