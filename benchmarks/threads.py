"""One layer on several cores: the wall time of a native scan of one big gzip layer with
1 thread against N threads, side by side.

    .venv/bin/python benchmarks/threads.py [--layer FILE | --size-gb 1.0] [--threads 1,2] [--rounds 3] [--json]

Without --layer, a gzip layer of at least --size-gb uncompressed is generated from local
files (as benchmarks/scan.py builds it) in a temporary directory, removed afterwards.

Each run is a fresh process that streams the layer from the file in 1 MiB chunks, as a
registry download or the layer cache feeds it, with the built-in secret rules, and reports
its wall time, CPU time (all threads) and peak RSS. The thread counts take turns, round
after round, so that whatever else loads the machine weighs on them alike; the figure is
the ratio of the median wall times, printed with the load averages before and after (on a
machine shared with other work, a ratio is meaningful where absolute times are not).

Where other work holds the cores (Linux gives each session's group of threads its share,
whatever their count), the wall ratio says little; so each run also reports its CPU time and
that of the scanning thread itself (which inflates, parses and searches, and hashes rather
than wait when its ring is full), and `bound` is the wall time the run would take with a core
per thread and nothing else running: max(scanning thread's CPU, process CPU / threads).
`speedup (bound)` compares those. Under load it understates the speedup: the pool's thread is
preempted more often there, so the scanning thread takes a larger share of the hashing (CPU
that free cores would split evenly).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan import generate_layer, sources  # noqa: E402 - benchmarks/scan.py, beside this script

CHILD = """
import json, resource, sys, time
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.scan.rules import default_rules
path, threads = sys.argv[1], int(sys.argv[2])
opts = ScanOptions(rules=tuple(default_rules()))
with open(path, "rb") as f:
    t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
    result = scan_layer(iter(lambda: f.read(1 << 20), b""), opts, threads=threads)
    wall, cpu, own = time.perf_counter() - t0, time.process_time() - c0, time.thread_time() - m0
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"wall": wall, "cpu": cpu, "own": own, "rss_mb": hwm / 1024, "bytes": result.stats.bytes_out,
                  "files": len(result.entries)}))
"""


def run(layer: Path, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(layer), str(threads)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def bound(run: dict, threads: int) -> float:
    """The run's wall time on `threads` free cores: the scanning thread's CPU, or the share of all."""
    return max(run["own"], run["cpu"] / threads)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layer", type=Path, help="a gzip (or zstd, or plain) layer to scan instead of a generated one")
    ap.add_argument("--size-gb", type=float, default=1.0, help="uncompressed size of the generated layer")
    ap.add_argument("--threads", default="1,2", help="thread counts to compare; the first is the baseline")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each thread count, taking turns")
    ap.add_argument("--workdir", type=Path, default=None, help="where the generated layer goes")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    tmp = None
    try:
        layer = args.layer
        if layer is None:
            tmp = Path(tempfile.mkdtemp(prefix="layerscan-threads-", dir=args.workdir))
            layer = tmp / "generated.tar.gz"
            log(f"generating a {args.size_gb:.1f} GB gzip layer from {', '.join(map(str, sources()))} ...")
            generate_layer(layer, int(args.size_gb * 1e9))
        load_before = os.getloadavg()
        runs: dict[int, list[dict]] = {t: [] for t in counts}
        for r in range(args.rounds):
            for t in counts:
                runs[t].append(run(layer, t))
                log(f"round {r + 1}, {t} thread(s): {runs[t][-1]['wall']:.2f} s wall")
        load_after = os.getloadavg()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    first = runs[counts[0]][0]
    base = statistics.median(x["wall"] for x in runs[counts[0]])
    base_bound = statistics.median(bound(x, counts[0]) for x in runs[counts[0]])
    report = {
        "layer": {"compressed_bytes": layer.stat().st_size if tmp is None else None, "bytes": first["bytes"]},
        "files": first["files"],
        "cores_usable": len(os.sched_getaffinity(0)),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "threads": {
            t: {
                "wall_median": round(statistics.median(x["wall"] for x in rs), 3),
                "walls": [round(x["wall"], 3) for x in rs],
                "cpu_median": round(statistics.median(x["cpu"] for x in rs), 3),
                "own_cpu_median": round(statistics.median(x["own"] for x in rs), 3),
                "bound": round(statistics.median(bound(x, t) for x in rs), 3),
                "mb_s": round(first["bytes"] / 1e6 / statistics.median(x["wall"] for x in rs), 1),
                "peak_rss_mb": round(max(x["rss_mb"] for x in rs), 1),
                "speedup": round(base / statistics.median(x["wall"] for x in rs), 2),
                "speedup_bound": round(base_bound / statistics.median(bound(x, t) for x in rs), 2),
            }
            for t, rs in runs.items()
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"\n{first['bytes'] / 1e9:.2f} GB tar, {first['files']} entries; {report['cores_usable']} usable cores")
    print(
        f"{'threads':>7}  {'wall (median)':>13}  {'MB/s':>7}  {'CPU s':>6}  {'own CPU s':>9}  {'bound s':>7}  "
        f"{'peak RSS MB':>11}  {'speedup':>7}  {'speedup (bound)':>15}"
    )
    for t, row in report["threads"].items():
        print(
            f"{t:>7}  {row['wall_median']:>13.2f}  {row['mb_s']:>7.1f}  {row['cpu_median']:>6.2f}  "
            f"{row['own_cpu_median']:>9.2f}  {row['bound']:>7.2f}  {row['peak_rss_mb']:>11.1f}  "
            f"{row['speedup']:>6.2f}x  {row['speedup_bound']:>14.2f}x"
        )
    print(f"load average before {report['load_average_before']}, after {report['load_average_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
