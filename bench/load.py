"""Load and soak test: `painpath serve` with production settings, async httpx clients.

    python bench/load.py --clients 50 --seconds 60 --workers 2             (make load)
    python bench/load.py --clients 5 --seconds 600 --rate 20 --sample-memory  (make soak)

Starts the service in a subprocess (uvicorn, ``--workers`` processes, JSON logs at warning level,
auth none on 127.0.0.1), waits for /readyz, then each client POSTs the golden bundles round robin
to /fhir/$triage for ``--seconds``. ``--rate`` caps the total requests per second. Prints
throughput, p50/p95/p99 latency, the error count (any non-200 or transport error) and, with
``--sample-memory``, the service's resident memory (all its processes) every 10 s. Exits 1 on
any error. Results go in the README's "Operations" section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "golden" / "cases"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bodies() -> list[bytes]:
    bodies = []
    for path in sorted(CASES.glob("*.json")):
        data = json.loads(path.read_text())
        bundle = data.get("bundle", data)
        if bundle.get("resourceType") == "Bundle":
            bodies.append(json.dumps(bundle).encode())
    return bodies


def _rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its children (uvicorn workers), KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


async def _client(base: str, bodies: list[bytes], start: int, plan: dict, out: dict) -> None:
    stop, interval, measure_from = plan["stop"], plan["interval"], plan["measure_from"]
    headers = {"Content-Type": "application/fhir+json"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        index = start
        while time.monotonic() < stop:
            began = time.perf_counter()
            try:
                answer = await client.post("/fhir/$triage", content=bodies[index % len(bodies)],
                                           headers=headers)  # fmt: skip
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = time.perf_counter() - began
            if time.monotonic() >= measure_from:
                out["latencies"].append(elapsed)
            if not ok:
                out["errors"] += 1
            index += 1
            if interval:
                await asyncio.sleep(max(0.0, interval - elapsed))


async def _sample(pid: int, stop: float, out: dict) -> None:
    while time.monotonic() < stop:
        out["memory"].append((round(time.monotonic() - out["t0"]), _rss_kib(pid)))
        await asyncio.sleep(10)


async def _run(args: argparse.Namespace, base: str, pid: int) -> dict:
    bodies = _bodies()
    out: dict = {"latencies": [], "errors": 0, "memory": [], "t0": time.monotonic()}
    measure_from = time.monotonic() + args.warmup
    stop = measure_from + args.seconds
    plan = {"stop": stop, "measure_from": measure_from,
            "interval": args.clients / args.rate if args.rate else 0.0}  # fmt: skip
    tasks = [_client(base, bodies, i * 7, plan, out) for i in range(args.clients)]
    if args.sample_memory:
        tasks.append(_sample(pid, stop, out))
    await asyncio.gather(*tasks)
    out["wall"] = time.monotonic() - measure_from
    out["memory"].append((round(time.monotonic() - out["t0"]), _rss_kib(pid)))
    return out


def _report(args: argparse.Namespace, out: dict) -> dict:
    lat = sorted(out["latencies"])
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    report = {
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
        "warmup_s": args.warmup,
        "requests": len(lat),
        "errors": out["errors"],
        "throughput_rps": round(len(lat) / out["wall"], 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1),
    }
    if out["memory"]:
        report["rss_mib"] = [(t, round(k / 1024, 1)) for t, k in out["memory"]]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0, help="total requests/s cap (0: none)")
    parser.add_argument("--sample-memory", action="store_true")
    parser.add_argument("--warmup", type=float, default=5, help="seconds not measured (errors are)")
    args = parser.parse_args()
    port = _free_port()
    env = {**os.environ, "PAINPATH_HOST": "127.0.0.1", "PAINPATH_PORT": str(port),
           "PAINPATH_WORKERS": str(args.workers), "PAINPATH_LOG_LEVEL": "warning",
           "PAINPATH_AUTH_MODE": "none"}  # fmt: skip
    env.pop("PAINPATH_FHIR_SERVER", None)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "painpath"), "serve"], env=env, cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("service did not become ready", file=sys.stderr)
                return 2
            time.sleep(0.2)
        out = asyncio.run(_run(args, base, server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    report = _report(args, out)
    print(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
