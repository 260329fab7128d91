"""Benchmarks 1 and 3: in-process ``$triage`` (bytes in -> result bytes out) and its scaling.

Each size is timed against, in the same run and on the same bytes:
- ``orjson.loads`` (the floor: parsing alone);
- the naive path: ``orjson.loads`` + fhir.resources R4B ``Bundle.model_validate`` of the whole
  input + the same evaluation + R4B ``Bundle.model_validate`` and ``model_dump_json`` of the
  output (what "validate everything with the models and dump models" costs).
Two ways, both printed. The table: the median of N calls of each variant in a tight loop, gc
disabled while timing (so ``orjson.loads`` reuses the memory its previous result freed - the
lowest floor). The line under it: interleaved rounds, each starting from a collected heap and
timing every variant once, so all see the same heap state, as a request does.

    python bench/bench_inprocess.py [--quick]
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from fhir.resources.R4B.bundle import Bundle
from make_bundle import make_bundle

from service.app.pipeline import Limits, Pipeline
from service.domain.knowledge import load_knowledge

AS_OF = "2026-11-24T10:00:00+01:00"
PIPELINE = Pipeline(load_knowledge(), limits=Limits(max_bytes=10**9, max_entries=10**6))
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def triage_bytes(body: bytes) -> bytes:
    """The production path, as ``POST /fhir/$triage`` runs it (minus HTTP)."""
    result = PIPELINE.run_body(body, {"asOf": AS_OF}, now=NOW)
    return orjson.dumps(result.bundle)


def naive_bytes(body: bytes) -> bytes:
    """Full model validation of input and output, and a model dump."""
    parsed = orjson.loads(body)
    Bundle.model_validate(parsed)
    options = PIPELINE.options({"asOf": AS_OF}, now=NOW)
    result = PIPELINE.evaluate(parsed, options)
    return Bundle.model_validate(result.bundle).model_dump_json().encode()


def median_ms(fn: Callable[[bytes], object], body: bytes, runs: int) -> float:
    """Median wall time of ``runs`` calls in a tight loop, in ms (one warm-up call first)."""
    fn(body)
    times = []
    gc.disable()
    try:
        for _ in range(runs):
            start = time.perf_counter()
            fn(body)
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return statistics.median(times) * 1000


def medians_ms(
    fns: dict[str, Callable[[bytes], object]], body: bytes, runs: dict[str, int]
) -> dict[str, float]:
    """Median wall time of each variant in ms, interleaved round by round (one warm-up each)."""
    for fn in fns.values():
        fn(body)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(max(runs.values())):
        gc.collect()
        gc.disable()
        try:
            for name, fn in fns.items():
                if round_ < runs[name]:
                    start = time.perf_counter()
                    fn(body)
                    times[name].append(time.perf_counter() - start)
        finally:
            gc.enable()
    return {name: statistics.median(spent) * 1000 for name, spent in times.items()}


def _runs(size: int, quick: bool) -> int:
    runs = max(5, min(200, 20000 // size))
    return max(3, runs // 4) if quick else runs


def bench_inprocess(quick: bool = False) -> None:
    """Benchmark 1: ratios against orjson.loads and the naive path at 50, 500, 2,000 entries."""
    print("== 1. in-process $triage, bytes in -> bytes out (median ms)")
    print(f"{'entries':>8} {'KiB':>6} {'orjson':>8} {'triage':>8} {'naive':>9} "
          f"{'triage/orjson':>14} {'naive/triage':>13}")  # fmt: skip
    targets = {50: 10.0, 2000: 4.0}
    fresh: list[str] = []
    for size in (50, 500, 2000):
        body = orjson.dumps(make_bundle(size))
        runs = _runs(size, quick)
        floor = median_ms(orjson.loads, body, runs)
        fast = median_ms(triage_bytes, body, runs)
        naive = median_ms(naive_bytes, body, max(3, runs // 4))
        target = f"  (target <= {targets[size]:g}x)" if size in targets else ""
        print(f"{size:>8} {len(body) // 1024:>6} {floor:>8.2f} {fast:>8.2f} {naive:>9.2f} "
              f"{fast / floor:>13.1f}x {naive / fast:>12.1f}x{target}")  # fmt: skip
        ms = medians_ms(
            {"orjson": orjson.loads, "triage": triage_bytes, "naive": naive_bytes},
            body,
            {"orjson": runs, "triage": runs, "naive": max(3, runs // 4)},
        )
        fresh.append(f"{size}: {ms['triage'] / ms['orjson']:.1f}x orjson, "
                     f"{ms['naive'] / ms['triage']:.1f}x faster than naive")  # fmt: skip
    print("   naive/triage target: >= 10x")
    print("   interleaved rounds from a collected heap: " + "; ".join(fresh))


def bench_scaling(quick: bool = False) -> None:
    """Benchmark 3: time per entry from 50 to 10,000 entries (linear = flat per-entry cost)."""
    print("\n== 3. scaling: $triage time per entry")
    print(f"{'entries':>8} {'ms':>9} {'us/entry':>9} {'orjson us/entry':>16} {'x orjson':>9}")
    per_entry = []
    for size in (50, 200, 1000, 2000, 5000, 10000):
        body = orjson.dumps(make_bundle(size))
        runs = max(3, _runs(size, quick) // 2)
        fast = median_ms(triage_bytes, body, runs)
        floor = median_ms(orjson.loads, body, runs)
        per_entry.append((size, fast * 1000 / size))
        print(f"{size:>8} {fast:>9.2f} {fast * 1000 / size:>9.1f} {floor * 1000 / size:>16.2f} "
              f"{fast / floor:>8.1f}x")  # fmt: skip
    big = [cost for size, cost in per_entry if size >= 1000]
    print(
        f"   per-entry cost 1,000..10,000: max/min = {max(big) / min(big):.2f} "
        "(1.00 = perfectly linear; fixed costs dominate below ~1,000 entries)"
    )


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    bench_inprocess(quick)
    if "--no-scaling" not in sys.argv:
        bench_scaling(quick)
