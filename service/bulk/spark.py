"""``painpath bulk`` on Apache Spark (extra ``painpath[spark]``): the same pipeline per patient.

    python -m service.bulk.spark INPUT OUTPUT --as-of 2026-11-24T09:00:00Z [--master local[4]]

Spark reads the export's NDJSON lines (an export directory or one mixed file; any path Spark can
read), keys each line by its patient (``partition.patient_of``), and ``groupBy(patient)
.applyInPandas`` hands each patient's lines to ``evaluate.evaluate_patient``, the function the
local runner uses, so every output line is the one ``painpath bulk`` writes. Output, one Spark
directory per file of the local run, lines in no particular order:

    OUTPUT/type=CarePlan/part-*.txt ... type=OperationOutcome/, type=errors/ (NDJSON lines)
    OUTPUT/type=summary/part-*.txt     summary.csv rows without the header (SUMMARY_HEADER)

A line that names no patient becomes an errors line whose ``source`` is its file name (Spark does
not number lines). Resuming is Spark's: failed tasks are retried; a failed job is re-run whole
into an empty OUTPUT (Spark refuses to overwrite one).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast

import orjson

from service.app.pipeline import Pipeline
from service.bulk.evaluate import evaluate_patient, with_medications
from service.bulk.partition import input_files, is_medication, not_an_error, patient_of, rejection
from service.domain.knowledge import load_knowledge
from service.fhir.errors import InputError
from service.fhir.outcome import from_error
from service.fhir.types import Json
from service.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

__all__ = ["run_spark_bulk", "spark_session"]

_KEYED = "patient string, line string"
_LINES = "line string"
_OUTPUT = "type string, line string"
_PIPELINE: Pipeline | None = None


def spark_session(master: str = "local[*]", *, shuffle_partitions: int = 16) -> SparkSession:
    """A Spark session whose Python workers use this interpreter (and so this installation)."""
    from pyspark.sql import SparkSession  # optional extra, imported on use

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder: Any = SparkSession.builder
    session = (
        builder.master(master)
        .appName("painpath-bulk")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .getOrCreate()
    )
    # cast, not an ignore: mypy sees pyspark's types only where the extra is installed
    return cast("SparkSession", session)


def _key(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """(value, source) lines -> (patient, line); a line naming no patient -> (None, error line)."""
    import pandas as pd  # runs in the Spark Python worker

    for frame in frames:
        patients: list[str | None] = []
        lines: list[str] = []
        for value, source in zip(frame["value"], frame["source"], strict=True):
            try:
                resource = orjson.loads(value)
            except orjson.JSONDecodeError:
                resource = None
            patient = patient_of(resource)
            if patient is None and not_an_error(resource):
                continue  # about no patient, a type the rules never read: not an error line
            patients.append(patient)
            name = PurePosixPath(str(source)).name
            lines.append(value if patient else rejection(name, resource).decode())
        yield pd.DataFrame({"patient": patients, "line": lines})


def _medication_lines(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The export's Medication lines (about no patient; MedicationRequests refer to them)."""
    import pandas as pd  # runs in the Spark Python worker

    for frame in frames:
        kept = []
        for value in frame["value"]:
            try:
                resource = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if is_medication(resource):
                kept.append(value)
        yield pd.DataFrame({"line": pd.Series(kept, dtype="string")})


def _evaluate(
    frame: pd.DataFrame, *, as_of: datetime, profile: str, medications: dict[str, Json]
) -> pd.DataFrame:
    """One patient's lines -> its output lines (``type``: output file, ``line``: its text)."""
    import pandas as pd  # runs in the Spark Python worker

    global _PIPELINE  # one compiled knowledge base per Spark Python worker
    patient = frame["patient"].iloc[0]
    if not isinstance(patient, str):  # the group of lines that name no patient
        return pd.DataFrame({"type": ["errors"] * len(frame), "line": list(frame["line"])})
    if _PIPELINE is None:
        _PIPELINE = Pipeline(load_knowledge())
    resources = with_medications([orjson.loads(line) for line in frame["line"]], medications)
    result = evaluate_patient(_PIPELINE, patient, resources, as_of, profile)
    types = [name for name, _ in result.lines]
    lines = [line.decode() for _, line in result.lines]
    for row in result.rows:
        text = io.StringIO()
        csv.writer(text).writerow(row)
        types.append("summary")
        lines.append(text.getvalue().rstrip("\r\n"))
    return pd.DataFrame({"type": types, "line": lines})


def run_spark_bulk(
    spark: SparkSession, source: Path, output: Path, *, as_of: datetime, profile: str
) -> None:
    """Evaluate the export at ``source`` into ``output`` (must not exist) on ``spark``."""
    from pyspark.sql import functions as F  # noqa: N812 - optional extra

    paths = [str(p) for p in input_files(source)]
    lines = spark.read.text(paths).withColumn("source", F.input_file_name())
    present = lines.where(F.trim("value") != "")
    # the Medications (one per product: few) go to every task with the function, as the local
    # runner holds them once per partition
    medications: dict[str, Json] = {}
    for row in present.select("value").mapInPandas(_medication_lines, _LINES).collect():
        resource = orjson.loads(row["line"])
        medications[f"Medication/{resource['id']}"] = resource
    keyed = present.mapInPandas(_key, _KEYED)
    # a lambda, not functools.partial: Spark reads the function's type hints and has none here
    results = keyed.groupBy("patient").applyInPandas(
        lambda frame: _evaluate(frame, as_of=as_of, profile=profile, medications=medications),
        _OUTPUT,
    )
    results.write.partitionBy("type").text(str(output))


def main(argv: list[str] | None = None) -> int:
    """``python -m service.bulk.spark INPUT OUTPUT --as-of DATETIME``."""
    parser = argparse.ArgumentParser(prog="python -m service.bulk.spark", description=__doc__)
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--as-of", required=True, help="evaluation date (FHIR dateTime)")
    parser.add_argument("--profile", help="guideline profile; default: the configured one")
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args(argv)
    # the options resolution of every other entry point (painpath bulk, $triage): the as-of in
    # UTC, the profile checked and defaulted; refused before a Spark session starts
    flags = {"asOf": args.as_of, "profile": args.profile}
    try:
        options = Pipeline.from_settings(get_settings()).options(flags, now=datetime.now(UTC))
    except InputError as exc:
        sys.stderr.write(orjson.dumps(from_error(exc), option=orjson.OPT_INDENT_2).decode() + "\n")
        return 2
    spark = spark_session(args.master)
    try:
        run_spark_bulk(spark, args.input, args.output, as_of=options.as_of, profile=options.profile)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
