"""Java archives: jar, war, ear, jpi, hpi and par files, and the archives nested in them.

Each archive gives one package per distinct pom.properties it holds (anywhere in
it: a shaded jar bundles several), else one from its MANIFEST.MF, else one from its
file name when that carries a version ("slf4j-api-1.7.32.jar"). A nested archive's
location is its virtual path, `/opt/app.war:WEB-INF/lib/inner.jar`, as Syft and
Anchore write it.

Nested archives are opened within `ArchiveLimits`: depth, total bytes inflated and
entries seen for one top-level file; a file over any of them (a zip bomb) is refused
whole with a CatalogError. A nested archive is inflated into a SpooledTemporaryFile,
so a big one spills to a bounded temp file instead of memory. A top-level archive
bigger than the scan's capture limit was not captured; it is reported as a
CatalogError (reading it would need a second pass over its layer). Package.metadata
is a `JavaMetadata`.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from typing import IO

from ..filetree import ImageFiles
from .files import parse_each, regular_files
from .metadata import JavaMetadata, PomProperties
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

EXTENSIONS = (".jar", ".war", ".ear", ".jpi", ".hpi", ".par")
_FILENAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.+\-]*)$")
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    max_depth: int = 16  # archives inside archives
    max_total_bytes: int = 1 << 30  # inflated, over one top-level file and everything nested in it
    max_entries: int = 500_000  # zip entries seen, likewise
    max_metadata_bytes: int = 1 << 20  # one pom.properties, pom.xml or MANIFEST.MF
    spill_bytes: int = 16 << 20  # a nested archive bigger than this goes to a temp file


class LimitExceeded(Exception):
    pass


class _Budget:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.entries = 0

    def take_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_total_bytes:
            raise LimitExceeded(f"more than {self.limits.max_total_bytes} bytes inflated (zip bomb?)")

    def take_entries(self, n: int) -> None:
        self.entries += n
        if self.entries > self.limits.max_entries:
            raise LimitExceeded(f"more than {self.limits.max_entries} zip entries (zip bomb?)")


class JavaCataloger:
    name = "java"
    globs = tuple(f"/**/*{ext}" for ext in EXTENSIONS)

    def __init__(self, limits: ArchiveLimits = ArchiveLimits()) -> None:
        self.limits = limits

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        return parse_each(files, self.name, regular_files(files, self.globs), self.catalog_archive)

    def catalog_archive(self, content: bytes, path: str) -> list[Package | CatalogError]:
        """Every package in one top-level archive, or a single CatalogError if it breaks a limit."""
        out: list[Package | CatalogError] = []
        budget = _Budget(self.limits)
        try:
            with tempfile.SpooledTemporaryFile(max_size=self.limits.spill_bytes) as buf:
                buf.write(content)
                self._archive(buf, path, 0, budget, out)
        except LimitExceeded as e:
            return [CatalogError(self.name, path, f"refused: {e}")]
        return out

    def _archive(
        self, fileobj: IO[bytes], vpath: str, depth: int, budget: _Budget, out: list[Package | CatalogError]
    ) -> None:
        try:
            zf = zipfile.ZipFile(fileobj)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            out.append(CatalogError(self.name, vpath, f"not a readable zip archive: {e}"))
            return
        with zf:
            infos = zf.infolist()
            budget.take_entries(len(infos))
            try:
                out.extend(self._packages(zf, infos, vpath, budget))
            except CatalogFileError as e:
                out.append(CatalogError(self.name, e.path, e.reason))
            for info in infos:
                if info.is_dir() or not info.filename.lower().endswith(EXTENSIONS):
                    continue
                inner = f"{vpath}:{info.filename}"
                if depth + 1 > self.limits.max_depth:
                    raise LimitExceeded(f"archives nested deeper than {self.limits.max_depth} at {inner}")
                with tempfile.SpooledTemporaryFile(max_size=self.limits.spill_bytes) as buf:
                    try:
                        self._inflate(zf, info, buf, budget)
                    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
                        out.append(CatalogError(self.name, inner, f"cannot inflate: {e}"))
                        continue
                    self._archive(buf, inner, depth + 1, budget, out)

    @staticmethod
    def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, buf: IO[bytes], budget: _Budget) -> None:
        # Count what actually comes out, not what the header claims.
        with zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                budget.take_bytes(len(chunk))
                buf.write(chunk)
        buf.seek(0)

    def _member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, vpath: str, budget: _Budget) -> bytes:
        limit = self.limits.max_metadata_bytes
        try:
            with zf.open(info) as f:
                data = f.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
            raise CatalogFileError(f"{vpath}:{info.filename}", f"cannot inflate: {e}") from None
        if len(data) > limit:
            raise CatalogFileError(f"{vpath}:{info.filename}", f"larger than {limit} bytes")
        budget.take_bytes(len(data))
        return data

    def _packages(
        self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], vpath: str, budget: _Budget
    ) -> list[Package]:
        by_name = {i.filename: i for i in infos}
        mf_info = by_name.get("META-INF/MANIFEST.MF")
        manifest = parse_manifest(self._member(zf, mf_info, vpath, budget)) if mf_info else {}
        manifest_licenses = _manifest_licenses(manifest)
        poms: dict[tuple[str, str, str], tuple[str, ...]] = {}
        for info in infos:
            if posixpath.basename(info.filename) != "pom.properties" or info.is_dir():
                continue
            props = parse_properties(self._member(zf, info, vpath, budget))
            key = (props.get("groupId", ""), props.get("artifactId", ""), props.get("version", ""))
            if key[1] and key[2] and key not in poms:
                pom_xml = by_name.get(posixpath.join(posixpath.dirname(info.filename), "pom.xml"))
                poms[key] = pom_licenses(self._member(zf, pom_xml, vpath, budget)) if pom_xml else ()
        stem = posixpath.splitext(posixpath.basename(vpath.rsplit(":", 1)[-1]))[0]
        if poms:
            main = _main_artifact(list(poms), stem, manifest)
            return [
                _package(
                    a,
                    v,
                    g,
                    vpath,
                    lic or (manifest_licenses if key == main else ()),
                    manifest if key == main else {},
                    PomProperties(g, a, v),
                )
                for key, lic in poms.items()
                for g, a, v in [key]
            ]
        group, name, version = from_manifest(manifest)
        if not (name and version):
            m = _FILENAME.match(stem)
            if m is None:
                return []
            name, version = m.group("name"), m.group("version")
        return [_package(name, version, group, vpath, manifest_licenses, manifest, None)]


def _main_artifact(keys: list[tuple[str, str, str]], stem: str, manifest: dict[str, str]) -> tuple[str, str, str]:
    """The pom.properties describing the archive itself (the manifest belongs to it)."""
    title = manifest.get("Implementation-Title", "")
    for key in keys:
        if stem == key[1] or stem.startswith(f"{key[1]}-") or key[1] == title:
            return key
    return keys[0]


def _package(
    name: str,
    version: str,
    group: str,
    vpath: str,
    licenses: tuple[str, ...],
    manifest: dict[str, str],
    pom: PomProperties | None,
) -> Package:
    metadata = JavaMetadata(manifest=manifest, group_id=group, virtual_path=vpath, pom_properties=pom)
    return Package(
        type="java",
        name=name,
        version=version,
        location=vpath,
        purl=purl("maven", group, name, version),
        licenses=licenses,
        metadata=metadata,
    )


def parse_manifest(content: bytes) -> dict[str, str]:
    """The main section of a MANIFEST.MF (72-byte lines continued by a leading space)."""
    out: dict[str, str] = {}
    key = ""
    for line in content.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if out:
                break  # the main section ends at the first blank line; per-entry sections follow
            continue
        if line.startswith(" ") and key:
            out[key] += line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            out[key] = value.strip()
    return out


def parse_properties(content: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in content.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def from_manifest(manifest: dict[str, str]) -> tuple[str, str, str]:
    """(groupId, artifactId, version) as Trivy derives them from a manifest; '' where unknown."""
    name = _first(manifest, "Implementation-Title", "Specification-Title", "Bundle-Name", "Short-Name")
    version = _first(manifest, "Implementation-Version", "Specification-Version", "Bundle-Version")
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
    group = (
        _first(manifest, "Implementation-Vendor-Id", "Group-Id")
        or (symbolic.rpartition(".")[0] if "." in symbolic else "")
        or _first(manifest, "Implementation-Vendor", "Specification-Vendor")
    )
    return group, name, version


def _first(manifest: dict[str, str], *keys: str) -> str:
    return next((manifest[k] for k in keys if manifest.get(k)), "")


def _manifest_licenses(manifest: dict[str, str]) -> tuple[str, ...]:
    found = [v for k, v in manifest.items() if k.startswith("Plugin-License-Name") and v]
    if manifest.get("Bundle-License"):
        found.append(manifest["Bundle-License"])
    return tuple(dict.fromkeys(found))


def pom_licenses(content: bytes) -> tuple[str, ...]:
    """<licenses><license><name> of an embedded pom.xml; () if it cannot be read."""
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        return ()  # no entity expansion
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return ()  # a license is optional; a bad pom.xml costs only the license
    names = [
        (child.text or "").strip()
        for el in root.iter()
        if _local(el.tag) == "license"
        for child in el
        if _local(child.tag) == "name"
    ]
    return tuple(dict.fromkeys(n for n in names if n))


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


CATALOGER = JavaCataloger()
