"""The `layerscan` command. Each subcommand lives in a module of this package
that exposes `register(subparsers)`; the parser sets `func` to run it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import LayerscanError
from . import analyze, batch, cache, scan_layer, serve, worker

COMMANDS = (analyze, cache, scan_layer, batch, worker, serve)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerscan",
        description="Analyze container images: every file's digests and attributes, secrets, "
        "OS and library packages, in one streaming pass per layer.",
        epilog="Exit codes: 0 ok, 1 findings (with --fail-on-secrets), 2 usage error, "
        "3 or more: the input could not be analyzed (4 corrupt layer, 5 digest mismatch, "
        "6 registry authentication, 7 unreadable source). "
        "Run 'layerscan COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"layerscan {__version__}")
    parser.add_argument("--debug", action="store_true", help="log verbosely and show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.ERROR if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="layerscan: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except LayerscanError as e:
        if args.debug:
            logging.exception("failed")
        print(f"layerscan: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
