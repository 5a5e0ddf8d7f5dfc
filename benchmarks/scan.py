"""Layer scan throughput on one core: native, reference, naive, and the one-pass limit.

    .venv/bin/python benchmarks/scan.py [--quick] [--json] [--size-gb 1.0] [--workdir DIR]

Layers: every corpus layer, and a generated gzip layer (level 6) of at least --size-gb
uncompressed, built from local files (/usr and site-packages, repeated under
distinct prefixes) in a temporary directory that is removed afterwards.

Engines, each pinned to one CPU (os.sched_setaffinity, inherited by child processes):
- native and reference: scan_layer with the built-in and Anchore secret rules;
- naive: `tar x` into a temporary directory, then read and hash every file with
  md5, then sha1, then sha256 (three passes);
- limit: inflate alone (ISA-L through the `isal` package when installed, else zlib),
  MD5, SHA1 and SHA256 alone (hashlib/OpenSSL), combined as 1/sum(1/rate): the speed
  of one pass that does all four on one core.

MB/s are of uncompressed tar bytes (10^6 bytes) per CPU second (of the process, its
threads and its children): other work on the machine does not skew them. Also the peak RSS of a native scan
of the generated layer in a fresh process (streamed in chunks, and as an mmap; an
mmap's pages of the blob count in its RSS).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.scan.rules import default_rules

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT.parent / "shared" / "corpus" / "images"
OPTIONS = ScanOptions(rules=tuple(default_rules()))
MB = 1e6
HASHES = ("md5", "sha1", "sha256")
CHUNK = 1 << 20

try:
    from isal import isal_zlib as inflate_lib

    INFLATE = "isal"
except ImportError:
    inflate_lib = zlib  # type: ignore[assignment]
    INFLATE = "zlib"


def pin_one_core() -> int:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def corpus_layers() -> list[tuple[str, Path]]:
    seen: dict[str, tuple[str, Path]] = {}
    for answers in sorted(IMAGES.glob("*.answers.json")):
        image = answers.name.removesuffix(".answers.json")
        for layer in json.loads(answers.read_text())["layers"]:
            digest = layer["digest"]
            kind = layer["mediaType"].rsplit(".", 1)[-1].replace("tar+", "").replace("tar", "none")
            seen.setdefault(
                digest,
                (f"{image}#{layer['index']} ({kind})", IMAGES / image / "blobs" / "sha256" / digest.split(":")[1]),
            )
    return list(seen.values())


def sources() -> list[Path]:
    return [Path("/usr"), Path(sysconfig.get_paths()["purelib"])]


def generate_layer(out: Path, min_bytes: int) -> int:
    """A PAX tar of local files, repeated under r0/, r1/, ... until min_bytes, through `gzip -6`.
    Returns the uncompressed size."""
    with out.open("wb") as f:
        gz = subprocess.Popen(["gzip", "-6", "-n"], stdin=subprocess.PIPE, stdout=f)
        assert gz.stdin is not None
        counter = _Counting(gz.stdin)
        with tarfile.open(fileobj=counter, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            rep = 0
            while counter.count < min_bytes:
                for src in sources():
                    for path in _walk(src):
                        if counter.count >= min_bytes:
                            break
                        try:
                            tf.add(path, arcname=f"r{rep}{path}", recursive=False)
                        except OSError:
                            continue
                rep += 1
        gz.stdin.close()
        if gz.wait() != 0:
            sys.exit("gzip failed")
    return counter.count


class _Counting:
    def __init__(self, raw) -> None:  # type: ignore[no-untyped-def]
        self._raw, self.count = raw, 0

    def write(self, b: bytes) -> int:
        self.count += len(b)
        return self._raw.write(b)


def _walk(root: Path) -> Iterator[str]:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        yield d
        for name in sorted(files):
            yield os.path.join(d, name)


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and its waited-for children: on a machine
    shared with other work, the work done, where wall time would count the waiting too."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = cpu_seconds()
        out = fn()
        best = min(best, cpu_seconds() - t0)
    return best, out


def scan(path: Path, engine: str, repeat: int) -> dict:
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        seconds, result = timed(lambda: scan_layer(m, OPTIONS, engine=engine), repeat)
    stats = result.stats  # type: ignore[attr-defined]
    return rate(stats.bytes_out, stats.entries, seconds)


def rate(nbytes: int, files: int, seconds: float) -> dict:
    return {
        "seconds": round(seconds, 3),
        "mb_s": round(nbytes / MB / seconds, 1),
        "files_s": round(files / seconds),
        "bytes": nbytes,
        "files": files,
    }


def naive(path: Path, workdir: Path) -> dict:
    """`tar x`, then three hashing passes over every extracted file."""
    dest = Path(tempfile.mkdtemp(dir=workdir, prefix="naive-"))
    try:
        t0 = cpu_seconds()
        subprocess.run(["tar", "xf", str(path), "-C", str(dest)], check=True, stderr=subprocess.DEVNULL)
        files = [
            p
            for d, _, names in os.walk(dest)
            for n in names
            if not os.path.islink(p := os.path.join(d, n)) and os.path.isfile(p)
        ]
        total = 0
        for algo in HASHES:
            total = 0
            for name in files:
                h = hashlib.new(algo)
                with open(name, "rb") as f:
                    while data := f.read(CHUNK):
                        h.update(data)
                        total += len(data)
        seconds = cpu_seconds() - t0
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    tar_bytes = scan_bytes_out(path)
    return rate(tar_bytes, len(files), seconds) | {"file_bytes": total}


def scan_bytes_out(path: Path) -> int:
    with path.open("rb") as f:
        d = inflate_lib.decompressobj(47)  # gzip or zlib header, auto
        n = 0
        while data := f.read(CHUNK):
            n += len(d.decompress(data))
        return n


def limit(path: Path) -> dict:
    """Each stage alone on this machine, and all four in one pass (1/sum(1/rate))."""
    seconds, nbytes = timed(lambda: scan_bytes_out(path))
    rates = {f"inflate ({INFLATE})": nbytes / MB / seconds}
    sample = os.urandom(64 << 20)
    for algo in HASHES:
        h = hashlib.new(algo)
        s, _ = timed(lambda h=h: [h.update(sample) for _ in range(4)])
        rates[algo] = 4 * len(sample) / MB / s
    combined = 1 / sum(1 / r for r in rates.values())
    return {"stages_mb_s": {k: round(v, 1) for k, v in rates.items()}, "mb_s": round(combined, 1)}


RSS_CHILD = """
import mmap, sys
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.scan.rules import default_rules
path, mode = sys.argv[1], sys.argv[2]
opts = ScanOptions(rules=tuple(default_rules()))
with open(path, "rb") as f:
    if mode == "mmap":
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            scan_layer(m, opts, engine="native")
    else:
        scan_layer(iter(lambda: f.read(1 << 20), b""), opts, engine="native")
