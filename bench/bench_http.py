"""Benchmark 2: HTTP throughput and p50/p99 of ``POST /fhir/$triage`` against a bare endpoint.

Production settings: uvicorn, 2 worker processes, access log off, on 127.0.0.1 (a free port).
The bare endpoint ``/bench/echo`` (bench_app.py) is served by the same server; it only parses and
re-serialises the same body. Concurrent httpx clients send a fixed number of requests each.

    python bench/bench_http.py [--quick]
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from make_bundle import make_bundle

BENCH = Path(__file__).parent
CONCURRENCY = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "bench_app:create_bench_app", "--factory",
        "--app-dir", str(BENCH), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    # production logging stays on (it is part of the cost); its lines are not shown
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_ready(base: str, deadline: float = 60.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


async def _load(base: str, path: str, body: bytes, requests: int) -> tuple[float, list[float]]:
    """(requests per second, latencies in ms) for ``requests`` POSTs from CONCURRENCY clients."""
    headers = {"content-type": "application/fhir+json"}
    latencies: list[float] = []

    async def client(count: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
            for _ in range(count):
                start = time.perf_counter()
                response = await http.post(path, content=body, headers=headers)
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")

    per_client = max(1, requests // CONCURRENCY)
    start = time.perf_counter()
    await asyncio.gather(*(client(per_client) for _ in range(CONCURRENCY)))
    return len(latencies) / (time.perf_counter() - start), latencies


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench_http(quick: bool = False) -> None:
    """Print req/s, p50 and p99 of $triage and of the bare endpoint, and their ratio."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(port)
    try:
        _wait_ready(base)
        print(f"\n== 2. HTTP, uvicorn 2 workers, {CONCURRENCY} concurrent clients, 127.0.0.1")
        print(f"{'entries':>8} {'endpoint':>10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for size, requests in ((50, 800), (500, 160), (2000, 48)):
            body = orjson.dumps(make_bundle(size))
            requests = max(CONCURRENCY, requests // (4 if quick else 1))
            results = {}
            for name, path in (("bare", "/bench/echo"), ("$triage", "/fhir/$triage")):
                asyncio.run(_load(base, path, body, CONCURRENCY))  # warm both workers
                rate, latencies = asyncio.run(_load(base, path, body, requests))
                results[name] = rate
                print(f"{size:>8} {name:>10} {rate:>8.1f} {_pct(latencies, 0.5):>8.1f} "
                      f"{_pct(latencies, 0.99):>8.1f}")  # fmt: skip
            share = results["$triage"] / results["bare"]
            print(f"{'':>8} $triage throughput = {share:.0%} of bare (target >= 50%)")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    bench_http("--quick" in sys.argv)
