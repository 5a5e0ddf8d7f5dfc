"""Whole-image analysis of the corpus's debian-apps: native vs reference engine, same run.

    .venv/bin/python benchmarks/analyze.py [--repeat N] [--image NAME]

Prints each engine's best time and throughput and the ratio; exits 1 when the
native engine is under the bar (2x the reference) or is not built.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from layerscan.config import Config
from layerscan.pipeline import analyze

IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "images"
BAR = 2.0


def best_of(spec: str, engine: str, repeat: int) -> tuple[float, int, int]:
    """(best seconds, files, uncompressed bytes) over `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a = analyze(spec, Config(), engine=engine, progress=False)
        best = min(best, time.perf_counter() - t0)
    return best, len(a.files), a.bytes_out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--image", default="debian-apps")
    args = ap.parse_args()
    spec = f"oci-dir:{IMAGES / args.image}"
    engines = ("native", "reference")
    times: dict[str, float] = {}
    for engine in engines:
        seconds, files, size = best_of(spec, engine, args.repeat)
        times[engine] = seconds
        print(f"{engine:<10} {seconds:7.2f} s  {size / seconds / 1e6:7.1f} MB/s  ({files} files, {size / 1e6:.1f} MB)")
    if "native" not in times:
        print("native engine not built (make build): no ratio", file=sys.stderr)
        return 1
    ratio = times["reference"] / times["native"]
    verdict = "ok" if ratio >= BAR else f"UNDER the {BAR:.0f}x bar"
    print(f"native is {ratio:.2f}x faster than reference on {args.image}: {verdict}")
    return 0 if ratio >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
