"""Would 8-lane MD5 (ext/md5x8.c) pay in the scanner? Measured on one core, as ratios.

    .venv/bin/python benchmarks/md5x8.py [--entries 300000] [--gzip] [--repeat 3] [--json]

(a) MD5 throughput on each layer's own files: OpenSSL as the scanner calls it (init, update,
    final per file) against md5x8_many over batches of --batch files (tests/md5x8_driver.c);
(b) MD5's share of the native scan's CPU: the scan as built against a copy of the extension
    built with MD5 skipped (its update and final calls cut out of ext/content.c), each in a
    fresh process pinned to one core, best of --repeat;
(c) the layer-level lift md5x8 would give, by Amdahl: scan / (scan - md5 + md5 / speedup).

Layers: every corpus layer, and a generated uncompressed layer of --entries small files
(this machine's files of at most 64 KiB from /usr and site-packages, repeated under r0/,
r1/, ...), plus its gzip (-6) with --gzip. Throughput (a) uses at most --sample files of a layer.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyzstd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from scan import corpus_layers  # noqa: E402

SMALL = 64 << 10
# What the MD5-skipped build cuts out of ext/content.c (the scan must still run: SHA1 and SHA256 stay).
NO_MD5 = (
    ("if (!EVP_DigestUpdate(s->md5, p, n) || ", "if ("),
    ("if (!EVP_DigestFinal_ex(s->md5, d, NULL) || ", "if ("),
)
SCAN_CHILD = """
import mmap, os, sys, time
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.scan.rules import default_rules
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
opts = ScanOptions(rules=tuple(default_rules()))
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    t0 = time.process_time()
    scan_layer(m, opts, engine="native")
    print(time.process_time() - t0)
"""


def build_driver(tmp: Path) -> Path:
    exe = tmp / "md5x8_driver"
    crypto = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libcrypto"], check=True, text=True, capture_output=True
    )
    subprocess.run(
        ["gcc", "-O3", "-std=c11", "-I", str(ROOT / "ext"), "-o", str(exe)]
        + [str(ROOT / "tests" / "md5x8_driver.c"), str(ROOT / "ext" / "md5x8.c"), *crypto.stdout.split()],
        check=True,
    )
    return exe


def build_without_md5(tmp: Path) -> Path:
    """A copy of the extension with MD5 cut out; returns the directory to put on PYTHONPATH."""
    copy = tmp / "no-md5"
    for name in ("ext", "src"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("*.so", "_scan.c", "__pycache__"))
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, copy / name)
    content = copy / "ext" / "content.c"
    text = content.read_text()
    for old, new in NO_MD5:
        if old not in text:
            sys.exit(f"ext/content.c changed: cannot cut out {old!r}; update NO_MD5")
        text = text.replace(old, new)
    content.write_text(text)
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=copy, capture_output=True, text=True
    )
    if build.returncode:
        sys.exit(f"building the MD5-skipped extension failed:\n{build.stderr[-2000:]}")
    return copy / "src"


def generate_layer(out: Path, entries: int) -> None:
    roots = [Path("/usr"), Path(sysconfig.get_paths()["purelib"])]
    files = [
        p
        for root in roots
        for d, dirs, names in sorted(os.walk(root))
        for n in sorted(names)
        if os.path.isfile(p := os.path.join(d, n)) and not os.path.islink(p) and os.path.getsize(p) <= SMALL
    ]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        done = 0
        while done < entries:
            for path in files[: entries - done]:
                try:
                    tf.add(path, arcname=f"r{done // len(files)}{path}", recursive=False)
                except OSError:
                    continue
                done += 1


def open_layer(path: Path) -> tarfile.TarFile:
    head = path.open("rb").read(4)
    if head.startswith(b"\x1f\x8b"):
        return tarfile.open(fileobj=gzip.open(path), mode="r|")
    if head == b"\x28\xb5\x2f\xfd":
        return tarfile.open(fileobj=pyzstd.ZstdFile(path), mode="r|")  # type: ignore[arg-type]
    return tarfile.open(path, mode="r|")


def files_of(path: Path, limit: int) -> Iterator[bytes]:
    with open_layer(path) as tf:
        n = 0
        for m in tf:
            if m.isreg() and n < limit:
                f = tf.extractfile(m)
                assert f is not None
                yield f.read()
                n += 1


def md5_speedup(driver: Path, layer: Path, sample: int, repeat: int, batch: int) -> dict:
    frames = b"".join(struct.pack("<Q", len(d)) + d for d in files_of(layer, sample))
    out = subprocess.run([str(driver), "bench", str(repeat), str(batch)], input=frames, capture_output=True, check=True)
    n, ssl, x8 = out.stdout.split()
    nbytes = len(frames) - 8 * int(n)
    return {
        "files": int(n),
        "mean_file_bytes": round(nbytes / max(int(n), 1)),
        "openssl_mb_s": round(nbytes / 1e6 / float(ssl), 1),
        "md5x8_mb_s": round(nbytes / 1e6 / float(x8), 1),
        "speedup": round(float(ssl) / float(x8), 2),
    }


def scan_cpu(layer: Path, pythonpath: str | None, repeat: int) -> float:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return min(
        float(
            subprocess.run(
                [sys.executable, "-c", SCAN_CHILD, str(layer)], env=env, capture_output=True, check=True, text=True
            ).stdout
        )
        for _ in range(repeat)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=300_000, help="files in the generated layer")
    ap.add_argument("--gzip", action="store_true", help="also the generated layer through gzip -6")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts")
    ap.add_argument("--batch", type=int, default=512, help="files per md5x8_many call")
    ap.add_argument("--sample", type=int, default=100_000, help="files of a layer for the throughput (a)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the temporary layers and builds go")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    tmp = Path(tempfile.mkdtemp(prefix="layerscan-md5x8-", dir=args.workdir))
    try:
        driver = build_driver(tmp)
        no_md5 = str(build_without_md5(tmp))
        layers = list(corpus_layers())
        generated = tmp / "small.tar"
        generate_layer(generated, args.entries)
        layers.append((f"generated {args.entries} small files (none)", generated))
        if args.gzip:
            with generated.open("rb") as src, (tmp / "small.tar.gz").open("wb") as dst:
                subprocess.run(["gzip", "-6", "-n"], stdin=src, stdout=dst, check=True)
            layers.append((f"generated {args.entries} small files (gzip)", tmp / "small.tar.gz"))
        report = {}
        for name, path in layers:
            row = md5_speedup(driver, path, args.sample, args.repeat, args.batch)
            scan, without = scan_cpu(path, None, args.repeat), scan_cpu(path, no_md5, args.repeat)
            md5 = max(scan - without, 0.0)
            row |= {
                "scan_s": round(scan, 3),
                "scan_without_md5_s": round(without, 3),
                "md5_share": round(md5 / scan, 3),
                "lift": round(scan / (scan - md5 + md5 / row["speedup"]), 3),
            }
            report[name] = row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"one core; md5x8 over batches of {args.batch} files; lift = scan / (scan - md5 + md5 / speedup)")
    print(f"{'layer':<44} {'files':>7} {'mean B':>7} {'md5x8/OpenSSL':>13} {'MD5 share':>9} {'lift':>6}")
    for name, r in report.items():
        print(
            f"{name:<44} {r['files']:>7} {r['mean_file_bytes']:>7} {r['speedup']:>13} {r['md5_share']:>9} {r['lift']:>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
