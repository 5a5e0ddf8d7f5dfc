"""The `layerscan` command. Each subcommand lives in a module of this package that exposes
NAME, HELP (its line in `layerscan --help`), DESCRIPTION, EPILOG (its own --help),
add_arguments(parser) and run(args); the parser sets `func` to its run."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ExitCode, LayerscanError, exit_codes_help
from . import analyze, batch, cache, scan_layer, serve, worker

COMMANDS = (analyze, cache, scan_layer, batch, worker, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerscan",
        description="Analyze container images: every file's digests and attributes, secrets, "
        "OS and library packages, in one streaming pass per layer.",
        epilog=f"{exit_codes_help()} Run 'layerscan COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"layerscan {__version__}")
    parser.add_argument("--debug", action="store_true", help="log verbosely and show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        # Each command's description and epilog (examples, exit codes) are laid out by hand: printed as written.
        p = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            epilog=module.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.ERROR if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="layerscan: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or ExitCode.OK)
    except LayerscanError as e:
        if args.debug:
            logging.exception("failed")
        print(f"layerscan: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def run() -> None:
    """The console entry point: main() tuned for a process that lives for one analysis, as mypy is.

    An analysis makes millions of small acyclic objects (file rows, package records, JSON text):
    the cyclic collector runs fewer, later collections (with the default thresholds it walked the
    growing heap again and again, ~3% of the CPU of a 1.25 GB image), and the process exits without
    tearing the heap down (~0.07 s on that image, after the report was written). Output still
    buffered is flushed first; files are closed and flocks die with the process; a closed output
    pipe is an exit code, not a traceback."""
    gc.set_threshold(200_000, 50, 50)
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `layerscan analyze --json ... | head`: the reader has what it wanted
        code = ExitCode.PIPE_CLOSED
    logging.shutdown()
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
