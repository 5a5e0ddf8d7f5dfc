"""What capture globs cost the native scanner, in entries per CPU second.

    .venv/bin/python benchmarks/globs.py [--entries 300000] [--repeat 3] [--json]

Generates an uncompressed layer of small files (default 300k entries) with paths like
a real image's: Python and node packages, dpkg's info files, docs, locales, and deep
paths of 80-160 characters; a few percent of them match a cataloger's glob. Then
scans it with the native engine (pinned to one core, no secret rules) under three
glob sets:

- none: no capture globs, the floor;
- catalog: every cataloger's globs (about 50), what `analyze` uses;
- catalog+classes: those plus user globs with character classes and `**` in the middle.

For each it prints the best CPU time of --repeat scans, entries/s, files captured,
and entries/s relative to `none` (1.0 means globs cost nothing).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tarfile
import time

from layerscan.catalog import capture_globs
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions

USER_GLOBS = ("/**/[a-c]*.conf", "/usr/**/[!x]?[0-9]*.txt", "/opt/**/config/[Ss]ettings*.json")
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def _word(rnd: random.Random) -> str:
    return rnd.choice(WORDS) + str(rnd.randrange(100))


def paths(n: int, seed: int = 1) -> list[str]:
    """n distinct paths, in the proportions of a large image's files."""
    rnd = random.Random(seed)
    kinds = (
        lambda: f"usr/lib/python3/dist-packages/{_word(rnd)}/{_word(rnd)}/{_word(rnd)}.py",
        lambda: (
            f"usr/lib/python3/dist-packages/{_word(rnd)}-1.{rnd.randrange(9)}.dist-info/"
            + rnd.choice(["METADATA", "RECORD", "top_level.txt", "WHEEL"])
        ),
        lambda: f"usr/share/doc/{_word(rnd)}/" + rnd.choice(["copyright", "changelog.gz", "README"]),
        lambda: f"var/lib/dpkg/info/{_word(rnd)}." + rnd.choice(["list", "md5sums", "postinst", "triggers"]),
        lambda: (
            f"app/node_modules/{_word(rnd)}/node_modules/{_word(rnd)}/"
            + rnd.choice(["package.json", "index.js", "lib/util.js", "README.md"])
        ),
        lambda: f"usr/share/locale/{rnd.choice(['de', 'fr', 'ja', 'pt_BR'])}/LC_MESSAGES/{_word(rnd)}.mo",
        lambda: (
            "/".join(_word(rnd) * rnd.randint(1, 3) for _ in range(rnd.randint(6, 12)))
            + rnd.choice([".conf", ".txt", ".json", ".so.1", ""])
        ),
        lambda: f"opt/{_word(rnd)}/config/" + rnd.choice(["settings.json", "Settings.local.json", "app.yaml"]),
    )
    seen: set[str] = set()
    while len(seen) < n:
        seen.add(f"{rnd.choice(kinds)()}")
    return sorted(seen)


def layer(names: list[str]) -> bytes:
    """An uncompressed PAX tar with a 32-byte file at each name."""
    buf = io.BytesIO()
    data = b"x" * 31 + b"\n"
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in names:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def best_cpu(blob: bytes, globs: tuple[str, ...], repeat: int) -> tuple[float, int]:
    options = ScanOptions(capture_globs=globs, capture_max_bytes=1 << 20)
    best, captured = float("inf"), 0
    for _ in range(repeat):
        t0 = time.process_time()
        result = scan_layer(blob, options, engine="native")
        best = min(best, time.process_time() - t0)
        captured = len(result.captured)
    return best, captured


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=300_000, help="files in the generated layer")
    ap.add_argument("--repeat", type=int, default=3, help="scans per glob set; the best CPU time counts")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    names = paths(args.entries)
    blob = layer(names)
    catalog = capture_globs()
    sets = {"none": (), "catalog": catalog, "catalog+classes": (*catalog, *USER_GLOBS)}
    report: dict[str, dict[str, float | int]] = {}
    for label, globs in sets.items():
        seconds, captured = best_cpu(blob, globs, args.repeat)
        report[label] = {"globs": len(globs), "seconds": round(seconds, 3), "captured": captured}
        report[label]["entries_s"] = round(len(names) / seconds)
    floor = report["none"]["entries_s"]
    for r in report.values():
        r["vs_none"] = round(r["entries_s"] / floor, 3)
    if args.json:
        print(json.dumps({"entries": len(names), "layer_bytes": len(blob), "sets": report}, indent=2))
        return 0
    print(f"{len(names)} entries, {len(blob) / 1e6:.0f} MB uncompressed tar, native engine, one core")
    print(f"{'globs':<16} {'n':>3} {'CPU s':>7} {'entries/s':>10} {'captured':>9} {'vs none':>8}")
    for label, r in report.items():
        print(
            f"{label:<16} {r['globs']:>3} {r['seconds']:>7.3f} {r['entries_s']:>10} {r['captured']:>9} {r['vs_none']:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
