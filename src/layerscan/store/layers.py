"""The LRU layer cache: compressed blobs under `<tmp_dir>/anchore_layercache/sha256/<hex>`.

Anchore's contract (layout, decimal-GB bound, 1 GB minimum, LRU), made safe for many
threads and processes sharing one tmp_dir:

* Every digest has a lock file, `locks/<hex>`, flock'd. A reader holds it SHARED for as
  long as it uses the entry (that is the pin); a downloader holds it EXCLUSIVE (that is
  the single flight: other workers block on their shared lock until the entry is
  published). Eviction and dropping take it EXCLUSIVE and non-blocking, so a pinned
  entry is never removed and nobody ever has a removed entry mapped, which is what keeps
  the space accounting right.
* Downloads go to `sha256/.tmp-<hex>.<pid>.<rand>`, are sha256-verified, fsync'd and
  renamed into place. A temp file whose digest lock can be taken exclusively has no
  live owner (flocks die with their process, even on kill -9) and is removed.
* `index.sqlite` (WAL) records size, xxh3 and last access of each entry. It is rebuilt
  from the files when missing or corrupt; an entry found on disk without a row is
  re-verified in full before it is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import mmap
import os
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from ..errors import DigestMismatch, LayerscanError
from ..image import LayerBlob
from .disk import fsync_dir, open_index

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

GB = 1_000_000_000  # Anchore measures the cache in decimal gigabytes
MIN_BYTES = GB  # Anchore's documented minimum
DIRNAME = "anchore_layercache"
_HEX = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_READ_CHUNK = 1 << 20


class _Counts:
    """Process-wide layer cache hits, misses and evictions, for the service's /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


COUNTS = _Counts()
_MAX_ATTEMPTS = 3  # fetches of one layer per call: a corrupt download or a lost race may repeat
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (hex TEXT PRIMARY KEY, size INTEGER NOT NULL, "
    "xxh3 TEXT NOT NULL, atime INTEGER NOT NULL)",
)


class CacheError(LayerscanError):
    """The layer cache cannot be used: a bad digest, or an entry that keeps disappearing."""


@dataclasses.dataclass(frozen=True)
class Entry:
    digest: str  # "sha256:<hex>"
    size: int
    xxh3: str
    last_access: float  # seconds since the epoch
    pinned: bool  # in use (or being written) by some worker right now


@dataclasses.dataclass(frozen=True)
class Stats:
    root: str
    entries: int
    bytes: int
    max_bytes: int
    pinned: int
    temp_files: int


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    digest: str
    ok: bool
    dropped: bool  # False when a corrupt entry is pinned; its next read drops it (xxh3 differs)


def _hex_of(digest: str) -> str:
    algo, _, hex_ = digest.partition(":")
    if algo != "sha256" or not _HEX.fullmatch(hex_):
        raise CacheError(f"layer digest {digest!r} is not sha256:<64 lowercase hex>")
    return hex_


