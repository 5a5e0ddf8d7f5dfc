"""The squashed image's file tree: every final path, the layer that wrote it, and the
captured contents, with symlink resolution as Anchore dereferences links.

squash builds an `ImageFiles`; catalogers, findings and reports read it.
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from .scan.model import Captured, FileRecord, captured_bytes


class FinalFile(NamedTuple):
    """An entry of the squashed image and the index of the layer that last wrote it."""

    record: FileRecord  # hardlinks carry their target's size and digests
    layer: int


class SymlinkLoop(Exception):
    pass


@dataclasses.dataclass
class ImageFiles:
    """The image's final file table: absolute path -> FinalFile, plus captured contents."""

    files: dict[str, FinalFile]
    captured: dict[str, Captured]  # contents of final regular files that matched a capture glob
    too_big_to_capture: set[str] = dataclasses.field(default_factory=set)

    MAX_HOPS = 128  # as Anchore dereferences links

    def __contains__(self, path: str) -> bool:
        return path in self.files

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def get(self, path: str) -> FinalFile | None:
        return self.files.get(path)

    def resolve(self, path: str) -> str | None:
        """Follow symlinks (in every component) to a path that exists; None if dangling.

        Raises SymlinkLoop after MAX_HOPS links.
        """
        hops = 0
        parts = [p for p in path.split("/") if p]
        done = "/"
        while parts:
            part = parts.pop(0)
            cand = posixpath.normpath(posixpath.join(done, part)) if part != ".." else posixpath.dirname(done)
            entry = self.files.get(cand)
            if entry is not None and entry.record.type == "symlink":
                hops += 1
                if hops > self.MAX_HOPS:
                    raise SymlinkLoop(path)
                target = entry.record.link or ""
                base = "/" if target.startswith("/") else done
                parts = [p for p in target.split("/") if p] + parts
                done = base
                continue
            # A tar may hold "a/b/c" without an entry for "a/b": keep walking.
            done = cand
        return done if done == "/" or done in self.files else None

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
        entry = self.files.get(real)
        # squash captures a hardlink under its own path (its target may be gone or replaced).
        if real not in self.captured and entry is not None and entry.record.type == "hardlink" and entry.record.link:
            real = entry.record.link
        return self.captured.get(real)
