"""Fixtures of the container tests: a private Docker engine, the base image, the PainPath image
(the repository's Dockerfile, built with the classic builder) and the FHIR server image used in
place of HAPI by the compose stack.

What the tests measure (image size, build times, cold start, compose round trip) is collected
in docker_engine.REPORT and written to ``test-artifacts/container-report.json`` at the end.
"""

from __future__ import annotations

import json
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker_engine import (
    BASE_IMAGE,
    REPORT,
    Engine,
    EngineError,
    build_context,
    ensure_base_image,
    private_engine,
)

ROOT = Path(__file__).resolve().parents[2]
FHIR_SERVER_DIR = Path(__file__).resolve().parent / "fhir-server"


def _fail(error: EngineError) -> None:
    pytest.fail(f"container engine not usable: {error}", pytrace=False)


def deployment_image() -> str:
    """The image named by deploy/k8s/deployment.yaml: the tag the tests build."""
    deployment = yaml.safe_load((ROOT / "deploy" / "k8s" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    image: str = container["image"]
    return image


def sekmet_version() -> str:
    """The sekmet-fhir version pinned in the dev extra (the same server tests/integration use)."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (pin,) = [str(d) for d in dev["dev"] if str(d).startswith("sekmet-fhir==")]
    return pin.split("==", 1)[1]


def _repo_files() -> list[Path]:
    """What a fresh clone (plus local edits) holds: tracked and untracked, not git-ignored."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    names = [n for n in listed.stdout.decode().split("\0") if n]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def _timed_build(
    engine: Engine, context: Path, tag: str, build_args: dict[str, str]
) -> dict[str, Any]:
    started = time.monotonic()
    log = engine.build(context, tag, build_args)
    seconds = round(time.monotonic() - started, 1)
    steps = log.count("\nStep ")
    cached = log.count("Using cache")
    return {"seconds": seconds, "steps": steps, "steps_from_cache": cached}


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    try:
        with private_engine() as running:
            REPORT["engine_start_s"] = running.timings["engine_start_s"]
            yield running
    except EngineError as error:
        _fail(error)
    finally:
        out = ROOT / "test-artifacts" / "container-report.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(REPORT, indent=2) + "\n")


@pytest.fixture(scope="session")
def base_image(engine: Engine) -> str:
    try:
        REPORT["base_image_made_s"] = ensure_base_image(engine)  # None: it was cached
    except EngineError as error:
        _fail(error)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def painpath_image(
    engine: Engine, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The repository's Dockerfile built on the local base, tagged as deploy/k8s names it; built
    twice, so the second (all from the layer cache) gives the cached build time."""
    context = build_context(_repo_files(), ROOT, tmp_path_factory.mktemp("painpath-context"))
    tag = deployment_image()
    args = {"BASE_IMAGE": base_image, "CA_BUNDLE": ".build-ca/ca.crt"}
    try:
        REPORT["build"] = _timed_build(engine, context, tag, args)
        REPORT["build_again"] = _timed_build(engine, context, tag, args)
        size = int(engine.docker("image", "inspect", tag, "--format", "{{.Size}}").stdout)
    except EngineError as error:
        _fail(error)
    REPORT["image"] = tag
    REPORT["image_size_mb"] = round(size / 1e6, 1)
    return tag


@pytest.fixture(scope="session")
def fhir_server_image(
    engine: Engine, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A FHIR R4 server image (sekmet-fhir, pinned as in the dev extra) for the compose stack."""
    sources = sorted(FHIR_SERVER_DIR.iterdir())
    context = build_context(sources, FHIR_SERVER_DIR, tmp_path_factory.mktemp("fhir-context"))
    version = sekmet_version()
    tag = f"painpath-test/sekmet-fhir:{version}"
    args = {"BASE_IMAGE": base_image, "CA_BUNDLE": ".build-ca/ca.crt", "SEKMET_VERSION": version}
    try:
        REPORT["fhir_server_build"] = _timed_build(engine, context, tag, args)
    except EngineError as error:
        _fail(error)
    return tag
