"""``repocheck``: the static checks of the cluster side, from the command line.

    uv run repocheck                 # every kustomization under k8s/, all checks
    uv run repocheck --list          # the checks and what each verifies
    CRD_SCHEMA_LOCATION=../shared/crd-schemas uv run repocheck   # offline

Prints one line per problem (naming the object) and a summary line; exit
status 0 when everything passes, 1 when a check fails, 2 when the manifests
cannot be rendered at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from repocheck import suite
from repocheck.k8s.manifests import REPO_ROOT, RenderError
from repocheck.k8s.schemas import CRD_SCHEMA_ENV, CrdSchemas


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repocheck",
        description="Static checks of k8s/: render, strict schema validation, cross-checks.",
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    parser.add_argument(
        "--crd-schemas",
        metavar="LOCATION",
        help=f"directory or URL of the CRD JSON schemas (default: ${CRD_SCHEMA_ENV}, "
        "else the public CRDs catalogue)",
    )
    parser.add_argument(
        "--no-tilt",
        action="store_true",
        help="skip evaluating the Tiltfile (no tiltfile check; the image check then fails)",
    )
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for name, check in suite.CROSS_CHECKS.items():
            summary = (check.__doc__ or "").strip().splitlines()[0]
            print(f"{name:26} {summary}")
        print(
            f"{suite.TILTFILE_CHECK:26} The Tiltfile as Tilt loads it: builtins, keywords, "
            "argument types, duplicate image refs, builds, live_update, resources."
        )
        return 0
    try:
        report = suite.run(
            args.root.resolve(), CrdSchemas(args.crd_schemas), with_tilt=not args.no_tilt
        )
    except RenderError as error:
        print(f"repocheck: {error}", file=sys.stderr)
        return 2
    failed = 0
    for name, problems in report.problems.items():
        for problem in problems:
            print(f"{name}: {problem}")
        failed += bool(problems)
    total = len(report.problems)
    print(f"repocheck: {total - failed} of {total} checks passed")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
