"""`layerscan scan-layer FILE`: scan one layer blob and print its records as JSON."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from ..errors import SourceError, exit_codes_help
from ..scan import ENGINES, scan_layer
from ..scan.model import ScanOptions
from ..scan.rules import default_rules
from ..sources.files import map_file
from .options import add_scan_threads

NAME = "scan-layer"
HELP = "scan one layer blob (tar, tar+gzip, tar+zstd) and print its entries as JSON"
DESCRIPTION = (
    "Scan one layer blob in a single pass: every entry's attributes, MD5/SHA1/SHA256 "
    "of every regular file, whiteouts, and secrets. Prints one JSON document."
)
EPILOG = (
    "examples:\n"
    "  layerscan scan-layer blobs/sha256/HEX                 a layer of an OCI layout\n"
    "  layerscan scan-layer layer.tar --no-secrets --engine reference\n\n"
    "A blob that is not a valid layer (corrupt compression, malformed tar, a limit exceeded)\n"
    "exits 4; a file that cannot be read (missing, not a regular file, no permission) exits 7.\n"
    + textwrap.fill(exit_codes_help(), width=88)
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the layer blob")
    p.add_argument(
        "--compression",
        choices=("auto", "gzip", "zstd", "none"),
        default="auto",
        help="compression of the blob (default: detected from its magic bytes)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="native",
        help="native (fast, default) or reference (pure Python, the oracle)",
    )
    p.add_argument("--no-secrets", action="store_true", help="do not search for secrets")
    add_scan_threads(p, overrides_config=False)


def run(args: argparse.Namespace) -> int:
    options = ScanOptions(rules=() if args.no_secrets else tuple(default_rules()))
    with map_file(Path(args.file)) as data:
        if data is None:
            raise SourceError(f"{args.file}: no such file")
        result = scan_layer(
            data, options, engine=args.engine, compression=args.compression, name=args.file, threads=args.scan_threads
        )
    json.dump(result.to_json(), sys.stdout)
    sys.stdout.write("\n")
    return 0
