"""The corpus images from a local docker-registry, three ways, against the same image's OCI layout.

    .venv/bin/python benchmarks/registry.py [--repeat N] [--engine native|reference] [--image NAME ...]

Starts Debian's docker-registry on loopback (tests/registry_harness.py), pushes the images,
then times the whole `layerscan.pipeline.analyze()` of each image (scan, squash, catalog):
from its local OCI layout (mmap), from the registry with a cold layer cache, with a warm
one, and with the cache off (streamed, nothing on disk). The result cache is off: every run
scans every layer. The four ways run in turn, round after round, so that a busy machine slows
them alike; prints median times and ratios to the layout, and exits 1 when streaming is under
the bar (85% of the layout's speed). "registry CPU" is what the registry process itself spent
serving one streamed analysis: on this machine it shares the cores with the analysis it serves.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from layerscan.config import Config  # noqa: E402
from layerscan.pipeline import analyze  # noqa: E402
from registry_harness import RegistryServer, push_layout  # noqa: E402

IMAGES = ROOT.parent / "shared" / "corpus" / "images"
BAR = 0.85


def analysis(spec: str, config: Config, engine: str) -> Callable[[], None]:
    def once() -> None:
        analyze(spec, config, engine=engine, progress=False)

    return once


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def medians(
    runs: dict[str, tuple[Callable[[], None], Callable[[], None]]], repeat: int, server: int
) -> dict[str, tuple[float, float]]:
    """Each (before, run) timed `repeat` times, interleaved round by round: the median wall time of
    each, and the median CPU time the registry process (pid `server`) spent serving it."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    served: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, (before, run) in runs.items():
            before()
            cpu0, t0 = cpu_seconds(server), time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
            served[name].append(cpu_seconds(server) - cpu0)
    return {name: (statistics.median(times[name]), statistics.median(served[name])) for name in runs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--engine", default="native")
    ap.add_argument("--image", nargs="*", default=["debian-minbase", "debian-apps"])
    args = ap.parse_args()
    worst_stream = float("inf")
    with tempfile.TemporaryDirectory(prefix="layerscan-bench-") as tmp:
        work = Path(tmp)
        server = RegistryServer(work / "registry", work / "storage")
        try:
            with requests.Session() as s:
                for name in args.image:
                    push_layout(s, server.url, f"bench/{name}", "latest", IMAGES / name)
            print(f"engine {args.engine}, median of {args.repeat}; ratio = layout time / this time (1.0 = as fast)")
            print(f"{'image':<16}{'layout':>9}{'cold':>16}{'warm':>16}{'stream':>16}{'registry CPU':>14}")
            for name in args.image:
                ref = f"{server.host}/bench/{name}:latest"
                cache_dir = work / "tmp-cache"
                common = dict(result_cache_enable=False, insecure_registries=(server.host,))
                cached = Config(tmp_dir=str(cache_dir), layer_cache_enable=True, **common)
                streamed = Config(tmp_dir=str(work / "tmp-stream"), **common)
                local = Config(tmp_dir=str(work / "tmp-layout"), result_cache_enable=False)

                def clear_cache(cache_dir: Path = cache_dir) -> None:
                    shutil.rmtree(cache_dir, ignore_errors=True)

                def nothing() -> None:
                    pass

                timed = medians(
                    {
                        "layout": (nothing, analysis(f"oci-dir:{IMAGES / name}", local, args.engine)),
                        "cold": (clear_cache, analysis(f"registry:{ref}", cached, args.engine)),
                        "warm": (nothing, analysis(f"registry:{ref}", cached, args.engine)),
                        "stream": (nothing, analysis(f"registry:{ref}", streamed, args.engine)),
                    },
                    args.repeat,
                    server.proc.pid,
                )
                t = {k: wall for k, (wall, _) in timed.items()}
                worst_stream = min(worst_stream, t["layout"] / t["stream"])
                cells = "".join(f"{t[k]:7.2f}s {t['layout'] / t[k]:5.2f}x " for k in ("cold", "warm", "stream"))
                print(f"{name:<16}{t['layout']:8.2f}s {cells}{timed['stream'][1]:12.2f}s")
        finally:
            server.stop()
    verdict = "ok" if worst_stream >= BAR else "UNDER the bar"
    print(f"streaming reaches {worst_stream:.0%} of the local layout's speed (bar {BAR:.0%}): {verdict}")
    return 0 if worst_stream >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
