"""`make demo`: analyze the bundled sample image, print the summary, write the full reports.

The same as running
    layerscan analyze oci-dir:examples/sample-image --format table
    layerscan analyze oci-dir:examples/sample-image -o build/demo/sample-image.json
    layerscan analyze oci-dir:examples/sample-image -o build/demo/sample-image.anchore.json --format anchore
but with one analysis instead of three.
"""

from __future__ import annotations

import sys
from pathlib import Path

from layerscan.config import Config
from layerscan.pipeline import analyze
from layerscan.report import FORMATS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample-image"
OUT = ROOT / "build" / "demo"
REPORTS = {"json": "sample-image.json", "anchore": "sample-image.anchore.json"}


def main() -> int:
    analysis = analyze(f"oci-dir:{SAMPLE}", Config())
    FORMATS["table"](analysis, sys.stdout)
    OUT.mkdir(parents=True, exist_ok=True)
    print("\nAnalyzed with the native engine. Full reports:")
    for fmt, name in REPORTS.items():
        path = OUT / name
        with open(path, "w", encoding="utf-8") as out:
            FORMATS[fmt](analysis, out)
        print(f"  {fmt:<8} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
