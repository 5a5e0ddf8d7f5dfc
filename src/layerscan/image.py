"""Value types of an image as layerscan sees it: where it comes from, and its final files.

Sources (oci-dir, oci-archive, docker-archive, registry) produce an `ImageSource`;
squash produces `ImageFiles`; catalogers and reports read `ImageFiles`.
"""

from __future__ import annotations

import dataclasses
import mmap
import platform as _platform
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

from .scan.model import FileRecord

Buffer = bytes | bytearray | memoryview | mmap.mmap

_MACHINE_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


@dataclasses.dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """'linux/arm64/v8' -> Platform('linux', 'arm64', 'v8')."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch[/variant]")
        return cls(*parts)

    @classmethod
    def host(cls) -> Platform:
        machine = _platform.machine()
        return cls("linux", _MACHINE_ARCH.get(machine, machine), "v8" if machine == "aarch64" else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob."""

    media_type: str
    digest: str  # "sha256:<hex>"
    size: int
    urls: tuple[str, ...] = ()
    platform: Platform | None = None

    @classmethod
    def from_json(cls, d: Mapping) -> Descriptor:
        p = d.get("platform")
        plat = Platform(p.get("os", ""), p.get("architecture", ""), p.get("variant", "")) if p else None
        return cls(str(d["mediaType"]), str(d["digest"]), int(d["size"]), tuple(d.get("urls") or ()), plat)


class LayerBlob(NamedTuple):
    """A layer's compressed bytes: a buffer (mmap) or an iterable of chunks.

    `verified` says the source already checked the blob digest (a cache entry
    that was verified at publish); otherwise the scanner verifies it in its pass.
    """

    data: Buffer | Iterable[bytes]
    verified: bool


class ImageSource(Protocol):
    """One image, resolved to one platform. Every blob it returns is digest-checked."""

    name: str  # as the user gave it, e.g. "oci-dir:/x" or "registry.example.com/ns/repo:tag"
    repo_tags: tuple[str, ...]  # "registry/repo:tag" forms, possibly empty
    repo_digests: tuple[str, ...]  # "registry/repo@sha256:…" forms, possibly empty
    manifest_digest: str
    manifest: dict
    config_digest: str
    config: dict
    layers: list[Descriptor]

    def open_layer(self, desc: Descriptor) -> AbstractContextManager[LayerBlob | None]:
        """The layer's blob; None for a foreign/non-distributable layer that is not present."""
        ...

    def close(self) -> None: ...


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
    captured: dict[str, bytes]  # contents of final regular files that matched a capture glob
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
        """Captured content of `path` after following links; None if not captured."""
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
