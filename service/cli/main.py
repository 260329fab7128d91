"""``painpath`` command line: ``triage FILE`` (one-screen summary + result Bundle), ``serve`` and
``subscribe`` (create PainPath's Subscriptions on a FHIR server, see ``service.cli.subscribe``).

Exit codes: 0 success, 2 bad input (the OperationOutcome is printed to stderr), 1 start-up
failure (e.g. an invalid knowledge file).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from service.cli.subscribe import add_parser as add_subscribe_parser
from service.cli.subscribe import run_subscribe
from service.clients.errors import UpstreamError
from service.domain.assessment import Assessment
from service.domain.errors import EvaluationError, KnowledgeError
from service.domain.knowledge import load_knowledge
from service.fhir.errors import InputError
from service.fhir.outcome import from_error
from service.fhir.request import read_triage_request
from service.fhir.triage import Engine, digest_of, resolve_options
from service.settings import get_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="painpath", description="PainPath back pain CDS")
    commands = parser.add_subparsers(dest="command", required=True)
    triage = commands.add_parser("triage", help="evaluate a FHIR Bundle file")
    triage.add_argument("file", type=Path)
    triage.add_argument("--as-of", help="evaluation date (FHIR dateTime); default now")
    triage.add_argument("--profile", help="guideline profile: nice-ng59 (default) or neupsig")
    triage.add_argument("--return", dest="return_mode", choices=["collection", "transaction"])
    triage.add_argument("-o", "--output", type=Path, help="write the result Bundle here")
    triage.add_argument("--json", action="store_true", help="print the result Bundle as JSON")
    add_subscribe_parser(commands)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    return parser


def _summary(assessment: Assessment) -> str:
    if not assessment.in_scope:
        return f"{assessment.subject}: out of scope ({', '.join(n.code for n in assessment.notes)})"
    lines = [
        f"Patient {assessment.subject}  (as of {assessment.as_of.date()}, profile "
        f"{assessment.profile}, rules {assessment.ruleset_version})",
        f"  Pain type: {assessment.value('pain-type')}  "
        f"(neuropathic component: {assessment.value('certainty')})",
        "  Red flags: " + (", ".join(f.code for f in assessment.red_flags) or "none"),
        "  Stages:    "
        + ", ".join(
            f"{s}={assessment.value('stage:' + s)}"
            for s in ("conservative", "injection", "surgical-referral")
        )
        + f"  -> recommended: {assessment.value('recommended-stage')}",
        "  Proposals: "
        + (", ".join(f"{p.service} ({p.priority})" for p in assessment.proposals) or "none"),
    ]
    lines += [f"  Note: {note.code}" for note in assessment.notes]
    return "\n".join(lines)


def _triage(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = Engine(load_knowledge())
    body = args.file.read_bytes()
    request = read_triage_request(
        body, max_bytes=settings.max_body_bytes, max_entries=settings.max_entries
    )
    raw = {"asOf": args.as_of, "profile": args.profile or settings.default_profile}
    raw["return"] = args.return_mode
    options = resolve_options(engine.kb, {**raw, **request.options}, now=datetime.now(UTC))
    result = engine.triage(request.bundle, options, digest=digest_of(body, options))
    encoded = orjson.dumps(result.bundle, option=orjson.OPT_INDENT_2)
    if args.output:
        args.output.write_bytes(encoded + b"\n")
    if args.json:
        sys.stdout.write(encoded.decode() + "\n")
    else:
        print("\n\n".join(_summary(a) for a in result.assessments))
        if args.output:
            print(f"\nResult Bundle written to {args.output}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # imported here: only the serve command needs the server

    settings = get_settings()
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level.lower(),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``painpath`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "subscribe":
            return run_subscribe(args, get_settings())
        return _triage(args) if args.command == "triage" else _serve(args)
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
