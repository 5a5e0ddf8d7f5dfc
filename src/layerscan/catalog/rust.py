"""Rust crates from the dependency list cargo-auditable embeds in a binary (ELF, Mach-O, PE).

cargo-auditable links a zlib-compressed JSON document, `{"packages":[{"name", "version",
"source", "kind", "dependencies", "root"}, …]}`, into the section `.dep-v0`. The section
table is at the end of an ELF file, after the section's bytes have streamed past, so the
scan does not look for the section: it looks for the stream itself, a zlib stream whose
first bytes inflate to `{"packages":[` (a probed scan marker, scan/model.py Marker), and
hands over a window from there. cargo-auditable writes that JSON with serde_json, compact
and `packages` first, so the prefix is what every such section starts with.

As Syft's cargo-auditable-binary-cataloger (go-rustaudit): every package with a name whose
kind is "runtime" (the default) is reported, the root crate and local ones included;
"build" dependencies are not. Package.metadata is a RustMetadata (the crate's source).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

from ..filetree import ImageFiles
from ..scan.model import Mark, Marker
from .files import marked
from .metadata import RustMetadata
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

PREFIX = b'{"packages":['
CMF = b"\x78"  # a zlib stream's first byte: deflate with a 32 KiB window, as zlib and miniz write it
# The compressed list: about 1 KiB per 60 crates, so a binary of thousands fits.
WINDOW = 512 << 10
RUNTIME = "runtime"


class RustAuditBinaryCataloger:
    name = "cargo-auditable-binary-cataloger"
    globs = ()
    markers = (Marker(CMF, WINDOW, PREFIX),)

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        for path, marks in marked(files, CMF):
            try:
                yield from packages(marks, path)
            except CatalogFileError as e:
                yield CatalogError(self.name, e.path, e.reason)


def packages(marks: list[Mark], path: str) -> Iterator[Package]:
    """The crates of every dependency list in the file (a universal Mach-O has one per
    architecture), each (name, version, source) once."""
    seen: set[tuple[str, str, str]] = set()
    for _, _, window in marks:
        for entry in dependency_list(window, path):
            name, version, source = (_string(entry, k, path) for k in ("name", "version", "source"))
            kind = RUNTIME if entry.get("kind") is None else _string(entry, "kind", path)
            if not name or kind != RUNTIME or (name, version, source) in seen:
                continue
            seen.add((name, version, source))
            yield Package(
                "rust-crate",
                name,
                version,
                path,
                purl=purl("cargo", "", name, version),
                metadata=RustMetadata(source),
            )


def dependency_list(window: bytes, path: str) -> list[dict[str, Any]]:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(window)
    except zlib.error as e:
        raise CatalogFileError(path, f"cargo-auditable dependency list: {e}") from None
    if not inflater.eof:
        raise CatalogFileError(path, "cargo-auditable dependency list truncated (larger than the scan's window?)")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise CatalogFileError(path, f"cargo-auditable dependency list is not JSON: {e}") from None
    entries = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CatalogFileError(path, "cargo-auditable dependency list without a list of packages")
    return entries


def _string(entry: dict[str, Any], key: str, path: str) -> str:
    """A string field; absent or null is "" (Go's zero value), another type fails the whole
    list, as it fails Syft's JSON decoding."""
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CatalogFileError(path, f"cargo-auditable dependency list: {key!r} is not a string")
    return value


CATALOGER = RustAuditBinaryCataloger()
