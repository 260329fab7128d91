"""A private Docker engine for the container tests (tests/container), started and stopped here.

The engine is Debian's ``docker.io`` (``make test-container`` installs it when missing). It runs
with its own data root (under the cache directory, so images and the layer cache survive between
runs), its own exec root, socket and pid file (in a fresh temporary directory), so it neither uses
nor disturbs any other engine on the machine. No bridge and no iptables: containers use the host's
network, and the tests talk to them on 127.0.0.1 only.

No registry is needed: the base image ``local/bookworm-python`` is made once with debootstrap from
the Debian mirror apt already uses and imported into the engine (kept in the cached data root).
Builds use the classic builder (``DOCKER_BUILDKIT=0``): Debian's engine has no buildx.

Anything that prevents the engine from starting raises EngineError with the exact reason; the
fixtures turn it into a test failure, never a skip.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BASE_IMAGE = "local/bookworm-python"
DEBIAN_SUITE = "bookworm"
DEBOOTSTRAP_PACKAGES = "python3,python3-venv,ca-certificates"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# what the container tests measure; tests/container/conftest.py writes it to test-artifacts/
REPORT: dict[str, Any] = {}


class EngineError(RuntimeError):
    """The engine (or the base image) could not be made ready; the message says why."""


def cache_dir() -> Path:
    """Where the engine's data root lives: $PAINPATH_CACHE, else ~/.cache/painpath."""
    configured = os.environ.get("PAINPATH_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "painpath"


def ca_bundle() -> Path:
    """This machine's CA bundle, for pip inside builds (networks may present their own chain)."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    if default.is_file():
        return default
    raise EngineError(f"no CA bundle: PIP_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, {default}")


def debian_mirror() -> str:
    """$PAINPATH_DEBIAN_MIRROR, else the first Debian archive apt is configured with."""
    configured = os.environ.get("PAINPATH_DEBIAN_MIRROR")
    if configured:
        return configured
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        # one-line style ("deb URI bookworm main"), then deb822 ("URIs: URI", "Suites: bookworm")
        one_line = r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+" + DEBIAN_SUITE + r"\s"
        for match in re.finditer(one_line, text, re.M):
            return match.group(1)
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:(.*)$", stanza, re.M)
            if uris and suites and DEBIAN_SUITE in suites.group(1).split():
                return uris.group(1)
    return DEFAULT_MIRROR


def _tool(*candidates: str) -> str:
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
        found = shutil.which(candidate)
        if found:
            return found
    raise EngineError(
        f"{candidates[0]} not found: install Debian's docker.io and debootstrap "
        "(make test-container does this when run as root)"
    )


@dataclass
class Engine:
    """A running private dockerd; ``docker(...)`` runs the matching client against it."""

    docker_bin: str
    socket: Path
    exec_root: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_BUILDKIT="0")
        return env

    def docker(
        self, *args: str, timeout: float = 120.0, check: bool = True, stdin: IO[bytes] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker args…``; with ``check`` a non-zero exit raises EngineError with stderr."""
        result = subprocess.run(
            [self.docker_bin, *args],
            env=self.env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise EngineError(
                f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}"
            )
        return result

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False).returncode == 0

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def build(self, context: Path, tag: str, build_args: dict[str, str]) -> str:
        """Build ``context`` (classic builder, host network: pip reaches PyPI); the build log."""
        args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
        result = self.docker(
            "build", "--network=host", *args, "-t", tag, str(context), timeout=1200
        )
        return result.stdout


def _wait_for_engine(
    docker_bin: str, socket: Path, process: subprocess.Popen[bytes], log: Path
) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}"}
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise EngineError(
                f"dockerd exited with {process.returncode} while starting; its log ends:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        probe = subprocess.run(
            [docker_bin, "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise EngineError(
                f"dockerd did not answer on {socket} within {START_TIMEOUT_S:.0f} s "
                f"({probe.stderr.strip()}); its log ends:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def private_engine() -> Iterator[Engine]:
    """Start dockerd on a private socket over the cached data root; stop it on exit.

    A lock file serialises runs that share the cache (two dockerds must not share a data root).
    """
    if os.geteuid() != 0:
        raise EngineError(f"dockerd needs root; this test runs as uid {os.geteuid()}")
    dockerd = _tool("/usr/sbin/dockerd", "dockerd")
    docker_bin = _tool("/usr/bin/docker", "docker")
    data_root = cache_dir() / "docker"
    data_root.mkdir(parents=True, exist_ok=True)
    # a short path: containerd's sockets live under the exec root (unix socket paths <= 108 bytes)
    exec_root = Path(tempfile.mkdtemp(prefix="pp-dockerd-", dir="/tmp"))
    socket = exec_root / "docker.sock"
    log_path = exec_root / "dockerd.log"
    with (cache_dir() / "engine.lock").open("w") as lock, log_path.open("wb") as log:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        process = subprocess.Popen(
            [
                dockerd,
                "--data-root",
                str(data_root),
                "--exec-root",
                str(exec_root / "exec"),
                "--pidfile",
                str(exec_root / "dockerd.pid"),
                "--host",
                f"unix://{socket}",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_engine(docker_bin, socket, process, log_path)
            engine = Engine(docker_bin, socket, exec_root, log_path, process)
            engine.timings["engine_start_s"] = round(time.monotonic() - started, 2)
            yield engine
        finally:
            _stop(process)
            _unmount_under(exec_root)
            shutil.rmtree(exec_root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """Unmount what dockerd left mounted below ``root`` (it keeps exec-root/netns/default)."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", mount], capture_output=True, check=False, timeout=30)


def ensure_base_image(engine: Engine) -> float | None:
    """Make ``local/bookworm-python`` unless the engine has it; the seconds it took, or None."""
    if engine.has_image(BASE_IMAGE):
        return None
    debootstrap = _tool("/usr/sbin/debootstrap", "debootstrap")
    started = time.monotonic()
    rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir()))
    try:
        made = subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={DEBOOTSTRAP_PACKAGES}",
                DEBIAN_SUITE,
                str(rootfs),
                debian_mirror(),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
        if made.returncode != 0:
            raise EngineError(
                f"debootstrap from {debian_mirror()} exited {made.returncode}:\n"
                + made.stdout[-3000:]
            )
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            engine.docker("import", "-", BASE_IMAGE, stdin=tar.stdout, timeout=600)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return round(time.monotonic() - started, 1)


def build_context(sources: Sequence[Path], root: Path, into: Path, *, ca: bool = True) -> Path:
    """A build context in ``into``: the given files and directories (relative to ``root``, caches
    left out) plus, with ``ca``, this machine's CA bundle as ``.build-ca/ca.crt``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for source in sources:
        target = into / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    if ca:
        (into / ".build-ca").mkdir()
        shutil.copy2(ca_bundle(), into / ".build-ca" / "ca.crt")
    return into