class _Lock:
    """One flock on one lock file, through its own open file description (so threads exclude each other too)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, mode: int, blocking: bool = True) -> bool:
        # The lock file may be unlinked by the holder of an exclusive lock (eviction);
        # a lock on an unlinked inode guards nothing, so check we hold the current one.
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, mode | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return True
            os.close(fd)

    def release(self, unlink: bool = False) -> None:
        if self.fd is None:
            return
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self.fd)  # closing the last descriptor drops the flock
        self.fd = None


class LayerCache:
    """A bounded, LRU, multi-process cache of layer blobs keyed by digest."""

    def __init__(self, root: Path, max_bytes: int, *, minimum_bytes: int = MIN_BYTES) -> None:
        """`minimum_bytes` exists for tests that need a tiny cache; users get Anchore's 1 GB floor."""
        if max_bytes < minimum_bytes:
            log.warning(
                "layer cache size %.3g GB is below the minimum of %.3g GB; using %.3g GB",
                max_bytes / GB,
                minimum_bytes / GB,
                minimum_bytes / GB,
            )
            max_bytes = minimum_bytes
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.blobs = self.root / "sha256"
        self.locks = self.root / "locks"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.locks.mkdir(exist_ok=True)
        self._db_lock = threading.Lock()
        self._db = self._open_index()
        self._sweep_temps()

    @classmethod
    def from_config(cls, config: Config) -> LayerCache | None:
        if not config.layer_cache_enable:
            return None
        return cls(Path(config.tmp_dir) / DIRNAME, int(config.layer_cache_max_gigabytes * GB))

    # ------------------------------------------------------------------ the one call C1 makes

    @contextlib.contextmanager
    def layer(self, digest: str, size: int, fetch: Callable[[], Iterable[bytes]]) -> Iterator[LayerBlob]:
        """The layer as a verified mmap, pinned until the block ends; fetched once if missing.

        A layer larger than the whole cache is not stored: its chunks are handed through
        unverified, and the scanner checks the digest in its pass.
        """
        hex_ = _hex_of(digest)
        if size > self.max_bytes:
            log.info(
                "layer %s (%d bytes) is larger than the whole layer cache (%d bytes); streaming it",
                digest,
                size,
                self.max_bytes,
            )
            yield LayerBlob(fetch(), verified=False)
            return
        fetched = False
        for _ in range(_MAX_ATTEMPTS):
            lock = _Lock(self.locks / hex_)
            lock.acquire(fcntl.LOCK_SH)  # waits while another worker downloads it
            try:
                data = self._open_entry(hex_)
            except BaseException:
                lock.release()
                raise
            if data is not None:
                if not fetched:
                    COUNTS.add("hits")
                self._touch(hex_)
                try:
                    yield LayerBlob(data, verified=True)
                finally:
                    self._unpin(data, lock)
                return
            lock.release()
            fetched = self._download(hex_, size, fetch)
        raise CacheError(f"layer {digest}: evicted or dropped {_MAX_ATTEMPTS} times before it could be read")

    # ------------------------------------------------------------------ reading

    def _open_entry(self, hex_: str) -> mmap.mmap | bytes | None:
        """The entry mapped, if present and intact; None if missing or corrupt. Caller holds the lock."""
        path = self.blobs / hex_
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._forget(hex_)
            return None
        try:
            actual_size = os.fstat(fd).st_size
            data: mmap.mmap | bytes = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if actual_size else b""
        finally:
            os.close(fd)
        row = self._row(hex_)
        if row is None:
            # On disk but not indexed (index lost): trust it only after a full sha256 check.
            if hashlib.sha256(data).hexdigest() != hex_:
                log.warning("layer cache entry sha256:%s does not match its digest; it will be dropped", hex_)
                _close(data)
                return None
            self._record(hex_, actual_size, xxhash.xxh3_64_hexdigest(data), time.time())
            return data
        size, xxh3 = row
        # Size is free to check. xxh3 is checked on every read too: it runs at memory speed
        # (well over 10 GB/s, a few ms for a typical layer), under 1% of the scan that follows,
        # and it is what catches a flipped byte before a wrong digest lands in a report.
        if actual_size != size:
            log.warning(
                "layer cache entry sha256:%s has %d bytes, %d recorded; it will be dropped", hex_, actual_size, size
            )
        elif xxhash.xxh3_64_hexdigest(data) != xxh3:
            log.warning("layer cache entry sha256:%s fails its xxh3 check; it will be dropped", hex_)
        else:
            return data
        _close(data)
        return None

    def _unpin(self, data: mmap.mmap | bytes, lock: _Lock) -> None:
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:
                # The caller still holds views into the mapping: keep the pin until the
                # mapping itself is gone, so the entry's space is not counted free too early.
                weakref.finalize(data, lock.release)
                return
        lock.release()

    # ------------------------------------------------------------------ writing

    def _download(self, hex_: str, size: int, fetch: Callable[[], Iterable[bytes]]) -> bool:
        """Fetch, verify and publish one entry, unless another worker did while we waited (False)."""
        lock = _Lock(self.locks / hex_)
        lock.acquire(fcntl.LOCK_EX)
        try:
            data = self._open_entry(hex_)
            if data is not None:  # published while we waited for the lock
                _close(data)
                return False
            self._remove_entry(hex_)  # a corrupt one, if any: nobody else can have it open now
            self._remove_temps(hex_)  # left by a dead downloader: we hold its lock, so it is dead
            self._make_room(size)
            tmp = self.blobs / f"{_TMP_PREFIX}{hex_}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            try:
                n, xxh3 = self._write_verified(tmp, hex_, size, fetch)
                os.rename(tmp, self.blobs / hex_)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            fsync_dir(self.blobs)
            self._record(hex_, n, xxh3, time.time())
            log.debug("layer cache: stored sha256:%s (%d bytes)", hex_, n)
            COUNTS.add("misses")
        finally:
            lock.release()
        self._make_room(0)
        return True

    @staticmethod
    def _write_verified(tmp: Path, hex_: str, size: int, fetch: Callable[[], Iterable[bytes]]) -> tuple[int, str]:
        sha, xxh, n = hashlib.sha256(), xxhash.xxh3_64(), 0
        with open(tmp, "xb") as f:
            for chunk in fetch():
                n += len(chunk)
                if n > size:  # a registry that sends more than the manifest said: stop before the disk fills
                    raise DigestMismatch(f"layer sha256:{hex_}", f"{size} bytes", f"more than {size} bytes")
                sha.update(chunk)
                xxh.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if sha.hexdigest() != hex_:
            raise DigestMismatch(f"layer sha256:{hex_}", f"sha256:{hex_}", f"sha256:{sha.hexdigest()}")
        return n, xxh.hexdigest()

    # ------------------------------------------------------------------ eviction and housekeeping

    def _make_room(self, need: int) -> int:
        """Evict least recently used unpinned entries until `need` more bytes fit; returns bytes freed."""
        freed = 0
        for hex_, size, _ in self._rows_lru():
            if self._total() + need <= self.max_bytes:
                break
            if self._try_drop(hex_):
                COUNTS.add("evictions")
                log.info("layer cache: evicted sha256:%s (%d bytes)", hex_, size)
                freed += size
        over = self._total() + need - self.max_bytes
        if over > 0:
            log.warning("layer cache is %d bytes over its limit: the remaining entries are in use", over)
        return freed

    def _try_drop(self, hex_: str) -> bool:
        """Remove an entry unless someone has it pinned or is writing it."""
        lock = _Lock(self.locks / hex_)
        if not lock.acquire(fcntl.LOCK_EX, blocking=False):
            return False
        try:
            self._remove_entry(hex_)
        finally:
            lock.release(unlink=True)
        return True

    def _remove_entry(self, hex_: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.blobs / hex_)
        self._forget(hex_)

    def _remove_temps(self, hex_: str) -> None:
        for tmp in self.blobs.glob(f"{_TMP_PREFIX}{hex_}.*"):
            log.info("layer cache: removing %s, left by an interrupted download", tmp.name)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _sweep_temps(self) -> int:
        """Remove temp files of every download whose worker is gone; returns how many."""
        removed = 0
        for tmp in self.blobs.glob(f"{_TMP_PREFIX}*"):
            hex_ = tmp.name[len(_TMP_PREFIX) :].split(".", 1)[0]
            lock = _Lock(self.locks / hex_)
            if lock.acquire(fcntl.LOCK_EX, blocking=False):
                try:
                    self._remove_temps(hex_)
                    removed += 1
                finally:
                    lock.release()
        return removed

    def _is_pinned(self, hex_: str) -> bool:
        lock = _Lock(self.locks / hex_)
        if lock.acquire(fcntl.LOCK_EX, blocking=False):
            lock.release()
            return False
        return True

    # ------------------------------------------------------------------ the `layerscan cache` verbs

    def entries(self) -> list[Entry]:
        """Every entry, least recently used first."""
        return [
            Entry(f"sha256:{h}", size, xxh3, atime / 1e9, self._is_pinned(h))
            for h, size, atime, xxh3 in self._query("SELECT hex, size, atime, xxh3 FROM entries ORDER BY atime, hex")
        ]

    def stats(self) -> Stats:
        entries = self.entries()
        temps = sum(1 for _ in self.blobs.glob(f"{_TMP_PREFIX}*"))
        return Stats(
            str(self.root),
            len(entries),
            sum(e.size for e in entries),
            self.max_bytes,
            sum(e.pinned for e in entries),
            temps,
        )

    def prune(self, max_bytes: int | None = None) -> int:
        """Evict down to `max_bytes` (default: the cache's limit) and sweep dead temp files; returns bytes freed."""
        self._sweep_temps()
        if max_bytes is None:
            return self._make_room(0)
        saved, self.max_bytes = self.max_bytes, max_bytes
        try:
            return self._make_room(0)
        finally:
            self.max_bytes = saved

    def clear(self) -> tuple[int, int]:
        """Remove every entry not in use; returns (removed, kept because pinned)."""
        self._sweep_temps()
        removed = kept = 0
        for hex_ in {h for h, _, _ in self._rows_lru()} | set(self._files()):
            if self._try_drop(hex_):
                removed += 1
            else:
                kept += 1
        return removed, kept

    def verify(self) -> list[VerifyResult]:
        """Re-check the full sha256 of every entry not being written; drop the corrupt ones."""
        results = []
        for hex_ in sorted(set(self._files()) | {h for h, _, _ in self._rows_lru()}):
            lock = _Lock(self.locks / hex_)
            if not lock.acquire(fcntl.LOCK_SH, blocking=False):
                continue  # being downloaded: it is verified as it is published
            try:
                ok = self._sha256_ok(hex_)
            finally:
                lock.release()
            dropped = False
            if not ok:
                log.warning("layer cache entry sha256:%s fails its sha256 check", hex_)
                dropped = self._try_drop(hex_)
            results.append(VerifyResult(f"sha256:{hex_}", ok, dropped))
        return results

    def _sha256_ok(self, hex_: str) -> bool:
        sha = hashlib.sha256()
        try:
            with open(self.blobs / hex_, "rb") as f:
                while chunk := f.read(_READ_CHUNK):
                    sha.update(chunk)
        except FileNotFoundError:
            self._forget(hex_)
            return False
        return sha.hexdigest() == hex_

    def _files(self) -> list[str]:
        return [p.name for p in self.blobs.iterdir() if _HEX.fullmatch(p.name)]

    # ------------------------------------------------------------------ the index

    def _index_path(self) -> Path:
        return self.root / "index.sqlite"

    def _open_index(self) -> sqlite3.Connection:
        with self._index_guard():
            db, fresh = open_index(self._index_path(), _SCHEMA, "layer cache")
            if fresh:
                self._db = db
                self._rebuild()
        return db

    @contextlib.contextmanager
    def _index_guard(self) -> Iterator[None]:
        """One process at a time checks and rebuilds the index."""
        lock = _Lock(self.root / "index.lock")
        lock.acquire(fcntl.LOCK_EX)
        try:
            yield
        finally:
            lock.release()

    def _rebuild(self) -> None:
        """Index every entry on disk that is intact; drop the ones that are not."""
        for hex_ in self._files():
            lock = _Lock(self.locks / hex_)
            if not lock.acquire(fcntl.LOCK_SH, blocking=False):
                continue  # being written: its writer records it
            try:
                data = self._open_entry(hex_)  # no row yet: a full sha256 check, then recorded
                if data is None:
                    continue
                _close(data)
                # Keep the LRU order the files carry (Anchore's cache and ours touch them on use).
                with self._db_lock:
                    self._db.execute(
                        "UPDATE entries SET atime=? WHERE hex=?", (os.stat(self.blobs / hex_).st_mtime_ns, hex_)
                    )
            finally:
                lock.release()
            if data is None:
                self._try_drop(hex_)
        if self._files():
            log.info("layer cache index rebuilt: %d entries", len(self._files()))

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._db_lock:
            return self._db.execute(sql, args).fetchall()

    def _row(self, hex_: str) -> tuple[int, str] | None:
        rows = self._query("SELECT size, xxh3 FROM entries WHERE hex=?", (hex_,))
        return rows[0] if rows else None

    def _rows_lru(self) -> list[tuple[str, int, int]]:
        return self._query("SELECT hex, size, atime FROM entries ORDER BY atime, hex")

    def _total(self) -> int:
        return int(self._query("SELECT COALESCE(SUM(size), 0) FROM entries")[0][0])

    def _record(self, hex_: str, size: int, xxh3: str, when: float) -> None:
        self._query(
            "INSERT OR REPLACE INTO entries (hex, size, xxh3, atime) VALUES (?, ?, ?, ?)",
            (hex_, size, xxh3, int(when * 1e9)),
        )

    def _touch(self, hex_: str) -> None:
        now = time.time_ns()
        self._query("UPDATE entries SET atime=? WHERE hex=?", (now, hex_))
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.blobs / hex_, ns=(now, now))  # as Anchore does, so the files carry the order too

    def _forget(self, hex_: str) -> None:
        self._query("DELETE FROM entries WHERE hex=?", (hex_,))

    def close(self) -> None:
        with self._db_lock:
            self._db.close()


def _close(data: mmap.mmap | bytes) -> None:
    if isinstance(data, mmap.mmap):
        data.close()
