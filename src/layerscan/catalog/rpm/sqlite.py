"""rpm >= 4.16's rpmdb.sqlite: the header blobs of table Packages, read with the stdlib.

The captured bytes go to a private temp directory (with the -wal file when the image
has one, so uncheckpointed transactions count) and are opened read-only there.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path


class SqliteError(ValueError):
    """The file is not a readable rpm sqlite database."""


def read_blobs(db: bytes, wal: bytes | None = None) -> Iterator[bytes]:
    with tempfile.TemporaryDirectory(prefix="layerscan-rpmdb-") as tmp:
        path = Path(tmp, "rpmdb.sqlite")
        path.write_bytes(db)
        if wal:
            Path(tmp, "rpmdb.sqlite-wal").write_bytes(wal)
        # Without a WAL nothing needs writing at all: immutable skips locking and -shm.
        uri = f"{path.as_uri()}?mode=ro" + ("" if wal else "&immutable=1")
        try:
            conn = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as e:
            raise SqliteError(f"cannot open: {e}") from None
        try:
            rows = conn.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
        except sqlite3.Error as e:
            raise SqliteError(f"cannot read table Packages: {e}") from None
        finally:
            conn.close()
    for (blob,) in rows:
        if isinstance(blob, bytes):
            yield blob
