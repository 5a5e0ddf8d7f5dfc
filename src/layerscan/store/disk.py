"""What the layer cache and the result cache share on disk: a WAL SQLite index, checked when
opened and recreated when unreadable, and the fsync of a directory after a rename into it."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def open_index(path: Path, schema: Sequence[str], what: str) -> tuple[sqlite3.Connection, bool]:
    """The index at `path` with `schema` applied, and whether it is new: missing, or unreadable
    and so recreated empty (the caller then rebuilds it from its files). The caller holds a lock
    that keeps other processes from checking or recreating it at the same time. The connection
    may be used by several threads, one at a time."""
    fresh = not path.exists()
    try:
        db = _connect(path, schema)
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
    except sqlite3.DatabaseError as e:
        log.warning("%s index %s is unreadable (%s); rebuilding it from the files", what, path, e)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        db, fresh = _connect(path, schema), True
    return db, fresh


def _connect(path: Path, schema: Sequence[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
        db.execute(statement)
    return db


def fsync_dir(path: Path) -> None:
    """Make a rename into `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on a directory
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
