"""`layerscan analyze SOURCE`: analyze one image and write a report."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Callable, TextIO

from ..analysis import Analysis
from ..config import load_config
from ..image import Platform
from ..report import FORMATS
from ..scan import ENGINES, native_available

EPILOG = """\
sources:
  oci-dir:PATH           an OCI image layout directory
  oci-archive:FILE       a tar of an OCI image layout
  docker-archive:FILE    the output of 'docker save'
  PATH                   any of the above, detected by its content

examples:
  layerscan analyze oci-dir:./debian-apps                      JSON report on stdout
  layerscan analyze image.tar --format table                   a summary for humans
  layerscan analyze oci-dir:./app -o app.anchore.json --format anchore
                                                               Anchore Engine image export
  layerscan analyze app.tar --fail-on-secrets -o report.json   CI: exit 1 when a secret is found
  layerscan analyze oci-archive:multi.tar --platform linux/arm64/v8

exit codes: 0 ok, 1 secrets found (with --fail-on-secrets), 2 usage error,
3 or more: the image could not be analyzed (4 corrupt layer, 5 digest mismatch).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyze an image: files, digests, secrets, packages; write a report",
        description="Analyze one container image: stream every layer once (digests and attributes of "
        "every file, secrets), squash the layers, catalog OS and library packages, and write a report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", help="the image (see sources below)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report to FILE (replaced only once the report is complete); default stdout")
    p.add_argument("--format", choices=sorted(FORMATS), default="json",
                   help="json: layerscan JSON (default); anchore: Anchore Engine image export; table: summary")
    p.add_argument("--platform", type=_platform, metavar="OS/ARCH[/VARIANT]",
                   help="the platform to pick from a multi-platform index (default: the host's, then linux/amd64)")
    default_engine = "native" if native_available() else "reference"
    p.add_argument("--engine", choices=ENGINES, default=default_engine,
                   help=f"scan engine: native (fast) or reference (pure Python); default here: {default_engine}")
    p.add_argument("--config", metavar="config.yaml", help="Anchore-style config (secret rules, retrieve_files, ...)")
    p.add_argument("--fail-on-secrets", action="store_true",
                   help="exit 1 when any secret is found, including in deleted files (for CI)")
    p.add_argument("--json", action="store_true",
                   help="with -o, print a one-line JSON summary on stdout: report path, counts, exit code")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analyze import analyze  # here, so other commands never import the whole pipeline

    config = load_config(args.config)
    analysis = analyze(args.source, config, engine=args.engine, platform=args.platform)
    writer = FORMATS[args.format]
    if args.output:
        _write_atomically(args.output, lambda out: writer(analysis, out))
    else:
        writer(analysis, sys.stdout)
    secrets = [s for s in analysis.secrets if s.kind == "secret"]
    code = 1 if args.fail_on_secrets and secrets else 0
    if args.json and args.output:
        json.dump(_summary(analysis, args.output, args.format, code), sys.stdout)
        sys.stdout.write("\n")
    return code


def _summary(a: Analysis, path: str, fmt: str, code: int) -> dict:
    return {
        "report": path,
        "format": fmt,
        "manifest_digest": a.manifest_digest,
        "files": len(a.files),
        "packages": len(a.packages),
        "secrets": sum(1 for s in a.secrets if s.kind == "secret"),
        "warnings": len(a.warnings),
        "seconds": round(a.seconds, 3),
        "exit_code": code,
    }


def _platform(text: str) -> Platform:
    try:
        return Platform.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _write_atomically(path: str, write: Callable[[TextIO], None]) -> None:
    """Write to a temporary file beside `path`, then rename: a failure never leaves half a report."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".layerscan-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            write(out)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
