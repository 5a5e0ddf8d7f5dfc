"""Alpine packages: /lib/apk/db/installed. Package.metadata is an `ApkMetadata`."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
from collections.abc import Iterator

from ..filetree import ImageFiles
from .files import parse_each
from .metadata import ApkFile, ApkMetadata, FileDigest
from .model import CatalogError, Distro, Package
from .purl import os_purl

log = logging.getLogger(__name__)

INSTALLED = "/lib/apk/db/installed"
_EXPRESSION = re.compile(r"\s(AND|OR|WITH)\s", re.I)


class ApkCataloger:
    name = "apk"
    globs = (INSTALLED,)

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        def packages(content: bytes, path: str) -> Iterator[Package | CatalogError]:
            for item in parse_installed(content, path):
                yield item if isinstance(item, CatalogError) else to_package(item, distro, path)

        return parse_each(files, self.name, [INSTALLED] if INSTALLED in files.files else [], packages)


@dataclasses.dataclass
class Stanza:
    """One package of the database: single-letter fields as written, and its files in order."""

    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    files: list[ApkFile] = dataclasses.field(default_factory=list)


def parse_installed(content: bytes, path: str) -> Iterator[Stanza | CatalogError]:
    """One Stanza per package; a stanza with a malformed line is reported and skipped, the others stand."""
    text = content.decode("utf-8", "replace")
    for start, block in _blocks(text):
        entry = Stanza()
        cur_dir = ""
        bad = None
        for offset, line in enumerate(block):
            if len(line) < 2 or line[1] != ":":
                bad = f"line {start + offset}: not a 'K:value' line"
                break
            key, value = line[0], line[2:]
            # a:, M: and Z: refine the file or directory listed last.
            last = entry.files[-1] if entry.files else None
            if key == "F":
                cur_dir = value.strip("/")
                entry.files.append(ApkFile("/" + cur_dir, None, None, None, None, is_dir=True))
            elif key == "R":
                file_path = "/" + "/".join(p for p in (cur_dir, value) if p)
                entry.files.append(ApkFile(file_path, None, None, None, None, is_dir=False))
            elif key in "aM" and last is not None and last.is_dir == (key == "M"):
                entry.files[-1] = _with_attrs(last, value)
            elif key == "Z" and last is not None:
                entry.files[-1] = dataclasses.replace(last, digest=decode_checksum(value))
            elif key == "D":
                entry.depends = tuple(value.split())
            elif key == "p":
                entry.provides = tuple(value.split())
            else:
                entry.fields[key] = value
        if bad is not None:
            yield CatalogError("apk", path, bad)
        elif entry.fields.get("P") and entry.fields.get("V"):
            yield entry
        else:
            log.debug("%s: stanza at line %d has no P: or V:, skipped", path, start)


def decode_checksum(value: str) -> FileDigest | None:
    """'Q1' + base64(sha1) -> FileDigest("sha1", hex); anything else -> None."""
    if not value.startswith("Q1"):
        return None
    try:
        raw = base64.b64decode(value[2:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return FileDigest("sha1", raw.hex()) if len(raw) == 20 else None


def to_package(e: Stanza, distro: Distro | None, location: str) -> Package:
    f = e.fields
    name, version, arch, origin = f["P"], f["V"], f.get("A", ""), f.get("o", "")
    return Package(
        type="apk",
        name=name,
        version=version,
        location=location,
        purl=os_purl("apk", distro, name, version, arch, origin if origin != name else ""),
        licenses=split_license(f.get("L", "")),
        source=origin,
        arch=arch,
        files=tuple(x.path for x in e.files if not x.is_dir),
        metadata=ApkMetadata(
            size=_int(f.get("S", "")),
            installed_size=_int(f.get("I", "")),
            maintainer=f.get("m", ""),
            url=f.get("U", ""),
            description=f.get("T", ""),
            commit=f.get("c", ""),
            checksum=f.get("C", ""),
            depends=e.depends,
            provides=e.provides,
            license_raw=f.get("L", ""),
            files=tuple(e.files),
        ),
    )


def split_license(field: str) -> tuple[str, ...]:
    """An SPDX expression stays whole; a plain space-separated list is split and sorted (as Syft does)."""
    field = field.strip()
    if not field:
        return ()
    return (field,) if _EXPRESSION.search(f" {field} ") else tuple(sorted(set(field.split())))


def _blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    block: list[str] = []
    start = 1
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            if not block:
                start = n
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _with_attrs(f: ApkFile, value: str) -> ApkFile:
    """`uid:gid:mode` (mode in octal) applied to the file; a malformed value changes nothing."""
    parts = value.split(":")
    try:
        return (
            dataclasses.replace(f, uid=int(parts[0]), gid=int(parts[1]), mode=int(parts[2], 8))
            if len(parts) == 3
            else f
        )
    except ValueError:
        return f


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


CATALOGER = ApkCataloger()
