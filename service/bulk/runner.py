"""``painpath bulk INPUT OUTPUT``: partition -> evaluate on all cores -> merge, resumable.

    OUTPUT/.work/parts/NNNN.ndjson     step 1, then the marker .work/partitioned.json
    OUTPUT/.work/done/NNNN/            step 2, one directory per evaluated partition, written in
                                       .work/tmp/ and renamed here only when complete (the marker)
    OUTPUT/<Type>.ndjson, summary.csv, errors.ndjson   step 3, each written to .tmp and renamed

A crash leaves at most a ``.tmp`` directory or file behind; the next run discards those, skips the
finished partitions and evaluates the rest, so no output line is ever written twice. The run's
``as_of`` is stored with the partition marker: a resumed run evaluates on the same date.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import orjson

from service.app.pipeline import Pipeline
from service.bulk.evaluate import OUTPUT_TYPES, SUMMARY_HEADER, PartitionJob, evaluate_partition
from service.bulk.partition import MEDICATIONS, input_files, partition_count, partition_export
from service.domain.knowledge import load_knowledge

__all__ = ["BulkOptions", "run_bulk"]


@dataclass(frozen=True, slots=True)
class BulkOptions:
    """How to run: evaluation date, profile, worker processes (0 = in this process)."""

    as_of: datetime
    profile: str
    workers: int = os.cpu_count() or 1


def _partition(source: Path, work: Path, options: BulkOptions) -> dict[str, object]:
    marker = work / "partitioned.json"
    if marker.exists():
        stored: dict[str, object] = orjson.loads(marker.read_bytes())
        return stored
    shutil.rmtree(work, ignore_errors=True)  # a crash mid-partitioning: start over
    work.mkdir(parents=True)
    files = input_files(source)
    count = partition_count(files, minimum=_MIN_PARTITIONS)
    with (work / "rejected.ndjson").open("wb") as errors:
        found = partition_export(files, work / "parts", partitions=count, errors=errors)
    info = {
        "partitions": found.partitions, "patients": found.patients,
        "resources": found.resources, "rejected": found.rejected, "notUsed": found.not_used,
        "medications": found.medications,
        "asOf": options.as_of.isoformat(), "profile": options.profile,
    }  # fmt: skip
    _atomic_write(marker, orjson.dumps(info))
    return info


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# fixed, not per core: the partitioning (and so the output order) is the same on every machine
_MIN_PARTITIONS = 16
_PIPELINE: Pipeline | None = None


def _worker_run(job: PartitionJob) -> tuple[str, int]:
    """Evaluate one partition in a worker (the pipeline is built once per process)."""
    global _PIPELINE  # one compiled knowledge base per worker process
    if _PIPELINE is None:
        _PIPELINE = Pipeline(load_knowledge())
    return _complete(_PIPELINE, job)


def _complete(pipeline: Pipeline, job: PartitionJob) -> tuple[str, int]:
    tmp = job.target.parent.parent / "tmp" / job.target.name  # same filesystem: rename is atomic
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(exist_ok=True)
    count = evaluate_partition(pipeline, replace(job, target=tmp))
    (tmp / "patients").write_text(str(count))
    tmp.rename(job.target)  # the completion marker: atomic on one filesystem
    return job.target.name, count


class Progress:
    """``patients done/total, rate, ETA`` on stderr: redrawn in place (``\\r`` frames) on a
    terminal; elsewhere (a log file, CI) a plain line at most every ``PLAIN_EVERY_S`` seconds and
    at the end, so a captured stderr holds no control characters."""

    PLAIN_EVERY_S = 10.0

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.start = time.monotonic()
        isatty = getattr(stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.last_plain: float | None = None

    def advance(self, patients: int) -> None:
        """Count finished patients and redraw."""
        self.done += patients
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else 0.0
        share = self.done / self.total if self.total else 1.0
        if self.terminal:
            bar = "#" * int(share * 30)
            self.stream.write(
                f"\rbulk [{bar:<30}] {self.done}/{self.total} patients {rate:,.0f}/s "
                f"ETA {eta:,.0f}s "
            )
        else:
            now = time.monotonic()
            finished = self.done >= self.total
            due = self.last_plain is None or now - self.last_plain >= self.PLAIN_EVERY_S
            if not (due or finished):
                return
            self.last_plain = now
            self.stream.write(
                f"bulk: {self.done}/{self.total} patients ({share:.0%}), {rate:,.0f}/s, "
                f"ETA {eta:,.0f}s\n"
            )
        self.stream.flush()


def _jobs(work: Path, info: dict[str, object]) -> list[PartitionJob]:
    done = work / "done"
    done.mkdir(exist_ok=True)
    shutil.rmtree(work / "tmp", ignore_errors=True)  # partitions a crash left half-written
    as_of = datetime.fromisoformat(str(info["asOf"]))
    jobs = []
    for part in sorted((work / "parts").glob("*.ndjson")):
        target = done / part.stem
        if not target.exists():
            jobs.append(PartitionJob(part, target, as_of, str(info["profile"]), work / MEDICATIONS))
    return jobs


def _evaluate(jobs: list[PartitionJob], options: BulkOptions, progress: Progress) -> None:
    if options.workers <= 0:
        pipeline = Pipeline(load_knowledge())
        _report(progress, (_complete(pipeline, job) for job in jobs))
        return
    context = multiprocessing.get_context("spawn")  # no inherited state, same on every OS
    with context.Pool(options.workers) as pool:
        _report(progress, pool.imap_unordered(_worker_run, jobs))


def _report(progress: Progress, finished: Iterable[tuple[str, int]]) -> None:
    for _name, count in finished:
        progress.advance(count)


def _merge(work: Path, output: Path) -> None:
    parts = sorted((work / "done").iterdir())
    for name in [*OUTPUT_TYPES, "errors"]:
        tmp = output / f"{name}.ndjson.tmp"
        with tmp.open("wb") as out:
            if name == "errors":
                _copy(work / "rejected.ndjson", out)
            for part in parts:
                _copy(part / f"{name}.ndjson", out)
        tmp.replace(output / f"{name}.ndjson")
    tmp = output / "summary.csv.tmp"
    with tmp.open("w", newline="") as out:
        csv.writer(out).writerow(SUMMARY_HEADER)
        for part in parts:
            out.write((part / "summary.csv").read_text())
    tmp.replace(output / "summary.csv")


def _copy(source: Path, out: BinaryIO) -> None:
    with source.open("rb") as handle:
        shutil.copyfileobj(handle, out)


def run_bulk(source: Path, output: Path, options: BulkOptions) -> dict[str, object]:
    """Run (or resume) a bulk evaluation; returns the partitioning counts."""
    work = output / ".work"
    output.mkdir(parents=True, exist_ok=True)
    info = _partition(source, work, options)
    jobs = _jobs(work, info)
    progress = Progress(int(str(info["patients"])))
    progress.done = sum(int((d / "patients").read_text()) for d in (work / "done").iterdir())
    _evaluate(jobs, options, progress)
    sys.stderr.write("\n")
    _merge(work, output)
    shutil.rmtree(work)
    return info
