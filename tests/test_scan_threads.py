"""One layer on several threads (the native scanner's hashing pool, ext/hashpool.c).

Whatever the thread count, a scan gives what one thread gives, record for record: on every
corpus layer and on generated layers large enough to wrap the scanner's ring of windows and
ops many times; a bad layer fails with the same typed error at the same offset. The GIL is
released while a layer is scanned; no hashing thread outlives the scans (closed mid-layer,
or an analysis that fails); and a 1 GB layer is scanned in bounded memory.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import random
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import corpus_params, layer_blob
from imagebuilder import Image, Layer, f, oci_layout, write_dir
from layerscan.config import Config, ConfigError, load_config
from layerscan.errors import CompressionError, LayerError, LimitExceeded, TarFormatError
from layerscan.pipeline import analyze
from layerscan.scan import native, scan_layer
from layerscan.scan.model import Limits, ScanOptions
from layerscan.scan.rules import default_rules
from scancheck import assert_same
from tarbuilder import chunked, compress, digests, end_of_archive, header, padded
from test_native_scan import LAYERS
from test_native_scan import OPTIONS as CORPUS_OPTIONS
from test_scan_badinput import CASES

THREADS = (2, 4)  # each compared with 1
OPTIONS = ScanOptions(
    rules=tuple(default_rules()), capture_globs=("**/*.json",), capture_max_bytes=4096, compute_diff_id=True
)
ODD_CHUNKS = [70_001, 1, 4096, 300_000]


def os_threads() -> int:
    """Threads of this process as the kernel counts them (the pool's C threads included)."""
    return len(os.listdir("/proc/self/task"))


def wait_for_threads(n: int, timeout: float = 10.0) -> int:
    """The thread count once it is down to `n`, or after `timeout`. A joined thread may still be in
    /proc for a moment: Python's join returns before its OS thread has exited, and pthread_join when
    the thread has cleared its id, before the kernel has reaped it."""
    deadline = time.monotonic() + timeout
    while os_threads() > n and time.monotonic() < deadline:
        time.sleep(0.01)
    return os_threads()


def scan(blob: bytes, threads: int, chunks: list[int] | None = None, options: ScanOptions = OPTIONS, **kw: object):
    data = blob if chunks is None else chunked(blob, chunks)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    return scan_layer(data, options, name="t", expected_digest=digest, threads=threads, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ layers

# Sizes around the scanner's block, window (256 KiB) and input block (64 KiB) edges, mostly small.
SIZES = [0, 0, 1, 100, 511, 512, 513, 1000, 4095, 4096, 65535, 65536, 65537, 262143, 262144, 262145, 1 << 20]
SECRET = b"ghp_R7kLm2Qx9Tz4Vb8Nc1Hd6Fs3Gy5Ua0Ei7KoP"


def content(rng: random.Random, size: int) -> bytes:
    """Text (searched for secrets, sometimes with one) or binary (a NUL up front), cheaply."""
    if rng.random() < 0.3:
        return (b"\0" + rng.randbytes(min(size, 4096)) * (size // 4096 + 1))[:size]
    line = b"".join(rng.choice([b"lorem ", b"ipsum ", b"dolor ", b"sit\n"]) for _ in range(16))
    text = (line * (size // len(line) + 1))[:size]
    if size > 100 and rng.random() < 0.1:
        at = rng.randrange(size - len(SECRET) - 2)
        text = text[:at] + b"\n" + SECRET + b"\n" + text[at + len(SECRET) + 2 :]
    return text


def many_files(seed: int, n: int, sizes: list[int]) -> tuple[bytes, list[bytes]]:
    """A tar of n files (every 50th a directory, .json names captured), and the files' contents."""
    rng = random.Random(seed)
    parts, datas = [], []
    for i in range(n):
        if i % 50 == 49:
            parts.append(header(b"d%05d/" % i, b"5"))
            continue
        data = content(rng, rng.choice(sizes))
        datas.append(data)
        name = b"d/f%05d%s" % (i, b".json" if i % 7 == 0 else b"")
        parts.append(header(name, size=len(data)) + padded(data))
    return b"".join(parts) + end_of_archive(), datas


def stream_layer(path: Path, files: int, big: int) -> int:
    """A gzip layer of `files` 1 MiB text files and one `big`-byte binary file, written as it is
    made (one gzip member per header, the file data compressed once): the uncompressed size."""
    mib = 1 << 20
    text = content(random.Random(1), mib)
    text_gz = gzip.compress(text, 1, mtime=0)
    with path.open("wb") as out:
        for i in range(files):
            out.write(gzip.compress(header(b"srv/data/f%05d.txt" % i, size=mib), 1, mtime=0))
            out.write(text_gz)
        out.write(gzip.compress(header(b"srv/big.bin", size=big), 1, mtime=0))
        z = zlib.compressobj(1, zlib.DEFLATED, 31)
        block = b"\0" + bytes(range(256)) * 4096
        for start in range(0, big, len(block)):
            out.write(z.compress(block[: big - start]))
        out.write(z.flush())
        out.write(gzip.compress(padded(b"") + end_of_archive(), 1, mtime=0))
    return files * (BLOCK + mib) + BLOCK + big + len(end_of_archive())


BLOCK = 512


# ------------------------------------------------------------------ equal results


@pytest.mark.corpus
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize(
    "image,digest", corpus_params(lambda: [pytest.param(i, d, id=d[7:19]) for i, d in LAYERS], width=2)
)
def test_corpus_layer_same_on_any_threads(image: str, digest: str, threads: int) -> None:
    blob = layer_blob(image, digest).read_bytes()
    one = scan(blob, 1, options=CORPUS_OPTIONS)
    assert_same(scan(blob, threads, options=CORPUS_OPTIONS), one)
    assert_same(scan(blob, threads, ODD_CHUNKS, options=CORPUS_OPTIONS), one)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 3000),
    small=st.booleans(),
    compression=st.sampled_from(["gzip", "zstd", "none"]),
    chunks=st.one_of(st.none(), st.lists(st.integers(1, 300_000), min_size=1, max_size=4)),
)
def test_generated_layers_same_on_any_threads(
    seed: int, n: int, small: bool, compression: str, chunks: list[int] | None
) -> None:
    """Up to 3000 tiny files (thousands of ops in flight), or up to 300 of up to 1 MiB (many windows)."""
    n = n if small else n // 10
    tar, datas = many_files(seed, n, [0, 1, 100, 511, 512] if small else SIZES)
    blob = compress(tar, compression, level=1)  # type: ignore[arg-type]
    one = scan(blob, 1, chunks)
    assert one.entries.digests == b"".join(
        digests(d) if i % 50 != 49 else bytes(68) for i, d in zip(range(n), iter_with_dirs(datas, n), strict=True)
    )
    for threads in THREADS:
        assert_same(scan(blob, threads, chunks), one)


def iter_with_dirs(datas: list[bytes], n: int) -> Iterator[bytes]:
    """The contents of many_files' entries in order, b'' for its directories."""
    it = iter(datas)
    for i in range(n):
        yield b"" if i % 50 == 49 else next(it)


def test_concurrent_layers_share_the_pool() -> None:
    """Eight layers at once, on four threads of their own, each with up to four hashing threads."""
    layers = [compress(many_files(seed, 100, SIZES)[0], "gzip", level=1) for seed in range(8)]
    want = [scan(blob, 1) for blob in layers]
    before = os_threads()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: scan(b, 4, ODD_CHUNKS), layers))
    for g, w in zip(got, want, strict=True):
        assert_same(g, w)
    assert wait_for_threads(before) == before


# ------------------------------------------------------------------ errors


def error_of(blob: bytes, threads: int, chunks: list[int] | None, limits: Limits) -> tuple[type, int | None, str]:
    with pytest.raises(LayerError) as info:
        scan_layer(
            blob if chunks is None else chunked(blob, chunks),
            ScanOptions(rules=OPTIONS.rules, limits=limits),
            name="x",
            threads=threads,
        )
    return type(info.value), info.value.offset, str(info.value)


BIG, _ = many_files(7, 2000, SIZES[:13])  # 20 MB, files of up to 64 KiB
BIG_HEADERS = [i for i in range(0, len(BIG) - 1024, BLOCK) if BIG[i + 257 : i + 262] == b"ustar"]
LATE = BIG_HEADERS[-3]  # a header after megabytes of files in flight
BIG_CASES = {
    "late-bad-checksum": (BIG[:LATE] + b"\xab" * BLOCK + BIG[LATE:], TarFormatError, Limits()),
    "late-truncated-gzip": (compress(BIG, "gzip")[:-5000], CompressionError, Limits()),
    "late-truncated-zstd": (compress(BIG, "zstd")[:-5000], CompressionError, Limits()),
    "late-truncated-tar": (BIG[: LATE + 100], TarFormatError, Limits()),
    "limit-mid-layer": (BIG, LimitExceeded, Limits(max_total_bytes=len(BIG) * 2 // 3)),
    "entries-limit-mid-layer": (BIG, LimitExceeded, Limits(max_entries=1500)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_layer_same_error_on_any_threads(case: str) -> None:
    c = CASES[case]
    for chunks in (None, [1000, 1, 4096]):
        one = error_of(c.blob, 1, chunks, c.limits)
        assert all(error_of(c.blob, t, chunks, c.limits) == one for t in THREADS), case


@pytest.mark.parametrize("case", sorted(BIG_CASES))
def test_bad_big_layer_same_error_on_any_threads(case: str) -> None:
    blob, error, limits = BIG_CASES[case]
    for chunks in (None, ODD_CHUNKS):
        one = error_of(blob, 1, chunks, limits)
        assert one[0] is error and one[1] is not None
        assert all(error_of(blob, t, chunks, limits) == one for t in THREADS), case


# ------------------------------------------------------------------ the GIL, and threads that end


def test_gil_is_released_while_a_layer_is_scanned() -> None:
    """While one thread scans a layer given whole (one feed() without the GIL), this one runs."""
    blob = compress(many_files(3, 500, SIZES)[0], "gzip", level=1)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (scan(blob, 2), done.set()))
    ticks = 0
    worker.start()
    t0 = time.monotonic()
    while not done.is_set():
        time.sleep(0.001)  # gives the GIL up, and needs it back to count
        ticks += 1
    seconds = time.monotonic() - t0
    worker.join()
    assert seconds > 0.05, "the layer was scanned too fast to tell"
    assert ticks >= 10, f"this thread ran {ticks} times in {seconds:.2f} s of scanning: the scan holds the GIL"


def test_no_thread_outlives_a_scanner_closed_mid_layer() -> None:
    blob = compress(BIG, "gzip", level=1)
    before = os_threads()
    s = native.Scanner(OPTIONS, threads=4)
    assert os_threads() == before + 3, "three hashing threads for a scan on four"
    s.feed(blob[: len(blob) // 2])
    s.close()
    assert wait_for_threads(before) == before
    with pytest.raises(ValueError):
        s.feed(blob[len(blob) // 2 :])
    with pytest.raises(ValueError):
        s.finish()


def test_no_thread_outlives_a_scan_whose_input_fails() -> None:
    """The download dies mid-layer: the error comes through, and the hashing threads are gone."""
    blob = compress(BIG, "gzip", level=1)

    def download() -> Iterator[bytes]:
        yield blob[: len(blob) // 2]
        raise ConnectionResetError("peer went away")

    before = os_threads()
    with pytest.raises(ConnectionResetError):
        scan_layer(download(), OPTIONS, threads=4)
    assert wait_for_threads(before) == before


@dataclasses.dataclass(frozen=True)
class TruncatedLayer(Layer):
    """A layer whose gzip blob ends early (its digest is that of the truncated blob: a corrupt layer)."""

    def blob(self) -> bytes:
        return super().blob()[:-2000]


def test_no_thread_outlives_a_failed_analysis(tmp_path: Path) -> None:
    """A corrupt layer stops the analysis while a big one is being scanned: no thread is left."""
    big = Layer([f(f"srv/f{i:03}", content(random.Random(i), 300_000)) for i in range(60)])
    bad = TruncatedLayer([f(f"app/f{i:03}", content(random.Random(i), 20_000)) for i in range(60)])
    write_dir(oci_layout([Image([big, bad])]), tmp_path / "layout")
    config = Config(tmp_dir=str(tmp_path), result_cache_enable=False, scan_threads=4)
    before = os_threads()
    with pytest.raises(CompressionError):
        analyze(f"oci-dir:{tmp_path / 'layout'}", config, engine="native", progress=False)
    assert wait_for_threads(before) == before


# ------------------------------------------------------------------ memory, and the knob

RSS_CHILD = """
import hashlib, json, sys
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.scan.rules import default_rules
path, threads = sys.argv[1], int(sys.argv[2])
opts = ScanOptions(rules=tuple(default_rules()), capture_globs=("**/f00001.txt",), compute_diff_id=True)
with open(path, "rb") as f:
    r = scan_layer(iter(lambda: f.read(1 << 20), b""), opts, threads=threads)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rss_kb": hwm, "entries": len(r.entries), "bytes": r.stats.bytes_out,
                  "sha256": [r.entries[0].sha256, r.entries[len(r.entries) - 1].sha256]}))
"""


@pytest.mark.parametrize("threads", [2, 4])
def test_memory_bounded_on_a_1gb_layer(tmp_path: Path, threads: int) -> None:
    """Streamed from a file, a 1 GB layer (768 text files of 1 MiB, a 256 MiB one) scans in < 150 MB.

    The child runs the plain build without sanitizer runtimes (under `make asan` they would
    count their own shadow memory and quarantine)."""
    import json

    path = tmp_path / "layer.tar.gz"
    big = 256 << 20
    size = stream_layer(path, 768, big)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(path), str(threads)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    ).stdout
    got = json.loads(out)
    assert got["bytes"] == size and got["entries"] == 769
    text = content(random.Random(1), 1 << 20)
    block = b"\0" + bytes(range(256)) * 4096
    assert got["sha256"] == [hashlib.sha256(text).hexdigest(), hashlib.sha256((block * 257)[:big]).hexdigest()]
    assert got["rss_kb"] < 150 * 1024, f"peak RSS {got['rss_kb'] / 1024:.0f} MB"


def test_scan_threads_knob(tmp_path: Path) -> None:
    assert Config().scan_threads is None  # the cores the process may use
    (tmp_path / "c.yaml").write_text("scan_threads: 3\n")
    assert load_config(str(tmp_path / "c.yaml")).scan_threads == 3
    (tmp_path / "c.yaml").write_text("scan_threads: 0\n")
    with pytest.raises(ConfigError):
        load_config(str(tmp_path / "c.yaml"))
    with pytest.raises(ValueError):
        native.Scanner(OPTIONS, threads=0)
    proc = subprocess.run(
        [sys.executable, "-m", "layerscan", "scan-layer", "--scan-threads", "0", "x"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not a positive number of threads" in proc.stderr
