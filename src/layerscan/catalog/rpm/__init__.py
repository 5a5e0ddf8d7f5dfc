"""RPM packages from the rpm database, read in pure Python (no librpm, no rpm binary).

Looked for under /var/lib/rpm and /usr/lib/sysimage/rpm, in every format rpm has
used: Berkeley DB `Packages`, `rpmdb.sqlite` (with its -wal) and NDB `Packages.db`.
A database that is a link to another one is read once.

Package.version is rpm's [epoch:]version-release. Package.source is the SOURCERPM
file name (Anchore's sourcepkg). Package.metadata is an `RpmMetadata`.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Iterator

from ...filetree import ImageFiles
from ..files import read, read_optional
from ..metadata import RpmMetadata
from ..model import CatalogError, Distro, Package
from ..purl import os_purl
from . import bdb, ndb, sqlite
from .header import HeaderError, RpmHeader, parse_header

DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
# CBL-Mariner/Azure Linux distroless images have no database, only this list (one package a
# line, tab-separated: NAME VERSION-RELEASE INSTALLTIME BUILDTIME VENDOR EPOCH SIZE ARCH
# EPOCHNUM SOURCERPM). Read only when no database is there, so a package is not listed twice.
MANIFEST = "/var/lib/rpmmanifest/container-manifest-2"


def _sqlite_blobs(files: ImageFiles, path: str, content: bytes) -> Iterable[bytes]:
    return sqlite.read_blobs(content, read_optional(files, path + "-wal"))


# file name -> (format, reader of its header blobs)
BlobReader = Callable[[ImageFiles, str, bytes], Iterable[bytes]]
_FORMATS: dict[str, tuple[str, BlobReader]] = {
    "Packages": ("bdb", lambda files, path, content: bdb.read_values(content)),
    "rpmdb.sqlite": ("sqlite", _sqlite_blobs),
    "Packages.db": ("ndb", lambda files, path, content: ndb.read_blobs(content)),
}
_DB_ERRORS = (bdb.BdbError, ndb.NdbError, sqlite.SqliteError)


class RpmCataloger:
    name = "rpm"
    globs = (*(f"{d}/{f}" for d in DB_DIRS for f in (*_FORMATS, "rpmdb.sqlite-wal")), MANIFEST)
    max_capture_bytes = 1 << 30  # a full RHEL/SUSE Packages runs to hundreds of MiB

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        found = False
        for item in self._databases(files, distro):
            found = True
            yield item
        if not found and files.resolve(MANIFEST) in files.files:
            content = read(files, self.name, MANIFEST)
            if isinstance(content, CatalogError):
                yield content
            else:
                yield from manifest_packages(content, distro)

    def _databases(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        seen: set[str] = set()
        for d in DB_DIRS:
            for fname, (fmt, blobs) in _FORMATS.items():
                path = f"{d}/{fname}"
                real = files.resolve(path)
                if real is None or real in seen or real not in files.files:
                    continue
                seen.add(real)
                content = read(files, self.name, path)
                if isinstance(content, CatalogError):
                    yield content
                    continue
                yield from self._database(files, distro, path, fmt, blobs, content)

    def _database(
        self, files: ImageFiles, distro: Distro | None, path: str, fmt: str, blobs: BlobReader, content: bytes
    ) -> Iterator[Package | CatalogError]:
        try:
            for i, blob in enumerate(blobs(files, path, content)):
                try:
                    yield to_package(parse_header(blob, fmt), distro, path)
                except HeaderError as e:
                    yield CatalogError(self.name, path, f"header {i}: {e}")
        except _DB_ERRORS as e:
            yield CatalogError(self.name, path, str(e))


def manifest_packages(content: bytes, distro: Distro | None) -> Iterator[Package | CatalogError]:
    """The packages of a container-manifest-2; a line that does not fit is that line's error."""
    for n, line in enumerate(content.decode("utf-8", "surrogateescape").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        vr = parts[1].split("-") if len(parts) >= 10 else []
        if len(vr) != 2 or not parts[0]:
            yield CatalogError(
                RpmCataloger.name, MANIFEST, f"line {n}: not NAME<TAB>VERSION-RELEASE<TAB>... (10 fields)"
            )
            continue
        # EPOCHNUM, unless EPOCH says there is none and EPOCHNUM is the 0 rpm prints then (Azure
        # Linux 3 writes "(none)" with a real EPOCHNUM: Trivy's test has one)
        epoch = int(parts[8]) if parts[8].isdigit() and (parts[5] != "(none)" or parts[8] != "0") else None
        size = int(parts[6]) if parts[6].isdigit() else 0
        header = RpmHeader(
            name=parts[0],
            arch=parts[7],
            sourcerpm=parts[9],
            license="",
            metadata=RpmMetadata(
                epoch=epoch, version=vr[0], release=vr[1], vendor=parts[4], size=size, database="manifest"
            ),
        )
        yield to_package(header, distro, MANIFEST)


def to_package(h: RpmHeader, distro: Distro | None, location: str) -> Package:
    m = h.metadata
    epoch = str(m.epoch) if m.epoch is not None else ""
    return Package(
        type="rpm",
        name=h.name,
        version=h.evr,
        location=location,
        purl=os_purl("rpm", distro, h.name, h.version_release, h.arch, h.sourcerpm, epoch=epoch),
        licenses=(h.license,) if h.license else (),
        source=h.sourcerpm,
        arch=h.arch,
        files=tuple(f.path for f in m.files if not stat.S_ISDIR(f.mode)),
        metadata=m,
    )


CATALOGER = RpmCataloger()
