"""The result cache on local disk: `<tmp_dir>/layerscan_resultcache`, bounded in bytes, LRU.

    values/<key>        one encoded value per file (see codec), published by rename
    index.sqlite        key, kind, subject, size, last access (WAL; rebuilt from the files if lost)
    write.lock          flock'd by whoever adds or removes values
    locks/<key>         flock'd by the one analysis scanning that layer (`exclusive`)

Readers take no lock: a value file is complete the moment it has its name (written to a
temp file, fsync'd, renamed), and one removed while being read stays readable through
its open descriptor. Writers (puts, evictions, prune, clear) take `write.lock`, so the
index and the files change together and the bound holds across processes: every value
file has an index row, and the rows' sizes never add up to more than the bound. A writer
killed half way leaves at worst a row without its file (counted, so the bound still
holds; `prune` drops it) or a temp file (removed once its writer is dead).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..disk import fsync_dir, open_index
from . import codec
from .model import Entry, Stats, fits, store_errors

log = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, "
    "size INTEGER NOT NULL, atime INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_atime ON entries (atime)",
)
_failures = store_errors(OSError, sqlite3.Error)


class LocalStore:
    """A bounded, LRU, multi-process key -> bytes store in a directory."""

    @_failures
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.values = self.root / "values"
        self.values.mkdir(parents=True, exist_ok=True)
        self._db_lock = threading.Lock()
        self._db = self._open_index()

    def where(self) -> str:
        return str(self.root)

    # ------------------------------------------------------------------ reading (no lock)

    @_failures
    def get(self, key: str) -> bytes | None:
        try:
            data = (self.values / key).read_bytes()
        except FileNotFoundError:
            return None
        now = time.time_ns()
        self._execute("UPDATE entries SET atime=? WHERE key=?", (now, key))
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.values / key, ns=(now, now))  # the files carry the LRU order too, for a rebuild
        return data

    # ------------------------------------------------------------------ writing (under write.lock)

    @_failures
    def put(self, key: str, value: bytes, kind: str, subject: str) -> None:
        if not fits(value, self.max_bytes, kind, subject):
            return
        tmp = self.values / f"{_TMP_PREFIX}{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "xb") as f:
                f.write(value)
                f.flush()
                os.fsync(f.fileno())
            with self._write_lock():
                self._evict(need=len(value), keep=key)
                self._execute(
                    "INSERT OR REPLACE INTO entries (key, kind, subject, size, atime) VALUES (?, ?, ?, ?, ?)",
                    (key, kind, subject, len(value), time.time_ns()),
                )
                os.rename(tmp, self.values / key)
                fsync_dir(self.values)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        log.debug("result cache: stored %s entry %s for %s (%d bytes)", kind, key, subject, len(value))

    def _evict(self, need: int, keep: str | None = None, limit: int | None = None) -> int:
        """Remove least recently used values until `need` more bytes fit under `limit` (default:
        the bound); caller holds write.lock. Returns bytes freed."""
        limit = self.max_bytes if limit is None else limit
        total = self._total() - self._size(keep)
        freed = 0
        if total + need <= limit:
            return 0
        for key, size in self._query("SELECT key, size FROM entries ORDER BY atime, key"):
            if total + need <= limit:
                break
            if key == keep:
                continue
            # File first, then row: a crash in between leaves a counted row, never an uncounted file.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.values / key)
            self._execute("DELETE FROM entries WHERE key=?", (key,))
            total -= size
            freed += size
        return freed

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        # flock: the kernel lets go when the holder dies, so a waiter never waits on a dead process.
        locks = self.root / "locks"
        try:
            locks.mkdir(exist_ok=True)
            fd = os.open(locks / key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            log.debug("result cache: no lock for %s (%s); going ahead without it", key, e)
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        # A descriptor of its own per acquisition: flock then excludes this process's other threads too.
        fd = os.open(self.root / "write.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ the `layerscan cache` verbs

    @_failures
    def entries(self) -> list[Entry]:
        """Every entry, least recently used first."""
        return [
            Entry(key, kind, subject, size, atime / 1e9)
            for key, kind, subject, size, atime in self._query(
                "SELECT key, kind, subject, size, atime FROM entries ORDER BY atime, key"
            )
        ]

    @_failures
    def stats(self) -> Stats:
        rows = self._query("SELECT kind, COUNT(*), COALESCE(SUM(size), 0) FROM entries GROUP BY kind")
        by_kind = {kind: (int(n), int(size)) for kind, n, size in rows}
        return Stats(
            self.where(),
            by_kind.get(codec.LAYER, (0, 0))[0],
            by_kind.get(codec.IMAGE, (0, 0))[0],
            sum(size for _, size in by_kind.values()),
            self.max_bytes,
        )

    @_failures
    def prune(self, max_bytes: int | None = None) -> int:
        """Drop rows whose file is gone and temp files of dead writers, then evict down to
        `max_bytes` (default: the bound); returns bytes freed by eviction."""
        with self._write_lock():
            self._reconcile()
            return self._evict(0, limit=max_bytes)

    @_failures
    def clear(self) -> int:
        """Remove every entry; returns how many."""
        with self._write_lock():
            keys = [k for (k,) in self._query("SELECT key FROM entries")]
            for key in keys:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.values / key)
            self._execute("DELETE FROM entries")
            self._reconcile()
        return len(keys)

    def _reconcile(self) -> None:
        """Under write.lock: rows without a file go; files without a row are indexed; dead writers' temp files go."""
        rows = {k for (k,) in self._query("SELECT key FROM entries")}
        for path in self.values.iterdir():
            name = path.name
            if name.startswith(_TMP_PREFIX):
                pid = name.rsplit(".", 2)[-2]
                if not (pid.isdigit() and _alive(int(pid))):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            elif name not in rows:
                self._adopt(path)
        for key in rows:
            if not (self.values / key).exists():
                self._execute("DELETE FROM entries WHERE key=?", (key,))

    def _adopt(self, path: Path) -> None:
        """Index a value file found without a row (a lost index): kept if its header reads, else removed."""
        try:
            with open(path, "rb") as f:
                kind, subject = codec.header(f.read(1 << 16))
            st = path.stat()
        except (codec.CodecError, OSError) as e:
            log.debug("result cache: dropping %s: %s", path.name, e)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        self._execute(
            "INSERT OR REPLACE INTO entries (key, kind, subject, size, atime) VALUES (?, ?, ?, ?, ?)",
            (path.name, kind, subject, st.st_size, st.st_mtime_ns),
        )

    # ------------------------------------------------------------------ the index

    def _open_index(self) -> sqlite3.Connection:
        with self._write_lock():
            db, fresh = open_index(self.root / "index.sqlite", _SCHEMA, "result cache")
            self._db = db
            if fresh:
                self._reconcile()
        return db

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._db_lock:
            return self._db.execute(sql, args).fetchall()

    def _execute(self, sql: str, args: tuple = ()) -> None:
        with self._db_lock:
            self._db.execute(sql, args)

    def _total(self) -> int:
        return int(self._query("SELECT COALESCE(SUM(size), 0) FROM entries")[0][0])

    def _size(self, key: str | None) -> int:
        rows = self._query("SELECT size FROM entries WHERE key=?", (key,)) if key else []
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        with self._db_lock:
            self._db.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
