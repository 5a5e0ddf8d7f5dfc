"""The secret rules' Hyperscan database, kept on disk between processes.

Compiling the rules takes ~0.15 s, before the first layer can start: a one-shot analysis
of a small image spends about half its time there. A compiled database is saved in
`<tmp_dir>/layerscan_hscache/` under a key made of the patterns, the Hyperscan version and
the native extension's build, and loaded by the next process instead.

A database is bytecode Hyperscan runs, so a file is trusted only in a directory of this
user's that nobody else may write to, and only when its bytes have the digest written
beside them (Hyperscan's own check misses some damage). Anything else is a miss: the rules
are compiled, as without the cache. The directory keeps the KEEP databases used last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

from .. import _scan

log = logging.getLogger(__name__)

DIRNAME = "layerscan_hscache"
KEEP = 8  # databases kept (~200 KB each): a few rule sets and builds in use at once
_MAGIC = b"layerscan-hsdb 1\n"


def load(directory: Path, patterns: tuple[str, ...]) -> _scan.Database | None:
    """The database saved for these patterns; None when there is none this process may trust."""
    if not _private(directory):
        return None
    path = directory / _key(patterns)
    try:
        data = path.read_bytes()
        os.utime(path)  # used: the last to go when save() makes room
    except OSError:
        return None
    head, _, rest = data.partition(b"\n")
    meta, _, body = rest.partition(b"\n")
    try:
        if head + b"\n" != _MAGIC:
            raise ValueError("not a saved database")
        info = json.loads(meta)
        if info["sha256"] != hashlib.sha256(body).hexdigest():
            raise ValueError("its bytes are not the ones saved")
        return _scan.deserialize_database(body, tuple(info["always"]))
    except (ValueError, KeyError, TypeError) as e:
        log.debug("rule database cache: %s unusable (%s); compiling", _key(patterns), e)
        return None


def save(directory: Path, patterns: tuple[str, ...], db: _scan.Database) -> None:
    """Keep `db` for the next process; a directory that cannot take it is left alone."""
    body = _scan.serialize_database(db)
    meta = json.dumps({"always": list(db.always), "sha256": hashlib.sha256(body).hexdigest()}).encode()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(directory):
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + meta + b"\n" + body)
            os.replace(tmp, directory / _key(patterns))  # whole or not at all, whoever reads it
        except BaseException:
            os.unlink(tmp)
            raise
        _keep_newest(directory, KEEP)
    except OSError as e:
        log.debug("rule database cache: not saved in %s (%s)", directory, e)


def _keep_newest(directory: Path, n: int) -> None:
    """Remove all but the n databases used last (another build or rule set leaves one behind)."""
    saved = []
    for path in directory.iterdir():
        if not path.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):  # a process beside this one removed it first
                saved.append((path.stat().st_mtime_ns, path))
    for _, path in sorted(saved, reverse=True)[n:]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _private(directory: Path) -> bool:
    """Whether `directory` is this user's and no one else may write to it."""
    try:
        st = directory.stat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _key(patterns: tuple[str, ...]) -> str:
    """The file name of these patterns' database: the patterns, the Hyperscan version, and the build
    of the extension (whose compile flags a database depends on) as its file's size and time."""
    build = os.stat(_scan.__file__)
    material = [_scan.library_versions()["hyperscan"], build.st_size, build.st_mtime_ns, *patterns]
    return hashlib.sha256(json.dumps(material).encode("utf-8", "surrogateescape")).hexdigest()