# VmHWM, not ru_maxrss: after exec, ru_maxrss still holds the parent's peak (Linux keeps it in
# the signal struct across execve); VmHWM is this address space's own high-water mark, in kB.
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def peak_rss_mb(path: Path, mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(path), mode], check=True, capture_output=True, text=True
    ).stdout
    return round(int(out.split()[-1]) / 1024, 1)


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False)))
        for r in rows
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 200 MB generated layer, one run each")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--size-gb", type=float, default=1.0, help="uncompressed size of the generated layer")
    ap.add_argument("--workdir", type=Path, default=None, help="where the temporary layer and extraction go")
    args = ap.parse_args()
    engines = ["native", "reference"]
    size = int((0.2 if args.quick else args.size_gb) * 1e9)
    repeat = 1 if args.quick else 3
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    tmp = Path(tempfile.mkdtemp(prefix="layerscan-bench-", dir=args.workdir))
    try:
        layer = tmp / "generated.tar.gz"
        log(f"generating a {size / 1e9:.1f} GB layer from {', '.join(map(str, sources()))} ...")
        generate_layer(layer, size)
        cpu = pin_one_core()
        log(f"pinned to CPU {cpu}; inflate via {INFLATE}")
        report: dict = {
            "cpu": cpu,
            "inflate": INFLATE,
            "corpus": {},
            "generated": {"compressed_bytes": layer.stat().st_size},
        }
        for name, path in corpus_layers():
            report["corpus"][name] = {e: scan(path, e, repeat) for e in engines}
        gen = report["generated"]
        for e in engines:
            log(f"{e} on the generated layer ...")
            gen[e] = scan(layer, e, 1)
        log("naive: tar x + md5, sha1, sha256 ...")
        gen["naive"] = naive(layer, tmp)
        gen["limit"] = limit(layer)
        if "native" in engines:
            native = gen["native"]["mb_s"]
            report["ratios"] = {
                "native/limit": round(native / gen["limit"]["mb_s"], 2),
                "native/reference": round(native / gen["reference"]["mb_s"], 2),
                "native/naive": round(native / gen["naive"]["mb_s"], 2),
            }
            report["peak_rss_mb"] = {mode: peak_rss_mb(layer, mode) for mode in ("stream", "mmap")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = [("layer", "engine", "MB/s", "files/s", "seconds", "MB")]
    for name, by_engine in [
        *report["corpus"].items(),
        (f"generated ({gen['native' if 'native' in gen else 'reference']['bytes'] / 1e9:.2f} GB gzip)", gen),
    ]:
        for e, r in by_engine.items():
            if isinstance(r, dict) and "files_s" in r:
                rows.append(
                    (name, e, f"{r['mb_s']:.1f}", f"{r['files_s']}", f"{r['seconds']:.2f}", f"{r['bytes'] / MB:.0f}")
                )
    print(table(rows))
    print(
        "\none-pass limit on this core: "
        + ", ".join(f"{k} {v} MB/s" for k, v in gen["limit"]["stages_mb_s"].items())
        + f" -> {gen['limit']['mb_s']} MB/s"
    )
    if "ratios" in report:
        print("ratios: " + ", ".join(f"{k} = {v}" for k, v in report["ratios"].items()))
        print(
            "peak RSS of a native scan of the generated layer: "
            + ", ".join(f"{k} {v} MB" for k, v in report["peak_rss_mb"].items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
