"""Value types of an image as its sources give it: platform, descriptors, layer blobs.

Sources (oci-dir, oci-archive, docker-archive, registry) produce an `ImageSource`;
the squashed file tree is `filetree.ImageFiles`.
"""

from __future__ import annotations

import dataclasses
import mmap
import platform as _platform
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

Buffer = bytes | bytearray | memoryview | mmap.mmap  # a cached blob is an mmap

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
