"""``painpath`` command line: ``triage FILE`` (coloured one-screen summary + result Bundle),
``explain FILE`` (the full decision trace as a tree; ``--json``: the trace as JSON;
``--for-patient``: the plain-language patient explanation), ``serve`` and
``subscribe`` (create PainPath's Subscriptions on a FHIR server, see ``service.cli.subscribe``).

Exit codes: 0 success, 2 bad input (the OperationOutcome is printed to stderr), 1 start-up
failure (e.g. an invalid knowledge file).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console

from service import __version__
from service.app.pipeline import Pipeline
from service.app.view import trace_view
from service.bulk.runner import BulkOptions, run_bulk
from service.cli.render import print_explanation, print_summary, print_tree
from service.cli.subscribe import add_parser as add_subscribe_parser
from service.cli.subscribe import run_subscribe
from service.conformance.store import ConformanceStore, default_profiles_dir
from service.domain.errors import EvaluationError, KnowledgeError
from service.domain.knowledge import load_knowledge
from service.fhir.errors import InputError
from service.fhir.outcome import from_error
from service.server.errors import UpstreamError
from service.settings import check_bind, get_settings

__all__ = ["main"]


_PROFILE_HELP = "guideline profile: nice-ng59 (default) or neupsig"
_AS_OF_HELP = "evaluation date and time (FHIR dateTime, e.g. 2026-03-01); default: now"


def _evaluation_options(command: argparse.ArgumentParser) -> None:
    """The options of every command that evaluates: the evaluation date and the profile."""
    command.add_argument("--as-of", help=_AS_OF_HELP)
    command.add_argument("--profile", help=_PROFILE_HELP)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="painpath",
        description="PainPath: FHIR R4 clinical decision support for back pain. Settings come "
        "from PAINPATH_* environment variables and a .env file in the working directory "
        "(docs/configuration.md).",
    )
    parser.add_argument("--version", action="version", version=f"painpath {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    triage = commands.add_parser(
        "triage",
        help="evaluate a FHIR Bundle file",
        description="Evaluate one patient's FHIR Bundle (or $triage Parameters) from a file and "
        "print a one-screen summary (--json: the result Bundle).",
    )
    triage.add_argument("file", type=Path, help="FHIR R4 Bundle or Parameters, as JSON")
    _evaluation_options(triage)
    triage.add_argument(
        "--return",
        dest="return_mode",
        choices=["collection", "transaction"],
        help="result Bundle type (default: collection)",
    )
    triage.add_argument("-o", "--output", type=Path, help="write the result Bundle here")
    triage.add_argument("--json", action="store_true", help="print the result Bundle as JSON")
    explain = commands.add_parser(
        "explain",
        help="print the full decision trace as a tree",
        description="Evaluate a FHIR Bundle file and print every rule that fired, with the "
        "evidence it used, as a tree (--json: the trace as JSON).",
    )
    explain.add_argument("file", type=Path, help="FHIR R4 Bundle or Parameters, as JSON")
    _evaluation_options(explain)
    explain.add_argument("--all-rules", action="store_true", help="list rules that did not fire")
    explain.add_argument("--json", action="store_true", help="print the trace as JSON")
    explain.add_argument(
        "--for-patient", action="store_true", help="print the plain-language patient explanation"
    )
    add_subscribe_parser(commands)
    bulk = commands.add_parser(
        "bulk",
        help="evaluate a Bulk Data $export (NDJSON) population",
        description="Evaluate every patient of a Bulk Data $export (NDJSON files) and write one "
        "result per patient; a re-run resumes where the last one stopped.",
    )
    bulk.add_argument("input", type=Path, help="export directory (<Type>.ndjson) or one NDJSON")
    bulk.add_argument("output", type=Path, help="result directory (a re-run resumes)")
    _evaluation_options(bulk)
    bulk.add_argument("--workers", type=int, help="processes (default: all cores; 0: inline)")
    serve = commands.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Serve the FHIR API, CDS Hooks, the web page (/) and the API docs (/docs) "
        "under uvicorn. Refuses to start when the conformance package or the knowledge files "
        "cannot be loaded.",
    )
    serve.add_argument("--host", help="interface to bind (default: PAINPATH_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: PAINPATH_PORT, 8080)")
    return parser


def _triage(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_settings(get_settings())
    flags = {"asOf": args.as_of, "profile": args.profile}
    flags["return"] = getattr(args, "return_mode", None)
    result = pipeline.run_body(args.file.read_bytes(), flags, now=datetime.now(UTC))
    if args.command == "explain":
        view = trace_view(pipeline, result)
        if args.json:
            sys.stdout.write(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode() + "\n")
        elif args.for_patient:
            print_explanation(Console(), view)
        else:
            print_tree(Console(), view, all_rules=args.all_rules)
        return 0
    encoded = orjson.dumps(result.bundle, option=orjson.OPT_INDENT_2)
    if args.output:
        args.output.write_bytes(encoded + b"\n")
    if args.json:
        sys.stdout.write(encoded.decode() + "\n")
    else:
        print_summary(Console(), trace_view(pipeline, result))
        if args.output:
            print(f"\nResult Bundle written to {args.output}")
    return 0


def _bulk(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_settings(get_settings())
    flags = {"asOf": args.as_of, "profile": args.profile}
    resolved = pipeline.options(flags, now=datetime.now(UTC))
    workers = os.cpu_count() or 1 if args.workers is None else args.workers
    info = run_bulk(args.input, args.output, BulkOptions(resolved.as_of, resolved.profile, workers))
    not_used = info.get("notUsed")
    counts = not_used.items() if isinstance(not_used, dict) else ()
    unused = ", ".join(f"{rtype} {count}" for rtype, count in counts) or "none"
    print(
        f"{info['patients']} patients, {info['resources']} resources, "
        f"{info['rejected']} lines rejected -> {args.output}\n"
        f"not about a patient, not used by the rules (counted, not errors): {unused}",
        file=sys.stderr,
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # imported here: only the serve command needs the server

    settings = get_settings()
    host = args.host or settings.host
    check_bind(settings, host)  # no unauthenticated API off loopback
    # what the app's start-up loads, checked here so that a missing directory is one clear line
    # (exit 1) instead of a worker's traceback
    load_knowledge()
    ConformanceStore.load(settings.profiles_dir or default_profiles_dir())
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=host,
        port=args.port or settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        access_log=False,  # PainPath logs each request itself, without raw paths (patient ids)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``painpath`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "subscribe":
            return run_subscribe(args, get_settings())
        command = {"bulk": _bulk, "serve": _serve}.get(args.command, _triage)
        return command(args)
    except InputError as exc:
        sys.stderr.write(orjson.dumps(from_error(exc), option=orjson.OPT_INDENT_2).decode() + "\n")
        return 2
    except EvaluationError as exc:
        sys.stderr.write(f"painpath: cannot evaluate: {exc}\n")
        return 2
    except UpstreamError as exc:
        sys.stderr.write(f"painpath: {exc.describe()}\n")
        return 1
    except (KnowledgeError, OSError) as exc:
        sys.stderr.write(f"painpath: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
