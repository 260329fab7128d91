"""``python -m tools.conformance_package build|check|vendor-base``: builds ``fhir_profiles/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.conformance.store import default_profiles_dir
from service.domain.knowledge import load_knowledge
from tools.conformance_package.base import vendor_base
from tools.conformance_package.package import build_package, check_package, write_package

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.conformance_package", description=__doc__
    )
    parser.add_argument("command", choices=["build", "check", "vendor-base"])
    parser.add_argument(
        "source", nargs="?", type=Path, help="vendor-base: an R4 profiles-resources.json"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=default_profiles_dir(),
        help="the package directory (default: fhir_profiles/)",
    )
    parser.add_argument(
        "--samples",
        type=Path,
        default=default_profiles_dir().parent / "samples",
        help="the sample inputs the examples are made from",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 on success, 1 when ``check`` finds a difference."""
    args = _parser().parse_args(argv)
    out = sys.stdout
    if args.command == "vendor-base":
        if args.source is None:
            _parser().error("vendor-base needs the path of profiles-resources.json")
        out.write(f"wrote {vendor_base(args.source)}\n")
        return 0
    files = build_package(load_knowledge(), root=args.root, samples=args.samples)
    if args.command == "check":
        problems = check_package(files, args.root)
        out.write("".join(f"{p}\n" for p in problems) or "fhir_profiles/ is up to date\n")
        if problems:
            out.write("run: python -m tools.conformance_package build\n")
        return 1 if problems else 0
    changed = write_package(files, args.root)
    out.write(f"{len(files)} files in {args.root}; {len(changed)} changed\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
