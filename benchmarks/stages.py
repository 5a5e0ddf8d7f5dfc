"""What each stage after the scan costs: squash, catalog, secret linking, retrieve_files and
every report writer, timed one by one in one process; and the whole `analyze --format anchore`
against Trivy's secret scan of the same image.

    .venv/bin/python benchmarks/stages.py [--files 300000] [--big-mb 1250] [--repeat 3] [--e2e] [--json]

Images, built once into --workdir (default <tmp>/layerscan-stages) and reused:
  small-N  one uncompressed layer of N small files (distinct contents, 100 per directory)
  big-MB   benchmarks/peers.py's synthetic image of about MB MB of this machine's files
           (--big-mb 0 leaves it out)

Per image: the scan once (cache off), then each stage the best of --repeat, in CPU seconds of
this process (the stages run on one thread; CPU time is what a busy machine skews least); the memory the
final file table holds per file entry (tracemalloc, squash alone); and with --e2e, the wall
time, CPU time and peak RSS of `layerscan analyze --format anchore` and of Trivy's secret scan
(benchmarks/peers.py runs both), best of --repeat.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tarfile
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any, TextIO, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import layerscan.aside  # noqa: E402
from layerscan.analysis import Analysis  # noqa: E402
from layerscan.config import Config  # noqa: E402
from layerscan.pipeline import analyze  # noqa: E402
from layerscan.report import anchore, cyclonedx, native, spdx  # noqa: E402
from peers import (  # noqa: E402
    BIG_LAYERS,
    OCI_LAYER,
    BenchError,
    build_layers,
    layerscan_tool,
    measure,
    network_jail,
    put_blob,
    sha256_file,
    trivy_command,
    write_layout,
)

T = TypeVar("T")

WRITERS: dict[str, Callable[[Analysis, TextIO], None]] = {
    "anchore": anchore.write,
    "layerscan-json": native.write,
    "cyclonedx": cyclonedx.write,
    "spdx": spdx.write,
}


def build_small_image(dest: Path, files: int) -> Path:
    """An OCI layout at dest of one uncompressed layer of `files` small files."""
    layout = dest.with_suffix(".tmp")
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    plain = layout / "layer.tar"
    with tarfile.open(plain, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            if i % 100 == 0:
                d = tarfile.TarInfo(f"srv/data/d{i // 10000}/d{i // 100}/")
                d.type, d.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(d)
            data = f"file {i}\n{'x' * (i % 200)}\n".encode()
            ti = tarfile.TarInfo(f"srv/data/d{i // 10000}/d{i // 100}/f{i}.txt")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(ti, io.BytesIO(data))
    diff_id = sha256_file(plain)
    write_layout(layout, [({"mediaType": OCI_LAYER, **put_blob(blobs, plain)}, diff_id)])
    layout.rename(dest)
    return dest


def image(workdir: Path, name: str, build: Callable[[Path], Path]) -> Path:
    dest = workdir / name
    if not (dest / "index.json").is_file():
        t0 = time.perf_counter()
        build(dest)
        print(f"built {name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return dest


def best(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The least CPU time of `repeat` runs, and the last run's output."""
    seconds = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        seconds = min(seconds, time.process_time() - t0)
    return seconds, out


def held_per_entry(squash: Callable[[], Sized]) -> float:
    """The memory the final file table holds per file entry (tracemalloc, squash alone)."""
    tracemalloc.start()
    files = squash()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held / max(1, len(files))


def stages(path: Path, repeat: int, scratch: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    entry_bytes: list[float] = []

    def timed(name: str, run: Callable[[], T], /) -> T:
        """pipeline.analyze's stage hook: each stage the best of `repeat` (the scan once)."""
        out[name], value = best(run, 1 if name == "scan" else repeat)
        if name == "squash":
            entry_bytes.append(held_per_entry(run))
        return value

    a = analyze(f"oci-dir:{path}", Config(result_cache_enable=False), progress=False, stage=timed)
    for name, write in WRITERS.items():

        def run(write: Callable[[Analysis, TextIO], None] = write) -> None:
            with open(scratch / "report.json", "w") as f:
                write(a, f)

        out[f"write {name}"] = best(run, repeat)[0]
    out["files"] = len(a.files)
    out["packages"] = len(a.packages)
    out["peak rss MB (in-process)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["bytes per file entry"] = entry_bytes[0]
    return out


def end_to_end(path: Path, repeat: int, scratch: Path) -> dict[str, Any]:
    wrap = network_jail()
    ours = layerscan_tool("native").command(path, scratch)
    ours.argv.extend(["--format", "anchore", "--no-result-cache"])
    runs = {"layerscan anchore": ours, "trivy secret": trivy_command(path, scratch)}
    samples: dict[str, list[Any]] = {k: [] for k in runs}
    for _ in range(repeat):  # round-robin, so that a busy machine slows both alike
        for name, run in runs.items():
            samples[name].append(measure(run, wrap))
    out: dict[str, Any] = {}
    for name, s in samples.items():
        out[f"{name} wall s"] = min(x.wall for x in s)
        out[f"{name} cpu s"] = min(x.cpu for x in s)
        out[f"{name} peak rss MB"] = max(x.rss_kb for x in s) / 1024
    out["layerscan / trivy wall"] = out["layerscan anchore wall s"] / out["trivy secret wall s"]
    out["layerscan / trivy cpu"] = out["layerscan anchore cpu s"] / out["trivy secret cpu s"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=300_000, help="files of the small-files image (0: none)")
    ap.add_argument("--big-mb", type=int, default=1250, help="MB of the synthetic image (0: none)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--e2e", action="store_true", help="also time analyze --format anchore against Trivy")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "layerscan-stages")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    # Each stage's whole cost in this process's CPU time: no part of it in a forked child (the
    # one-shot command's wall time, with its second core, is what --e2e measures).
    layerscan.aside.disable()
    args.workdir.mkdir(parents=True, exist_ok=True)
    images: list[tuple[str, Path]] = []
    if args.files:
        name = f"small-{args.files}"
        images.append((name, image(args.workdir, name, lambda d: build_small_image(d, args.files))))
    if args.big_mb:
        name = f"big-{args.big_mb}"

        def big(d: Path) -> Path:
            with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
                layout = Path(tmp) / "big"
                blobs = layout / "blobs" / "sha256"
                blobs.mkdir(parents=True)
                os.replace(write_layout(layout, build_layers(Path(tmp), blobs, args.big_mb, BIG_LAYERS)), d)
            return d

        images.append((name, image(args.workdir, name, big)))
    report: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
            for name, path in images:
                report[name] = stages(path, args.repeat, Path(scratch))
                if args.e2e:
                    report[name].update(end_to_end(path, args.repeat, Path(scratch)))
    except BenchError as e:
        print(f"stages: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
        return 0
    for name, figures in report.items():
        print(name)
        for key, value in figures.items():
            print(f"  {key:<28} {value:10.3f}" if isinstance(value, float) else f"  {key:<28} {value:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
