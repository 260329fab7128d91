"""Benchmark 6: peak memory of ``$triage`` on whole records, against the size of the body.

Each record is written to a file first; a fresh interpreter then loads the service, evaluates a
small Bundle (so imports, the knowledge base and the validators are resident: the baseline), reads
the record's bytes and runs the production path (``Pipeline.run_body`` with the default limits,
64 MiB and 50,000 entries) on them. It prints its resident set before the record and its peak
(``ru_maxrss``) after; the difference is what one request of that size costs a worker. Records:
the largest of the record benchmark (7,700 entries, ~16 MB) and one near the 64 MiB default
(25,000 entries, ~50 MiB).

    python bench/bench_memory.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
from make_record import make_record

_CHILD = r"""
import resource, sys
from datetime import UTC, datetime
from pathlib import Path
from service.app.pipeline import Pipeline
from service.domain.knowledge import load_knowledge
from make_record import make_record
import orjson

def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

now = datetime(2026, 11, 24, tzinfo=UTC)
pipeline = Pipeline(load_knowledge())
pipeline.run_body(orjson.dumps(make_record(1000, seed=1)), {"asOf": "2026-11-24"}, now=now)
baseline = rss_mib()
body = Path(sys.argv[1]).read_bytes()
result = pipeline.run_body(body, {"asOf": "2026-11-24"}, now=now)
assert result.bundle["resourceType"] == "Bundle"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{baseline:.1f} {peak:.1f}")
"""


def bench_memory(quick: bool = False) -> list[tuple[int, float, float, float]]:
    """Print and return (entries, body MiB, baseline MiB, peak MiB) per record."""
    print("\n== 6. peak memory of one whole-record $triage (fresh process; MiB)")
    print(f"{'entries':>8} {'body':>7} {'baseline':>9} {'peak':>7} {'added':>7} {'x body':>7}")
    rows = []
    sizes = [7_700] if quick else [7_700, 25_000]
    with tempfile.TemporaryDirectory() as tmp:
        for entries in sizes:
            path = Path(tmp) / f"record-{entries}.json"
            path.write_bytes(orjson.dumps(make_record(entries, seed=entries)))
            body = path.stat().st_size / 2**20
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            baseline, peak = float(out[0]), float(out[1])
            added = peak - baseline
            print(
                f"{entries:>8} {body:>7.1f} {baseline:>9.1f} {peak:>7.1f} {added:>7.1f} "
                f"{added / body:>6.1f}x"
            )
            rows.append((entries, body, baseline, peak))
    return rows


if __name__ == "__main__":
    bench_memory("--quick" in sys.argv)
