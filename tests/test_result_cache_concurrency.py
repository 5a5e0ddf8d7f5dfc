"""The local result cache shared by real processes: four writers stay within the bound together,
and a writer killed with kill -9 leaves a store that is consistent and readable."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from layerscan.store.results import codec
from layerscan.store.results.localstore import LocalStore

WORKER = Path(__file__).with_name("result_cache_worker.py")
MAX_BYTES = 200_000  # a few dozen entries: every put evicts


def start(root: Path, seed: int, count: int, start_file: Path | None = None) -> subprocess.Popen:
    args = [sys.executable, str(WORKER), str(root), str(MAX_BYTES), str(seed), str(count)]
    if start_file is not None:
        args += ["--start-file", str(start_file)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


@contextlib.contextmanager
def writers_paused(root: Path) -> Iterator[None]:
    """Hold the store's write lock, so that what is on disk is not changing while it is measured."""
    fd = os.open(root / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def published(root: Path) -> dict[str, int]:
    """Value files (not temp files) and their sizes."""
    out = {}
    for p in (root / "values").iterdir():
        if not p.name.startswith(".tmp-"):
            out[p.name] = p.stat().st_size
    return out


def assert_consistent(root: Path) -> LocalStore:
    store = LocalStore(root, MAX_BYTES)
    rows = {e.key: e.size for e in store.entries()}
    files = published(root)
    assert set(files) <= set(rows), "a value file without its index row escapes the bound"
    assert all(files[k] == rows[k] for k in files)
    assert sum(rows.values()) <= MAX_BYTES
    for key in files:
        data = (root / "values" / key).read_bytes()
        assert codec.header(data)[0] == codec.LAYER
        codec.decode(codec.LAYER, data)
    return store


def test_four_processes_stay_within_the_bound(tmp_path: Path) -> None:
    root = tmp_path / "rc"
    go = tmp_path / "go"
    workers = [start(root, seed, 120, go) for seed in range(4)]
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    go.touch()
    samples = []
    while any(w.poll() is None for w in workers):
        with writers_paused(root):
            samples.append(sum(published(root).values()))
        time.sleep(0.01)
    assert [w.wait() for w in workers] == [0, 0, 0, 0]
    assert len(samples) > 20 and max(samples) <= MAX_BYTES
    assert max(samples) > MAX_BYTES // 2  # the bound was really pressed against
    store = assert_consistent(root)
    assert store.stats().layers > 5


def test_a_writer_killed_mid_put_leaves_a_readable_store(tmp_path: Path) -> None:
    root = tmp_path / "rc"
    for seed in range(3):
        worker = start(root, 100 + seed, 0)
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        time.sleep(0.5 + 0.3 * seed)  # at some point of some put: writing, fsyncing, renaming, evicting
        worker.send_signal(signal.SIGKILL)
        assert worker.wait() == -signal.SIGKILL
    store = assert_consistent(root)
    assert store.stats().layers > 0
    store.prune()
    assert not [p for p in (root / "values").iterdir() if p.name.startswith(".tmp-")]
    assert {e.key for e in store.entries()} == set(published(root))
