"""Cold versus warm `analyze` with the result cache, on the corpus images and a >= 1 GB generated image.

    .venv/bin/python benchmarks/resultcache.py [--repeat N] [--big-mb MB] [--no-big] [--image NAME ...]

Times the whole `layerscan.pipeline.analyze()` of each image (scan, squash, catalog), as
benchmarks/registry.py does, from its OCI layout:

  off         the result cache disabled: the baseline
  cold        an empty result cache (storing every entry is part of it)
  layer-warm  every layer known, the image not (its entry removed): no layer is read; squash,
              catalogers and findings run
  warm        the image known: no layer is read, no cataloger runs

and prints each as a fraction of cold. The generated image comes from benchmarks/peers.py's
builder (a gzip, a zstd and an uncompressed layer of this machine's files) with a small top
layer of its own; then a new image that differs from it only in its top layer is timed twice:
cold, and with the result cache holding the first image (its three lower layers known).

Bars (issue 10): warm <= 5% of cold on the >= 1 GB image; the new top layer <= 40% of its cold
time. Prints the figures and exits 1 when a bar is missed. Times vary with the machine and its
load; the ratios come from one run, the best of --repeat for each figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from layerscan.analysis import Analysis  # noqa: E402
from layerscan.config import Config  # noqa: E402
from layerscan.pipeline import analyze  # noqa: E402
from layerscan.store.results import DIRNAME, codec, open_store  # noqa: E402
from layerscan.store.results.localstore import LocalStore  # noqa: E402
from peers import BIG_LAYERS, LayerSpec, build_layers, write_layout  # noqa: E402

IMAGES = ROOT.parent / "shared" / "corpus" / "images"
WARM_BAR, NEW_TOP_BAR = 0.05, 0.40
# An application layer on top of the generated base, and the next release of it.
TOP: LayerSpec = ("gzip", 0.02, ("/usr/include",))
NEW_TOP: LayerSpec = ("gzip", 0.019, ("/usr/include",))


@dataclasses.dataclass
class Times:
    off: float
    cold: float
    layer_warm: float
    warm: float
    bytes_out: int


class Bench:
    def __init__(self, work: Path, engine: str, repeat: int) -> None:
        self.tmp = work / "tmp"
        self.engine = engine
        self.repeat = repeat
        self.config = Config(tmp_dir=str(self.tmp))

    def run(self, layout: Path, *, cache: bool = True) -> Analysis:
        config = self.config if cache else dataclasses.replace(self.config, result_cache_enable=False)
        return analyze(f"oci-dir:{layout}", config, engine=self.engine, progress=False)

    def best(self, layout: Path, before: Callable[[], None] = lambda: None, *, cache: bool = True) -> float:
        times = []
        for _ in range(self.repeat):
            before()
            t0 = time.perf_counter()
            self.run(layout, cache=cache)
            times.append(time.perf_counter() - t0)
        return min(times)

    def clear(self) -> None:
        shutil.rmtree(self.tmp / DIRNAME, ignore_errors=True)

    def cached(self, layout: Path) -> None:
        """A result cache holding this image only."""
        self.clear()
        self.run(layout)

    def drop_image_entries(self) -> None:
        store = open_store(self.config)
        assert isinstance(store, LocalStore)
        for entry in store.entries():
            if entry.kind == codec.IMAGE:
                (store.values / entry.key).unlink(missing_ok=True)
        store.close()

    def times(self, layout: Path) -> Times:
        self.clear()
        off = self.best(layout, cache=False)
        cold = self.best(layout, self.clear)
        layer_warm = self.best(layout, self.drop_image_entries)
        self.run(layout)  # stores the image entry again
        warm = self.best(layout)
        return Times(off, cold, layer_warm, warm, self.run(layout).bytes_out)


def report(name: str, t: Times) -> None:
    print(
        f"{name:<22}{t.bytes_out / 1e9:6.2f} GB  off {t.off:7.2f}s  cold {t.cold:7.2f}s  "
        f"layer-warm {t.layer_warm:6.2f}s ({t.layer_warm / t.cold:6.1%})  warm {t.warm:6.3f}s ({t.warm / t.cold:6.2%})"
    )


def generated(work: Path, megabytes: int) -> tuple[Path, Path]:
    """The generated image (peers' layers and TOP), and one with NEW_TOP instead, sharing its blobs."""
    base = work / "big"
    blobs = base / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    lower = build_layers(work, blobs, megabytes, BIG_LAYERS)
    write_layout(base, lower + build_layers(work, blobs, megabytes, (TOP,)))
    new = work / "big-new-top"
    new.mkdir()
    (new / "blobs").symlink_to(base / "blobs")
    write_layout(new, lower + build_layers(work, blobs, megabytes, (NEW_TOP,)))
    return base, new


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept (default 3)")
    ap.add_argument("--big-repeat", type=int, default=2, help="the same for the generated images (default 2)")
    ap.add_argument("--big-mb", type=int, default=1700, help="file data in the generated image, MB (default 1700)")
    ap.add_argument("--no-big", action="store_true", help="the corpus images only")
    ap.add_argument("--image", nargs="*", default=["debian-minbase", "debian-apps", "rpm-sqlite"])
    ap.add_argument("--engine", default="native")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="layerscan-bench-rc-") as tmp:
        work = Path(tmp)
        bench = Bench(work, args.engine, args.repeat)
        print(f"engine {args.engine}; best of {args.repeat} (generated images: {args.big_repeat}); fractions of cold")
        bench.run(IMAGES / args.image[0], cache=False)  # once untimed: imports, rule compilation
        for name in args.image:
            report(name, bench.times(IMAGES / name))
        if args.no_big:
            return 0
        t0 = time.perf_counter()
        base, new = generated(work, args.big_mb)
        print(f"(built the generated images in {time.perf_counter() - t0:.0f}s)")
        bench.repeat = args.big_repeat
        bench.clear()
        new_cold = bench.best(new, bench.clear)
        big = bench.times(base)
        report("generated", big)
        new_top = bench.best(new, lambda: bench.cached(base))
        print(
            f"{'new top layer':<22}cold {new_cold:7.2f}s  with the first image cached {new_top:6.2f}s "
            f"({new_top / new_cold:.1%})"
        )
        if big.bytes_out < 1e9:
            print(f"the generated image has {big.bytes_out / 1e9:.2f} GB, under 1 GB: raise --big-mb")
            ok = False
        warm_ok, top_ok = big.warm / big.cold <= WARM_BAR, new_top / new_cold <= NEW_TOP_BAR
        print(
            f"bar warm <= {WARM_BAR:.0%} of cold: {'ok' if warm_ok else 'MISSED'}; "
            f"new top layer <= {NEW_TOP_BAR:.0%} of cold: {'ok' if top_ok else 'MISSED'}"
        )
        ok = ok and warm_ok and top_ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
