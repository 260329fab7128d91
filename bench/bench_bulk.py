"""Benchmark 4: ``painpath bulk`` patients per second and peak RSS, 10,000 vs 100,000 patients.

Each size: a synthetic export (make_bundle.write_export, 12 resources per patient) is evaluated by
``painpath bulk`` in a child process on all cores; the peak RSS is the largest of that process and
its workers (``RUSAGE_CHILDREN``, read in a fresh helper process per size so sizes don't mix).

    python bench/bench_bulk.py [--quick]      (--quick: 2,000 vs 20,000 patients)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from make_bundle import write_export

_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stderr=subprocess.DEVNULL)
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _run(export: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB of the largest process) of one bulk run."""
    painpath = str(Path(sys.executable).with_name("painpath"))
    command = [painpath, "bulk", str(export), str(out), "--as-of", "2026-11-24T10:00:00+01:00"]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds, kib = done.stdout.split()
    return float(seconds), int(kib) / 1024


def bench_bulk(quick: bool = False) -> None:
    """Print patients/s and peak RSS per size, and the RSS ratio (target <= 1.5x)."""
    sizes = (2_000, 20_000) if quick else (10_000, 100_000)
    print("\n== 4. bulk: painpath bulk on all cores")
    print(f"{'patients':>9} {'MiB in':>7} {'seconds':>8} {'patients/s':>11} {'peak RSS MiB':>13}")
    peaks = []
    with tempfile.TemporaryDirectory(prefix="painpath-bench-") as tmp:
        for size in sizes:
            export = Path(tmp) / f"export{size}"
            write_export(export, size)
            megabytes = sum(p.stat().st_size for p in export.iterdir()) / 2**20
            seconds, peak = _run(export, Path(tmp) / f"out{size}")
            peaks.append(peak)
            print(f"{size:>9} {megabytes:>7.0f} {seconds:>8.1f} {size / seconds:>11.0f} "
                  f"{peak:>13.0f}")  # fmt: skip
            for path in export.iterdir():
                path.unlink()
    print(f"   peak RSS {sizes[1]:,} / {sizes[0]:,} patients = {peaks[1] / peaks[0]:.2f}x "
          "(target <= 1.5x)")  # fmt: skip


if __name__ == "__main__":
    bench_bulk("--quick" in sys.argv)
