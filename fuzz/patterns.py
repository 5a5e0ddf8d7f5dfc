"""Writes the built-in secret rules' patterns, one a line, and the catalogers' capture
globs as the program ext/glob.c runs, for the fuzz target.

    python fuzz/patterns.py RULES_FILE GLOBS_FILE

fuzz_scan.c reads them from rules.txt and globs.bin beside its binary and builds the
Hyperscan database and the glob matcher the way the extension does, so the prefilter and
capture are fuzzed with the real rules and globs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from layerscan.catalog import capture_globs
from layerscan.scan.globs import native_program
from layerscan.scan.rules import default_rules


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    patterns = [r.pattern for r in default_rules()]
    bad = [p for p in patterns if "\n" in p or "\0" in p]
    if bad:
        raise SystemExit(f"patterns.py: a pattern holds a newline or NUL, which rules.txt cannot carry: {bad[0]!r}")
    Path(sys.argv[1]).write_text("".join(p + "\n" for p in patterns), encoding="utf-8", errors="surrogateescape")
    Path(sys.argv[2]).write_bytes(native_program(capture_globs()))


if __name__ == "__main__":
    main()
