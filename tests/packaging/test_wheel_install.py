"""The wheel carries everything PainPath serves.

A copy of the sources (what a clone has) is built into a wheel offline (``pip wheel
--no-build-isolation`` with the dev set's setuptools), installed with ``--no-deps`` into a new
virtual environment, and started as ``painpath serve`` from an empty directory with no ``.env``
and no PAINPATH_* variables. Its dependencies come from this test's environment through a
``.pth`` line (the same packages ``make install`` put there; nothing is downloaded), and the
test checks that ``service`` itself is imported from the new environment, not from the source
tree. The installed copy must answer exactly as the source tree does (``make run``): the
CapabilityStatement, every conformance resource type's search, the web page, the API docs and a
``$triage`` evaluation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_servers import free_port

from service import __version__

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "service" / "web" / "samples" / "cauda-equina-saddle-anaesthesia.json"
# what a build reads (pyproject.toml, setup.py and MANIFEST.in say the rest)
_BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
_BUILD_DIRS = ("service", "fhir_profiles")
_TIMEOUT_S = 300


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without PainPath settings or an import path pointing back
    at the source tree."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PAINPATH_") and key not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    return {**env, "PAINPATH_LOG_LEVEL": "warning", **extra}


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the painpath wheel installed; its ``bin`` directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in _BUILD_INPUTS:
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "fhir_profiles")
    shutil.copytree(ROOT / "service", source / "service", ignore=ignore)
    shutil.copytree(ROOT / "fhir_profiles", source / "fhir_profiles")
    wheels = tmp / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(wheels), str(source)],
        cwd=tmp,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    (wheel,) = wheels.glob("painpath-*.whl")

    venv = tmp / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    made = _run([base_python, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    # the dependencies: this environment's site-packages, after the new one's own
    (site / "zz_painpath_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working directory outside the source tree."""
    return tmp_path_factory.mktemp("elsewhere")


def _serve(painpath: Path, cwd: Path) -> Iterator[str]:
    port = free_port()
    env = _clean_env(PAINPATH_HOST="127.0.0.1", PAINPATH_PORT=str(port))
    server = subprocess.Popen(
        [str(painpath), "serve"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                _, err = server.communicate(timeout=10)
                pytest.fail(f"{painpath} serve did not start: {err.decode()[-4000:]}")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


@pytest.fixture(scope="module")
def installed_url(installed: Path, elsewhere: Path) -> Iterator[str]:
    """The installed copy, ``painpath serve`` from an empty directory."""
    yield from _serve(installed / "painpath", elsewhere)


@pytest.fixture(scope="module")
def source_url() -> Iterator[str]:
    """The source tree, as ``make run`` serves it."""
    yield from _serve(Path(sys.executable).parent / "painpath", ROOT)


def test_the_installed_copy_imports_from_its_own_environment(
    installed: Path, elsewhere: Path
) -> None:
    where = _run(
        [str(installed / "python"), "-c",
         "import service, service.conformance.store as s; "
         "print(service.__file__); print(s.default_profiles_dir())"],
        cwd=elsewhere, env=_clean_env(),
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    module, profiles = where.stdout.split()
    venv = installed.parent
    assert Path(module).is_relative_to(venv)
    assert Path(profiles) == Path(module).parent / "fhir_profiles"
    assert (Path(profiles) / "package.json").is_file()


def test_version_and_module_entry_points(installed: Path, elsewhere: Path) -> None:
    for argv in ([str(installed / "painpath"), "--version"],
                 [str(installed / "python"), "-m", "service", "--version"]):  # fmt: skip
        done = _run(argv, cwd=elsewhere, env=_clean_env())
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"painpath {__version__}"


def test_the_installed_copy_refuses_a_missing_profiles_dir(
    installed: Path, elsewhere: Path
) -> None:
    missing = elsewhere / "no-such-dir"
    done = _run(
        [str(installed / "painpath"), "serve", "--port", str(free_port())],
        cwd=elsewhere,
        env=_clean_env(PAINPATH_PROFILES_DIR=str(missing)),
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"painpath: conformance package directory {missing} does not exist (set "
        "PAINPATH_PROFILES_DIR to the fhir_profiles directory, or unset it to use the packaged "
        "one)"
    )


def test_the_installed_copy_serves_what_the_source_tree_serves(
    installed_url: str, source_url: str
) -> None:
    def get(base: str, path: str) -> httpx.Response:
        response = httpx.get(base + path, timeout=30)
        assert response.status_code == 200, (base, path, response.text[:500])
        return response

    metadata = get(source_url, "/fhir/metadata").json()
    assert get(installed_url, "/fhir/metadata").json() == metadata
    served = [r["type"] for r in metadata["rest"][0]["resource"] if r.get("interaction")]
    # the conformance package's types, not only the emitted ones (a wheel without the package
    # served 5 types; the source tree serves 16, 15 of them readable)
    assert len(metadata["rest"][0]["resource"]) >= 16
    assert {"OperationDefinition", "StructureDefinition", "Questionnaire", "ValueSet"} <= set(
        served
    )
    for rtype in served:
        source = get(source_url, f"/fhir/{rtype}").json()
        assert source["total"] > 0, rtype
        installed = get(installed_url, f"/fhir/{rtype}").json()
        # the searchset's self link names the server it came from: the rest is identical
        assert installed.pop("link") == [
            {"relation": "self", "url": f"{installed_url}/fhir/{rtype}"}
        ], rtype
        source.pop("link")
        assert installed == source, rtype
    for path in ("/fhir/OperationDefinition/triage", "/", "/ui/painpath.js", "/openapi.json",
                 "/docs", "/docs-assets/swagger-ui-bundle.js"):  # fmt: skip
        assert get(installed_url, path).content == get(source_url, path).content, path
    body = SAMPLE.read_bytes()
    results = [
        httpx.post(
            f"{base}/fhir/$triage?asOf=2026-03-01",
            content=body,
            headers={"Content-Type": "application/fhir+json"},
            timeout=60,
        )
        for base in (source_url, installed_url)
    ]
    assert [r.status_code for r in results] == [200, 200]
    assert results[0].json() == results[1].json()
