"""``make bench``: the six benchmarks, each printing ratios measured in the same run."""

from __future__ import annotations

import sys

from bench_bulk import bench_bulk
from bench_http import bench_http
from bench_inprocess import bench_inprocess, bench_scaling
from bench_memory import bench_memory
from bench_record import bench_record

if __name__ == "__main__":
    quick = "--quick" in sys.argv
    bench_inprocess(quick)
    bench_http(quick)
    bench_scaling(quick)
    bench_bulk(quick)
    bench_record(quick)
    bench_memory(quick)
