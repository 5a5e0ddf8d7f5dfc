"""The layer cache with real files, real processes and real signals."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import answers, layer_blob
from layerscan.config import Config
from layerscan.errors import DigestMismatch
from layerscan.store.layers import GB, LayerCache

WORKER = Path(__file__).with_name("cache_worker.py")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(tag: int, size: int = 300) -> bytes:
    return (f"layer-{tag}-".encode() * size)[:size]


class Fetcher:
    """A fetch callable that counts its calls."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.calls = 0

    def __call__(self) -> Iterator[bytes]:
        self.calls += 1
        for i in range(0, len(self.content), 128):
            yield self.content[i : i + 128]


def put(cache: LayerCache, content: bytes) -> Fetcher:
    f = Fetcher(content)
    with cache.layer(digest_of(content), len(content), f) as lb:
        assert lb.verified and bytes(lb.data) == content
    return f


def present(cache: LayerCache) -> set[str]:
    return {e.digest for e in cache.entries()}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "anchore_layercache"


def small(root: Path, max_bytes: int = 1000) -> LayerCache:
    return LayerCache(root, max_bytes, minimum_bytes=0)


def worker(root: Path, max_bytes: int, content: bytes, tmp: Path, counter: Path, *extra: str) -> subprocess.Popen:
    path = tmp / f"blob-{hashlib.sha256(content).hexdigest()[:12]}"
    path.write_bytes(content)
    cmd = [sys.executable, str(WORKER), str(root), str(max_bytes), digest_of(content), str(path), str(counter), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_layout_is_anchores_and_hit_does_not_fetch(root: Path) -> None:
    cache = small(root)
    content = blob(1)
    assert put(cache, content).calls == 1
    assert (root / "sha256" / digest_of(content).split(":")[1]).read_bytes() == content
    assert put(cache, content).calls == 0


def test_lru_order(root: Path) -> None:
    cache = small(root)
    a, b, c, d = (blob(i) for i in range(4))
    for x in (a, b, c):
        put(cache, x)
    put(cache, a)  # a is now the most recently used; b the least
    assert [e.digest for e in cache.entries()] == [digest_of(b), digest_of(c), digest_of(a)]
    put(cache, d)  # 1200 > 1000: one entry must go
    assert present(cache) == {digest_of(a), digest_of(c), digest_of(d)}
    assert not (root / "sha256" / digest_of(b).split(":")[1]).exists()
    assert cache.stats().bytes == 900


def test_pinned_entry_survives_eviction_pressure_from_another_process(root: Path, tmp_path: Path) -> None:
    pinned = blob(0, 400)
    counter = tmp_path / "count"
    holder = worker(root, 1000, pinned, tmp_path, counter, "--hold", "30")
    try:
        assert holder.stdout.readline().startswith("pinned")
        cache = small(root)
        others = [blob(i, 400) for i in range(1, 5)]
        for x in others:
            put(cache, x)
        # The pinned layer is the least recently used, yet it stays; the others take turns.
        assert digest_of(pinned) in present(cache)
        assert digest_of(others[-1]) in present(cache)
        assert cache.entries()[0].pinned and cache.entries()[0].digest == digest_of(pinned)
    finally:
        holder.kill()
        holder.wait()
    cache.prune(400)  # unpinned now (its holder died), so it can go
    assert present(cache) == {digest_of(others[-1])}


def test_pin_held_while_the_caller_keeps_a_view(root: Path) -> None:
    cache = small(root)
    content = blob(7)
    with cache.layer(digest_of(content), len(content), Fetcher(content)) as lb:
        view = memoryview(lb.data)
    assert cache.entries()[0].pinned  # the mapping is still exported, so not evictable
    view.release()
    del lb, view
    assert not cache.entries()[0].pinned


def test_minimum_is_one_gigabyte(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert LayerCache(root, 10).max_bytes == GB
    assert "below the minimum" in caplog.text
    cache = LayerCache.from_config(
        Config(tmp_dir=str(root.parent), layer_cache_enable=True, layer_cache_max_gigabytes=0)
    )
    assert cache is not None and cache.max_bytes == GB and cache.root == root
    cache = LayerCache.from_config(
        Config(tmp_dir=str(root.parent), layer_cache_enable=True, layer_cache_max_gigabytes=3)
    )
    assert cache is not None and cache.max_bytes == 3 * GB  # decimal, as Anchore
    assert LayerCache.from_config(Config(tmp_dir=str(root.parent), layer_cache_enable=False)) is None


def test_kill_9_mid_download_leaves_nothing_and_retry_succeeds(root: Path, tmp_path: Path) -> None:
    content = os.urandom(200 * 4096)
    hex_ = digest_of(content).split(":")[1]
    counter = tmp_path / "count"
    proc = worker(root, 10_000_000, content, tmp_path, counter, "--chunk-delay", "0.05")
    wait_for(lambda: any((root / "sha256").glob(f".tmp-{hex_}.*")))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (root / "sha256" / hex_).exists()
    assert any((root / "sha256").glob(f".tmp-{hex_}.*"))
    cache = small(root, 10_000_000)  # opening the cache sweeps downloads whose worker is gone
    assert digest_of(content) not in present(cache)
    assert not any((root / "sha256").glob(".tmp-*"))
    assert put(cache, content).calls == 1
    assert not any((root / "sha256").glob(".tmp-*"))
    assert (root / "sha256" / hex_).read_bytes() == content


def test_sweep_removes_only_dead_downloads(root: Path) -> None:
    cache = small(root)
    dead = root / "sha256" / (".tmp-" + "a" * 64 + ".999999.deadbeef")
    dead.write_bytes(b"partial")
    live_content = blob(3)
    release = threading.Event()
    started = threading.Event()

    def slow() -> Iterator[bytes]:
        yield live_content[:10]
        started.set()
        release.wait(20)
        yield live_content[10:]

    t = threading.Thread(target=lambda: put_with(cache, live_content, slow))
    t.start()
    started.wait(20)
    cache.prune()
    live = list((root / "sha256").glob(".tmp-*"))
    release.set()
    t.join()
    assert not dead.exists()
    assert len(live) == 1 and digest_of(live_content)[7:] in live[0].name
    assert digest_of(live_content) in present(cache)


def put_with(cache: LayerCache, content: bytes, fetch: Callable[[], Iterator[bytes]]) -> None:
    with cache.layer(digest_of(content), len(content), fetch) as lb:
        assert bytes(lb.data) == content


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_entry_is_dropped_and_downloaded_again(
    root: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = small(root)
    content = blob(5)
    put(cache, content)
    path = root / "sha256" / digest_of(content).split(":")[1]
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[150] ^= 0x01  # same size: only the xxh3 check can see it
    else:
        del raw[-1]
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        assert put(cache, content).calls == 1
    assert ("xxh3" if damage == "flip" else "bytes") in caplog.text
    assert path.read_bytes() == content


def test_verify_rechecks_sha256_and_drops_corrupt(root: Path) -> None:
    cache = small(root)
    good, bad = blob(1), blob(2)
    put(cache, good)
    put(cache, bad)
    path = root / "sha256" / digest_of(bad).split(":")[1]
    path.write_bytes(bad[:-1] + b"!")
    results = {r.digest: r for r in cache.verify()}
    assert results[digest_of(good)].ok
    assert not results[digest_of(bad)].ok and results[digest_of(bad)].dropped
    assert present(cache) == {digest_of(good)} and not path.exists()


def test_wrong_digest_raises_and_caches_nothing(root: Path) -> None:
    cache = small(root)
    content = blob(1)
    with pytest.raises(DigestMismatch):
        with cache.layer(digest_of(content), len(content), Fetcher(blob(2))):
            pass
    with pytest.raises(DigestMismatch):  # more bytes than the descriptor said
        with cache.layer(digest_of(content), 10, Fetcher(content)):
            pass
    assert cache.entries() == [] and list((root / "sha256").iterdir()) == []


@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_lost_index_is_rebuilt_from_disk(root: Path, damage: str) -> None:
    cache = small(root)
    a, b, c = blob(1), blob(2), blob(3)
    for x in (a, b, c):
        put(cache, x)
    put(cache, a)  # order on disk: b, c, a
    cache.close()
    (root / "sha256" / digest_of(c).split(":")[1]).write_bytes(c[:-1] + b"?")  # corrupt while nobody looks
    index = root / "index.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    if damage == "garbage":
        index.write_bytes(b"this is not a database" * 100)
    cache = small(root)
    assert [e.digest for e in cache.entries()] == [digest_of(b), digest_of(a)]
    assert cache.stats().bytes == 600
    assert put(cache, a).calls == 0 and put(cache, b).calls == 0


def test_single_flight_across_processes(root: Path, tmp_path: Path) -> None:
    content = os.urandom(64 * 4096)
    counter, go = tmp_path / "count", tmp_path / "go"
    procs = [
        worker(root, 10_000_000, content, tmp_path, counter, "--chunk-delay", "0.01", "--start-file", str(go))
        for _ in range(5)
    ]
    for p in procs:  # all five have opened the cache before any asks for the layer
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert [o[0].split() for o in outs] == [["pinned", hashlib.sha256(content).hexdigest()]] * 5
    assert len(counter.read_text().splitlines()) == 1


def test_single_flight_across_threads(root: Path) -> None:
    cache = small(root, 10_000_000)
    content = os.urandom(100_000)
    fetcher = Fetcher(content)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            put_with(cache, content, fetcher)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and fetcher.calls == 1


def test_layer_larger_than_cache_streams(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = small(root)
    content = blob(9, 5000)
    fetcher = Fetcher(content)
    with caplog.at_level(logging.INFO):
        with cache.layer(digest_of(content), len(content), fetcher) as lb:
            assert not lb.verified
            assert b"".join(lb.data) == content
    assert "larger than the whole layer cache" in caplog.text
    assert cache.entries() == [] and list((root / "sha256").iterdir()) == []


def test_clear_keeps_pinned(root: Path) -> None:
    cache = small(root)
    a, b = blob(1), blob(2)
    put(cache, a)
    with cache.layer(digest_of(b), len(b), Fetcher(b)):
        assert cache.clear() == (1, 1)
    assert present(cache) == {digest_of(b)}


@pytest.mark.corpus
def test_real_corpus_layer_through_the_cache(root: Path) -> None:
    name = "debian-apps"
    layers = answers(name)["layers"]
    desc = min(layers, key=lambda d: d["size"])
    content = layer_blob(name, desc["digest"]).read_bytes()
    cache = small(root, 10_000_000)
    with cache.layer(desc["digest"], desc["size"], Fetcher(content)) as lb:
        assert lb.verified and hashlib.sha256(lb.data).hexdigest() == desc["digest"].split(":")[1]
