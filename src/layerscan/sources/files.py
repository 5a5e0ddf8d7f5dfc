"""The files of a local image root: a directory, or an uncompressed tar mmapped once.

Nothing is extracted. A directory's files are mmapped one at a time; a tar is mmapped
once and each member is a memoryview of its byte range, since an uncompressed tar stores
a member's bytes contiguously. Constructors only remember the path: `open()` does the I/O.

Names are never trusted as paths: every lookup goes through `safe_name()`, which keeps
it relative and inside the root. (A layout directory may itself have symlinked blobs, as
Anchore's layer cache makes them; the digest checks vouch for them.)
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from ..errors import SourceError
from ..image import Buffer
from .media import check_digest

log = logging.getLogger(__name__)

MAX_LINK_HOPS = 8  # docker save links a repeated layer.tar to its first copy: one hop


class Files(Protocol):
    """The files of an image root, by safe relative name."""

    def open(self) -> None: ...
    def has(self, name: str) -> bool: ...
    def read(self, name: str) -> bytes | None: ...
    def view(self, name: str) -> contextlib.AbstractContextManager[Buffer | None]: ...
    def close(self) -> None: ...


def safe_name(name: object, what: str) -> str:
    """`name` relative to the image root, normalized; SourceError if it is absolute or leaves the root."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise SourceError(f"{what}: invalid name {name!r}")
    norm = posixpath.normpath(name)
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise SourceError(f"{what}: name {name!r} points outside the image")
    return norm


def blob_name(digest: str, what: str) -> str:
    alg, hexpart = check_digest(digest, what)
    return f"blobs/{alg}/{hexpart}"


@contextlib.contextmanager
def map_file(path: Path) -> Iterator[Buffer | None]:
    """A regular file's bytes, mmapped (b"" when empty, which mmap refuses); None if it does not exist.

    Anything else (a directory, a FIFO, no permission) is a SourceError; opening never blocks.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        yield None
        return
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(f"{path}: not a regular file")
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if st.st_size else None
    finally:
        os.close(fd)  # a mapping keeps its own reference to the file
    if mm is None:
        yield b""
        return
    try:
        yield mm
    finally:
        _unmap(mm)


class DirFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self) -> None:
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: {'not a directory' if self.root.exists() else 'no such directory'}")

    def has(self, name: str) -> bool:
        return (self.root / name).is_file()

    def read(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise SourceError(f"{self.root / name}: cannot read ({e.strerror})") from None

    def view(self, name: str) -> contextlib.AbstractContextManager[Buffer | None]:
        return map_file(self.root / name)

    def close(self) -> None:
        pass


class _Member(NamedTuple):
    offset: int
    size: int
    link: str | None  # normalized target name of a symlink or hardlink member


class TarFiles:
    """An uncompressed tar, mmapped once; members by normalized name ("./" prefixes dropped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._members: dict[str, _Member] = {}
        self._mm: mmap.mmap | None = None

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"{self.path}: {'not a file' if self.path.exists() else 'no such file'}")
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise SourceError(f"{self.path}: cannot open ({e.strerror})") from None
        with f:
            self._members = self._index(f)
            if os.fstat(f.fileno()).st_size:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # outlives the descriptor

    def _index(self, f: BinaryIO) -> dict[str, _Member]:
        members: dict[str, _Member] = {}
        try:
            with tarfile.open(fileobj=f, mode="r:") as tf:
                for m in tf:
                    name = posixpath.normpath(m.name.lstrip("/"))
                    if name == ".." or name.startswith("../"):
                        continue  # never addressable: every lookup goes through safe_name()
                    link = None
                    if m.issym():
                        link = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
                    elif m.islnk():
                        link = posixpath.normpath(m.linkname.lstrip("/"))
                    elif not m.isreg():
                        continue
                    members[name] = _Member(m.offset_data, m.size, link)
        except (tarfile.TarError, EOFError) as e:
            raise SourceError(f"{self.path}: not an uncompressed tar archive ({e})") from None
        return members

    def _find(self, name: str) -> _Member | None:
        for _ in range(MAX_LINK_HOPS):
            m = self._members.get(name)
            if m is None or m.link is None:
                return m
            name = safe_name(m.link, f"{self.path}: link {name}")
        raise SourceError(f"{self.path}: {name}: too many links")

    def _range(self, name: str) -> memoryview | None:
        m = self._find(name)
        if m is None:
            return None
        if self._mm is None or m.offset + m.size > len(self._mm):
            raise SourceError(f"{self.path}: {name} is truncated")
        return memoryview(self._mm)[m.offset : m.offset + m.size]

    def has(self, name: str) -> bool:
        return name in self._members

    def read(self, name: str) -> bytes | None:
        view = self._range(name)
        if view is None:
            return None
        with view:
            return bytes(view)

    @contextlib.contextmanager
    def view(self, name: str) -> Iterator[Buffer | None]:
        view = self._range(name)
        try:
            yield view
        finally:
            if view is not None:
                with contextlib.suppress(BufferError):  # still exported: freed with its last user
                    view.release()

    def close(self) -> None:
        if self._mm is not None:
            _unmap(self._mm)
            self._mm = None


def _unmap(mm: mmap.mmap) -> None:
    """Close a mapping unless a view of it is still alive (a scan's buffer, or one held by the
    traceback of the error being raised, which must not be masked): then it goes with that view."""
    try:
        mm.close()
    except BufferError:
        log.debug("mapping still in use; unmapped when its last view is released")
