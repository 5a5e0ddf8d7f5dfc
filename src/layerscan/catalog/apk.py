"""Alpine packages: /lib/apk/db/installed.

Package.metadata (for reports and SBOMs):
    size, installed_size   int bytes (S:, I:)
    maintainer, url, description, commit   str (m:, U:, T:, c:)
    checksum               the package's C: value as written ("Q1…")
    depends, provides      lists (D:, p:)
    license_raw            the L: field as written
    files  [{"path", "digest": {"algorithm": "sha1", "value": hex} | None,
             "uid", "gid", "mode"  (int or None; from a: for files, M: for directories),
             "is_dir": bool}]
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterator

from ..filetree import ImageFiles
from .model import CatalogError, Distro, Package
from .purl import distro_qualifier, purl

log = logging.getLogger(__name__)

INSTALLED = "/lib/apk/db/installed"
_EXPRESSION = re.compile(r"\s(AND|OR|WITH)\s", re.I)


class ApkCataloger:
    name = "apk"
    version = 1
    globs = (INSTALLED,)

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        if INSTALLED not in files.files:
            return
        content = files.read(INSTALLED)
        if content is None:
            yield CatalogError(self.name, INSTALLED, "not captured (too big or unreadable)")
            return
        for item in parse_installed(content, INSTALLED):
            if isinstance(item, CatalogError):
                yield item
            else:
                yield to_package(item, distro, INSTALLED)


def parse_installed(content: bytes, path: str) -> Iterator[dict | CatalogError]:
    """One dict per stanza; a stanza with a malformed line is reported and skipped, the others stand."""
    text = content.decode("utf-8", "replace")
    for start, block in _blocks(text):
        entry: dict = {"files": [], "depends": [], "provides": []}
        cur_dir = ""
        last: dict | None = None  # the file or directory an a:/M:/Z: line refers to
        bad = None
        for offset, line in enumerate(block):
            if len(line) < 2 or line[1] != ":":
                bad = f"line {start + offset}: not a 'K:value' line"
                break
            key, value = line[0], line[2:]
            if key == "F":
                cur_dir = value.strip("/")
                last = {"path": "/" + cur_dir, "digest": None, "uid": None, "gid": None, "mode": None, "is_dir": True}
                entry["files"].append(last)
            elif key == "R":
                last = {
                    "path": "/" + "/".join(p for p in (cur_dir, value) if p),
                    "digest": None,
                    "uid": None,
                    "gid": None,
                    "mode": None,
                    "is_dir": False,
                }
                entry["files"].append(last)
            elif key in "aM" and last is not None and last["is_dir"] == (key == "M"):
                last.update(_attrs(value))
            elif key == "Z" and last is not None:
                last["digest"] = decode_checksum(value)
            elif key == "D":
                entry["depends"] = value.split()
            elif key == "p":
                entry["provides"] = value.split()
            else:
                entry[key] = value
        if bad is not None:
            yield CatalogError("apk", path, bad)
        elif entry.get("P") and entry.get("V"):
            yield entry
        else:
            log.debug("%s: stanza at line %d has no P: or V:, skipped", path, start)


def decode_checksum(value: str) -> dict | None:
    """'Q1' + base64(sha1) -> {"algorithm": "sha1", "value": hex}; anything else -> None."""
    if not value.startswith("Q1"):
        return None
    try:
        raw = base64.b64decode(value[2:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return {"algorithm": "sha1", "value": raw.hex()} if len(raw) == 20 else None


def to_package(e: dict, distro: Distro | None, location: str) -> Package:
    name, version, arch, origin = e["P"], e["V"], e.get("A", ""), e.get("o", "")
    return Package(
        type="apk",
        name=name,
        version=version,
        location=location,
        purl=purl(
            "apk",
            distro.id if distro else "alpine",
            name,
            version,
            {"arch": arch, "distro": distro_qualifier(distro), "upstream": origin if origin != name else ""},
        ),
        licenses=split_license(e.get("L", "")),
        source=origin,
        arch=arch,
        files=tuple(f["path"] for f in e["files"] if not f["is_dir"]),
        metadata={
            "size": _int(e.get("S", "")),
            "installed_size": _int(e.get("I", "")),
            "maintainer": e.get("m", ""),
            "url": e.get("U", ""),
            "description": e.get("T", ""),
            "commit": e.get("c", ""),
            "checksum": e.get("C", ""),
            "depends": e["depends"],
            "provides": e["provides"],
            "license_raw": e.get("L", ""),
            "files": e["files"],
        },
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


def _attrs(value: str) -> dict:
    parts = value.split(":")
    try:
        return {"uid": int(parts[0]), "gid": int(parts[1]), "mode": int(parts[2], 8)} if len(parts) == 3 else {}
    except ValueError:
        return {}


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


CATALOGER = ApkCataloger()
