"""Images per minute: `layerscan batch` with N worker processes against `layerscan analyze` run once
per image in a loop, on the corpus images in a local docker-registry.

    .venv/bin/python benchmarks/service.py [--workers 1,2] [--copies 3] [--image NAME ...]

Starts Debian's docker-registry on loopback (tests/registry_harness.py) and pushes each corpus
image under `--copies` repositories (the same blobs, as a registry full of images built on
the same bases holds them). Both sides run as child processes with the layer cache on and
cold at the start, so a layer shared by images is fetched once either way. Prints
images/minute and the ratio to the analyze loop; exits 1 when batch with 2 workers is under
the bar (1.6x).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from registry_harness import RegistryServer, push_layout  # noqa: E402

IMAGES = ROOT.parent / "shared" / "corpus" / "images"
BAR = 1.6  # batch --workers 2 over the analyze loop, in images per minute
CORPUS = ("debian-minbase", "debian-apps", "rpm-sqlite")


@contextlib.contextmanager
def corpus_registry(work: Path, names: tuple[str, ...], copies: int) -> Iterator[tuple[str, list[str]]]:
    """A registry holding `copies` repositories of each corpus image: (host, ["host/bench/NAME-i:latest", ...])."""
    server = RegistryServer(work / "registry", work / "storage")
    try:
        refs = []
        with requests.Session() as s:
            for i in range(copies):
                for name in names:
                    push_layout(s, server.url, f"bench/{name}-{i}", "latest", IMAGES / name)
                    refs.append(f"{server.host}/bench/{name}-{i}:latest")
        yield server.host, refs
    finally:
        server.stop()


def layerscan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "layerscan", "-q", *args], check=True, stdout=subprocess.DEVNULL)


def per_minute(images: int, seconds: float) -> float:
    return images * 60.0 / seconds


def analyze_loop(refs: list[str], config: Path, out: Path) -> float:
    t0 = time.perf_counter()
    for i, ref in enumerate(refs):
        layerscan("analyze", f"registry:{ref}", "--config", str(config), "-o", str(out / f"{i}.json"))
    return time.perf_counter() - t0


def batch(refs: list[str], config: Path, out: Path, workers: int) -> float:
    listing = out / "images.txt"
    listing.write_text("".join(f"registry:{ref}\n" for ref in refs))
    t0 = time.perf_counter()
    layerscan("batch", str(listing), "--workers", str(workers), "--config", str(config), "--output-dir", str(out))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts for batch (default 1,2)")
    ap.add_argument("--copies", type=int, default=3, help="repositories per corpus image (default 3)")
    ap.add_argument("--image", nargs="*", default=list(CORPUS))
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="layerscan-bench-service-") as tmp:
        work = Path(tmp)
        with corpus_registry(work, tuple(args.image), args.copies) as (host, refs):
            config = work / "config.yaml"
            scratch = work / "scratch"

            def fresh(name: str) -> Path:
                """A cold layer cache and an empty output directory."""
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir()
                out = work / name
                out.mkdir()
                return out

            config.write_text(
                yaml.safe_dump(
                    {
                        "tmp_dir": str(scratch),
                        "insecure_registries": [host],
                        "services": {"analyzer": {"layer_cache_enable": True}},
                    }
                )
            )
            print(f"{len(refs)} images ({', '.join(args.image)} x {args.copies}), {cores} cores, layer cache on, cold")
            base = analyze_loop(refs, config, fresh("loop"))
            rows = [("analyze, once per image", base)]
            for n in counts:
                rows.append((f"batch --workers {n}", batch(refs, config, fresh(f"batch-{n}"), n)))
    print(f"{'':<26}{'seconds':>9}{'images/min':>12}{'ratio':>8}")
    for label, seconds in rows:
        print(f"{label:<26}{seconds:>9.1f}{per_minute(len(refs), seconds):>12.1f}{base / seconds:>7.2f}x")
    two = dict(rows).get("batch --workers 2")
    if two is None:
        return 0
    ratio = base / two
    verdict = "meets" if ratio >= BAR else "is under"
    print(f"batch --workers 2 {verdict} the bar: {ratio:.2f}x the analyze loop (bar {BAR}x)")
    return 0 if ratio >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
