"""Benchmark 5: in-process ``$triage`` on whole patient records against ``orjson.loads``.

Synthea-shaped records from ``make_record`` (1,000..7,700 entries, about 2..15 MB; Claims,
ExplanationOfBenefits and Encounters dominating, the clinical entries rare). For each record, the
median of N tight-loop calls (gc disabled while timing, as benchmark 1) of the production path,
bytes in -> result bytes out, and of ``orjson.loads`` of the same bytes; the line under the table
is the median ratio over the records (target: at most 2x).

    python bench/bench_record.py [--quick]
"""

from __future__ import annotations

import statistics
import sys

import orjson
from bench_inprocess import median_ms, triage_bytes
from make_record import make_record, population

TARGET = 2.0


def bench_record(quick: bool = False) -> float:
    """Print the per-record table and return the median ratio $triage / orjson.loads."""
    print("\n== 5. whole patient records (Synthea-shaped): $triage vs orjson.loads (median ms)")
    print(f"{'entries':>8} {'MB':>6} {'orjson':>8} {'triage':>8} {'ratio':>7}")
    ratios, spent = [], []
    for seed, entries in population(4 if quick else 8):
        body = orjson.dumps(make_record(entries, seed=seed))
        runs = 3 if quick else 7
        floor = median_ms(orjson.loads, body, runs)
        fast = median_ms(triage_bytes, body, runs)
        ratios.append(fast / floor)
        spent.append(fast)
        print(
            f"{entries:>8} {len(body) / 1e6:>6.1f} {floor:>8.1f} {fast:>8.1f} {fast / floor:>6.2f}x"
        )
    ratio = statistics.median(ratios)
    print(
        f"   median over the records: {ratio:.2f}x orjson.loads (target <= {TARGET:g}x), "
        f"$triage median {statistics.median(spent):.0f} ms"
    )
    return ratio


if __name__ == "__main__":
    bench_record("--quick" in sys.argv)
