"""Value types of the catalog stage: the distro, packages, and the cataloger contract."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal, Protocol

from ..filetree import ImageFiles
from .metadata import PackageMetadata

PackageType = Literal[
    "dpkg", "apk", "rpm", "npm", "gem", "java", "python", "nuget", "go-module", "php-composer", "rust-crate", "binary"
]


@dataclasses.dataclass(frozen=True)
class Distro:
    id: str  # "debian", "rocky", "alpine", "busybox", "Unknown"
    version_id: str
    id_like: str = ""  # comma-joined, as Anchore's LIKEDISTRO


@dataclasses.dataclass(frozen=True)
class Package:
    type: PackageType
    name: str
    version: str  # the full version as the ecosystem prints it (dpkg "1:2.3-4", rpm "2:3.0.0-1.el9")
    location: str  # where it was found: "/var/lib/dpkg/status", "/app/node_modules/x/package.json", "/a.war:WEB-INF/lib/b.jar"
    purl: str = ""
    licenses: tuple[str, ...] = ()
    source: str = ""  # source package name (dpkg Source, rpm sourcerpm, apk origin)
    source_version: str = ""
    arch: str = ""
    files: tuple[str, ...] = ()  # absolute paths the package owns, where the database says
    cpes: tuple[str, ...] = ()  # CPE 2.3 names, most specific first; filled after cataloging (cpe.py)
    # The ecosystem's own fields (catalog/metadata.py), of the class matching `type`.
    metadata: PackageMetadata = dataclasses.field(kw_only=True, compare=False, hash=False)

    def key(self) -> tuple[str, str, str]:
        return (self.type, self.name, self.version)


@dataclasses.dataclass(frozen=True)
class CatalogError:
    """One file a cataloger could not read; the rest of the image is still cataloged."""

    cataloger: str
    path: str
    reason: str


class Cataloger(Protocol):
    """One ecosystem. It declares the files it needs captured in the single scan pass (and,
    optionally, `markers`: scan.model.Marker literals whose windows of executables it reads
    from ImageFiles.marks)."""

    name: str
    globs: tuple[str, ...]

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterable[Package | CatalogError]:
        """Packages found, and a CatalogError for each file it could not read: one bad
        file costs that file's entries only. The runner turns an exception that escapes
        into a CatalogError for the whole cataloger and carries on with the others."""
        ...


class CatalogFileError(Exception):
    """Raised by a parser for one file; catalogers turn it into a CatalogError."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
