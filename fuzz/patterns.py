"""Writes the built-in secret rules' patterns, one a line, for the fuzz target.

    python fuzz/patterns.py OUT_FILE

fuzz_scan.c reads them from rules.txt beside its binary and builds the Hyperscan
database the way the extension does, so the prefilter is fuzzed with real rules.
"""

from __future__ import annotations

import sys
from pathlib import Path

from layerscan.scan.rules import default_rules


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    patterns = [r.pattern for r in default_rules()]
    bad = [p for p in patterns if "\n" in p or "\0" in p]
    if bad:
        raise SystemExit(f"patterns.py: a pattern holds a newline or NUL, which rules.txt cannot carry: {bad[0]!r}")
    Path(sys.argv[1]).write_text("".join(p + "\n" for p in patterns), encoding="utf-8", errors="surrogateescape")


if __name__ == "__main__":
    main()
