"""RPM packages from the rpm database, read in pure Python (no librpm, no rpm binary).

Looked for under /var/lib/rpm and /usr/lib/sysimage/rpm, in every format rpm has
used: Berkeley DB `Packages`, `rpmdb.sqlite` (with its -wal) and NDB `Packages.db`.
A database that is a link to another one is read once.

Package.version is rpm's [epoch:]version-release. Package.source is the SOURCERPM
file name (Anchore's sourcepkg). Package.metadata (for reports and SBOMs):
    epoch          int | None
    version, release   the parts of the EVR
    vendor, modularity_label   str
    size           int bytes (LONGSIZE or SIZE)
    provides, requires   lists of names
    database       "bdb" | "sqlite" | "ndb"
    digest_algo    the file digest algorithm ("md5", "sha256", …)
    files  [{"path", "mode": int (with S_IFMT), "size": int, "digest": {"algorithm", "value"} | None,
             "username", "groupname", "flags": int (RPMFILE_*: 1 config, 64 ghost, …)}]
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Iterator

from ...filetree import ImageFiles
from ..model import CatalogError, Distro, Package
from ..purl import distro_qualifier, purl
from . import bdb, ndb, sqlite
from .header import HeaderError, RpmHeader, parse_header

DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")


def _sqlite_blobs(files: ImageFiles, path: str, content: bytes) -> Iterable[bytes]:
    return sqlite.read_blobs(content, files.read(path + "-wal"))


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
    version = 1
    globs = tuple(f"{d}/{f}" for d in DB_DIRS for f in (*_FORMATS, "rpmdb.sqlite-wal"))
    max_capture_bytes = 1 << 30  # a full RHEL/SUSE Packages runs to hundreds of MiB

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        seen: set[str] = set()
        for d in DB_DIRS:
            for fname, (fmt, blobs) in _FORMATS.items():
                path = f"{d}/{fname}"
                real = files.resolve(path)
                if real is None or real in seen or real not in files.files:
                    continue
                seen.add(real)
                content = files.read(path)
                if content is None:
                    yield CatalogError(self.name, path, "not captured (too big or unreadable)")
                    continue
                yield from self._database(files, distro, path, fmt, blobs, content)

    def _database(
        self, files: ImageFiles, distro: Distro | None, path: str, fmt: str, blobs: BlobReader, content: bytes
    ) -> Iterator[Package | CatalogError]:
        try:
            for i, blob in enumerate(blobs(files, path, content)):
                try:
                    yield to_package(parse_header(blob), distro, path, fmt)
                except HeaderError as e:
                    yield CatalogError(self.name, path, f"header {i}: {e}")
        except _DB_ERRORS as e:
            yield CatalogError(self.name, path, str(e))


def to_package(h: RpmHeader, distro: Distro | None, location: str, fmt: str) -> Package:
    vr = f"{h.version}-{h.release}" if h.release else h.version
    return Package(
        type="rpm",
        name=h.name,
        version=h.evr,
        location=location,
        purl=purl(
            "rpm",
            distro.id if distro else "",
            h.name,
            vr,
            {
                "arch": h.arch,
                "epoch": str(h.epoch) if h.epoch is not None else "",
                "distro": distro_qualifier(distro),
                "upstream": h.sourcerpm,
            },
        ),
        licenses=(h.license,) if h.license else (),
        source=h.sourcerpm,
        arch=h.arch,
        files=tuple(f.path for f in h.files if not stat.S_ISDIR(f.mode)),
        metadata={
            "epoch": h.epoch,
            "version": h.version,
            "release": h.release,
            "vendor": h.vendor,
            "modularity_label": h.modularity_label,
            "size": h.size,
            "provides": list(h.provides),
            "requires": list(h.requires),
            "database": fmt,
            "digest_algo": h.digest_algo,
            "files": [
                {
                    "path": f.path,
                    "mode": f.mode,
                    "size": f.size,
                    "digest": {"algorithm": h.digest_algo, "value": f.digest} if f.digest else None,
                    "username": f.username,
                    "groupname": f.groupname,
                    "flags": f.flags,
                }
                for f in h.files
            ],
        },
    )


CATALOGER = RpmCataloger()
