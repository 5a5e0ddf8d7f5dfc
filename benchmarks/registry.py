"""The corpus images from a local docker-registry, three ways, against the same image's OCI layout.

    .venv/bin/python benchmarks/registry.py [--repeat N] [--engine native|reference] [--image NAME ...]

Starts Debian's docker-registry on loopback (tests/registry_harness.py), pushes the images,
then times the whole `layerscan.pipeline.analyze()` of each image (scan, squash, catalog):
from its local OCI layout (mmap), from the registry with a cold layer cache, with a warm
one, and with the cache off (streamed, nothing on disk). Prints best times and ratios to
the layout; exits 1 when streaming is under the bar (85% of the layout's speed).
"""

from __future__ import annotations

import argparse
import shutil
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


def best(run: Callable[[], None], repeat: int, before: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(repeat):
        before()
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
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
            print(f"engine {args.engine}, best of {args.repeat}; ratio = layout time / this time (1.0 = as fast)")
            print(f"{'image':<16}{'layout':>9}{'cold':>16}{'warm':>16}{'stream':>16}")
            for name in args.image:
                ref = f"{server.host}/bench/{name}:latest"
                cache_dir = work / "tmp-cache"
                cached = Config(tmp_dir=str(cache_dir), layer_cache_enable=True, insecure_registries=(server.host,))
                streamed = Config(tmp_dir=str(work / "tmp-stream"), insecure_registries=(server.host,))

                def clear_cache(cache_dir: Path = cache_dir) -> None:
                    shutil.rmtree(cache_dir, ignore_errors=True)

                t_layout = best(analysis(f"oci-dir:{IMAGES / name}", Config(), args.engine), args.repeat)
                t_cold = best(analysis(f"registry:{ref}", cached, args.engine), args.repeat, clear_cache)
                t_warm = best(analysis(f"registry:{ref}", cached, args.engine), args.repeat)
                t_stream = best(analysis(f"registry:{ref}", streamed, args.engine), args.repeat)
                worst_stream = min(worst_stream, t_layout / t_stream)
                cells = "".join(f"{t:7.2f}s {t_layout / t:5.2f}x " for t in (t_cold, t_warm, t_stream))
                print(f"{name:<16}{t_layout:8.2f}s {cells}")
        finally:
            server.stop()
    verdict = "ok" if worst_stream >= BAR else "UNDER the bar"
    print(f"streaming reaches {worst_stream:.0%} of the local layout's speed (bar {BAR:.0%}): {verdict}")
    return 0 if worst_stream >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
