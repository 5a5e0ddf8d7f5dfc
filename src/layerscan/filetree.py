"""The squashed image's file table: every final path, the layer that wrote it, and the
captured contents, with symlink resolution as Anchore dereferences links.

squash builds an `ImageFiles`; catalogers, findings and reports read it. It is columnar,
one row per final path in path order, like the scanner's EntryTable: an image of 300k
files is a dozen arrays and lists, not 300k records. `files` is the same table as a
read-only mapping path -> FinalFile for callers that want records, built on each access.
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
from array import array
from collections.abc import Iterator, Mapping
from typing import BinaryIO, NamedTuple

from .scan.model import (
    DIGEST_LEN,
    TYPE_BYTES,
    TYPE_CODES,
    Captured,
    FileRecord,
    Mark,
    captured_bytes,
    hex_digests,
    record_at,
)

# Entry type byte -> kind name ("file", "dir", ...), indexable by the byte itself.
KIND_OF: tuple[str, ...] = tuple(TYPE_CODES.get(chr(b), "") for b in range(256))
_SYMLINK = TYPE_BYTES["symlink"]
_HARDLINK = TYPE_BYTES["hardlink"]


class FinalFile(NamedTuple):
    """An entry of the squashed image and the index of the layer that last wrote it."""

    record: FileRecord  # hardlinks carry their target's size and digests
    layer: int


class SymlinkLoop(Exception):
    pass


@dataclasses.dataclass
class ImageFiles:
    """The image's final file table, a row per absolute path in sorted order, plus captured contents."""

    paths: list[str]
    types: bytearray  # TYPE_BYTES codes
    modes: array
    uids: array
    gids: array
    sizes: array  # a hardlink's is its target's
    mtimes: array
    unames: list[str]
    gnames: list[str]
    links: list[str | None]
    # DIGEST_LEN bytes per row (md5, sha1, sha256); meaningful where `hashed` is 1: regular
    # files with content, and hardlinks to one (they carry their target's digests).
    digests: bytearray
    hashed: bytearray
    layers: array  # the index of the layer that last wrote the row
    xattrs: list[tuple[str, ...]]
    captured: dict[str, Captured]  # contents of final regular files that matched a capture glob
    too_big_to_capture: set[str] = dataclasses.field(default_factory=set)
    # executables' windows at the scan's markers (scan.model.Mark), by final path
    marks: dict[str, tuple[Mark, ...]] = dataclasses.field(default_factory=dict)
    _index: dict[str, int] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _symlinks: frozenset[str] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    MAX_HOPS = 128  # as Anchore dereferences links

    @classmethod
    def of(
        cls,
        final: Mapping[str, FinalFile],
        captured: dict[str, Captured],
        too_big: set[str] | None = None,
        marks: dict[str, tuple[Mark, ...]] | None = None,
    ) -> ImageFiles:
        """The table of these records (any order)."""
        paths = sorted(final)
        rows = [final[p] for p in paths]
        recs = [f.record for f in rows]
        digests = bytearray()
        for r in recs:
            digests += bytes.fromhex(r.md5 + r.sha1 + r.sha256) if r.sha256 and r.md5 and r.sha1 else bytes(DIGEST_LEN)
        return cls(
            paths,
            bytearray(TYPE_BYTES[r.type] for r in recs),
            array("l", (r.mode for r in recs)),
            array("q", (r.uid for r in recs)),
            array("q", (r.gid for r in recs)),
            array("q", (r.size for r in recs)),
            array("q", (r.mtime for r in recs)),
            [r.uname for r in recs],
            [r.gname for r in recs],
            [r.link for r in recs],
            digests,
            bytearray(r.sha256 is not None for r in recs),
            array("q", (f.layer for f in rows)),
            [r.xattrs for r in recs],
            captured,
            set(too_big or ()),
            dict(marks or {}),
        )

    # ------------------------------------------------------------------ rows

    def row(self, path: str) -> int | None:
        """The row of `path`; None when it is not in the image."""
        index = self._index
        if index is None:
            index = self._index = dict(zip(self.paths, range(len(self.paths)), strict=True))
        return index.get(path)

    def kind(self, i: int) -> str:
        return KIND_OF[self.types[i]]

    def hexdigests(self, i: int) -> tuple[str, str, str] | tuple[None, None, None]:
        """(md5, sha1, sha256) of row i as hex; Nones for a row without content."""
        if not self.hashed[i]:
            return None, None, None
        return hex_digests(self.digests, i)

    def record(self, i: int) -> FileRecord:
        return record_at(self, i, KIND_OF[self.types[i]], self.hexdigests(i))

    @property
    def files(self) -> Mapping[str, FinalFile]:
        """The table as path -> FinalFile, in path order; each value is built when read."""
        return _Rows(self)

    # ------------------------------------------------------------------ paths

    def __contains__(self, path: str) -> bool:
        return self.row(path) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, path: str) -> FinalFile | None:
        i = self.row(path)
        return None if i is None else FinalFile(self.record(i), self.layers[i])

    def resolve(self, path: str) -> str | None:
        """Follow symlinks (in every component) to a path that exists; None if dangling.

        Raises SymlinkLoop after MAX_HOPS links.
        """
        if self._no_link_above(path):  # most paths a cataloger asks for: no walk needed
            i = self.row(path)
            if i is None:
                return None
            if self.types[i] != _SYMLINK:
                return path
        hops = 0
        parts = [p for p in path.split("/") if p]
        done = "/"
        while parts:
            part = parts.pop(0)
            cand = posixpath.normpath(posixpath.join(done, part)) if part != ".." else posixpath.dirname(done)
            i = self.row(cand)
            if i is not None and self.types[i] == _SYMLINK:
                hops += 1
                if hops > self.MAX_HOPS:
                    raise SymlinkLoop(path)
                target = self.links[i] or ""
                base = "/" if target.startswith("/") else done
                parts = [p for p in target.split("/") if p] + parts
                done = base
                continue
            # A tar may hold "a/b/c" without an entry for "a/b": keep walking.
            done = cand
        return done if done == "/" or done in self else None

    def _no_link_above(self, path: str) -> bool:
        """Whether `path` is absolute and normal (no "", "." or ".." component) with no symlink
        row at any of its ancestors: then resolve() walks it component by component unchanged."""
        ends = path + "/"
        if not path.startswith("/") or "//" in ends or "/./" in ends or "/../" in ends:
            return False
        symlinks = self._symlinks
        if symlinks is None:
            rows = zip(self.paths, self.types, strict=True)
            symlinks = self._symlinks = frozenset(p for p, t in rows if t == _SYMLINK)
        cut = path.find("/", 1)
        while cut > 0:
            if path[:cut] in symlinks:
                return False
            cut = path.find("/", cut + 1)
        return True

    def read(self, path: str) -> bytes | None:
        """Captured content of `path` after following links, whole in memory; None if not captured."""
        content = self.captured_at(path)
        return None if content is None else captured_bytes(content)

    def open(self, path: str) -> BinaryIO | None:
        """Captured content of `path` as a file, read from where it is kept (a spilled
        capture is never loaded whole); None if not captured."""
        content = self.captured_at(path)
        if content is None:
            return None
        return io.BytesIO(content) if isinstance(content, bytes) else content.open()

    def captured_at(self, path: str) -> Captured | None:
        """Captured content of `path` after following links, as the scan kept it."""
        try:
            real = self.resolve(path)
        except SymlinkLoop:
            return None
        if real is None:
            return None
        i = self.row(real)
        # squash captures a hardlink under its own path (its target may be gone or replaced).
        if real not in self.captured and i is not None and self.types[i] == _HARDLINK and self.links[i]:
            real = self.links[i] or ""
        return self.captured.get(real)


class _Rows(Mapping[str, FinalFile]):
    """ImageFiles as a mapping path -> FinalFile."""

    def __init__(self, files: ImageFiles) -> None:
        self._files = files

    def __getitem__(self, path: str) -> FinalFile:
        entry = self._files.get(path)
        if entry is None:
            raise KeyError(path)
        return entry

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files.paths)

    def __len__(self) -> int:
        return len(self._files.paths)
