"""Java archives: jar, war, ear, jpi, hpi and par files, and the archives nested in them.

As Syft reads them: an archive with a MANIFEST.MF is a package, named by the
pom.properties that goes with its file name, else by its only pom.xml,
else by its file name, else by the manifest (a version missing everywhere stays empty);
each other pom.properties (a shaded jar bundles several) is a package too. An archive
without a manifest gives its pom.properties' packages, else one from its file name when
that carries a version ("slf4j-api-1.7.32.jar"). A nested archive's
location is its virtual path, `/opt/app.war:WEB-INF/lib/inner.jar`, as Syft and
Anchore write it.

Nested archives are opened within `ArchiveLimits`: depth, total bytes inflated and
entries seen for one top-level file; a file over any of them (a zip bomb) is refused
whole with a CatalogError. A nested archive is inflated into a SpooledTemporaryFile,
so a big one spills to a bounded temp file instead of memory. A top-level archive is
read where the scan keeps it (a big one is spilled to disk, up to `max_capture_bytes`);
one bigger than that was not captured and is reported as a CatalogError.
Package.metadata is a `JavaMetadata`.
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
import re
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from typing import IO

from ..filetree import ImageFiles
from .files import missing, regular_files
from .metadata import JavaMetadata, PomProperties
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

EXTENSIONS = (".jar", ".war", ".ear", ".jpi", ".hpi", ".par")
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
    # any letter case, as Trivy matches them ("app.JAR")
    globs = tuple("/**/*." + "".join(f"[{c.lower()}{c.upper()}]" for c in ext[1:]) for ext in EXTENSIONS)
    max_capture_bytes = 1 << 30  # Spring Boot and other fat jars run to hundreds of MiB; they spill to disk

    def __init__(self, limits: ArchiveLimits = ArchiveLimits()) -> None:
        self.limits = limits

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        for path in regular_files(files, self.globs):
            f = files.open(path)
            if f is None:
                yield missing(files, self.name, path)
                continue
            with f:
                yield from self.catalog_archive(f, path)

    def catalog_archive(self, content: bytes | IO[bytes], path: str) -> list[Package | CatalogError]:
        """Every package in one top-level archive, or a single CatalogError if it breaks a limit."""
        out: list[Package | CatalogError] = []
        budget = _Budget(self.limits)
        try:
            self._archive(io.BytesIO(content) if isinstance(content, bytes) else content, path, 0, budget, out)
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
        """Syft's reading: the archive's own package from its manifest, named by the
        pom.properties that matches the file name (else the one pom.xml, else the file name,
        else the manifest); then one package per other pom.properties it bundles."""
        by_name = {i.filename: i for i in infos}
        mf_info = by_name.get("META-INF/MANIFEST.MF")
        sections = parse_manifest_sections(self._member(zf, mf_info, vpath, budget)) if mf_info else []
        manifest = sections[0] if sections else {}
        props: dict[str, tuple[str, str, str]] = {}  # pom.properties' directory -> (group, artifact, version)
        pom_xmls: dict[str, zipfile.ZipInfo] = {}
        for info in sorted(infos, key=lambda i: i.filename):
            base, where = posixpath.basename(info.filename), posixpath.dirname(info.filename)
            if info.is_dir():
                continue
            if base == "pom.properties":
                p = parse_properties(self._member(zf, info, vpath, budget))
                props[where] = (p.get("groupId", ""), p.get("artifactId", ""), p.get("version", ""))
            elif base == "pom.xml":
                pom_xmls[where] = info

        def licenses_at(parent: str) -> tuple[str, ...]:
            info = pom_xmls.get(parent)
            return pom_licenses(self._member(zf, info, vpath, budget)) if info else ()

        fname, fversion = parse_filename(vpath.rsplit(":", 1)[-1])
        out: list[Package] = []
        main: tuple[str, str, str] | None = None
        if mf_info is not None and "Weave-Classes" not in manifest:  # Weave-Classes: instrumentation, not the library
            parent = _matching_pom(props, fname)
            group, name, version = props[parent] if parent is not None else ("", "", "")
            if parent is None and not props and len(pom_xmls) == 1:
                parent = next(iter(pom_xmls))
                group, name, version = pom_coordinates(self._member(zf, pom_xmls[parent], vpath, budget))
            # the file name before the manifest's titles, as Syft's selectName (Trivy takes a titled manifest first)
            name = name or select_name(manifest, fname)
            version = (
                version
                or (_first(manifest, *_VERSION_KEYS) if name != fname else "")
                or select_version(sections, fversion)
            )
            group = group or manifest_group(manifest)
            if name:
                main = (group, name, version)
                pom = PomProperties(*props[parent]) if parent in props else None
                lic = (licenses_at(parent) if parent is not None else ()) or _manifest_licenses(manifest)
                out.append(_package(name, version, group, vpath, vpath, lic, tuple(sections), pom))
        # Without a manifest (Syft lists nothing then), the pom.properties that goes with the file name is the archive's.
        own = _matching_pom(props, fname) if mf_info is None else None
        seen = set()
        for parent, (g, a, v) in props.items():
            if not (a and v) or (main is not None and ((g, a, v) == main or a == main[1])) or (g, a, v) in seen:
                continue  # the archive's own package (Syft merges it into the main one), or one already listed
            seen.add((g, a, v))
            # Syft 1.x keeps such a package apart by its virtual path: "<archive>:<groupId>:<artifactId>"
            virtual = vpath if parent == own else f"{vpath}:{g}:{a}"
            out.append(_package(a, v, g, vpath, virtual, licenses_at(parent), (), PomProperties(g, a, v)))
        if not out and mf_info is None and fversion:
            out.append(_package(fname, fversion, "", vpath, vpath, (), (), None))
        return out


def _matching_pom(props: dict[str, tuple[str, str, str]], fname: str) -> str | None:
    """The first pom.properties (by path) whose artifactId goes with the file name, as Syft matches them."""
    artifacts = {a for _, a, _ in props.values()}
    for parent, (_, a, _) in props.items():
        if not a or not fname:
            continue
        if a == fname if fname in artifacts else (a.startswith(fname) or fname.endswith(a)):
            return parent
    return None


# Syft's file name pattern (archive_filename.go), its (?U) made lazy quantifiers here.
_NAME_VERSION = re.compile(
    r"^(?P<name>(?:[A-Za-z][0-9A-Za-z_.]*?(?:\.[A-Za-z][0-9A-Za-z_.]*?)*?-??)+?)"
    r"(?:-(?P<version>(?:\d.*?|build\d+.*?|rc??\d+?)))??$",
    re.I,
)
_TRAILING_VERSION = re.compile(r"(?:[._-](?P<version>(?:\d.*|build\d+.*|rc?\d+)))?$", re.I)


def parse_filename(path: str) -> tuple[str, str]:
    """(name, version) from an archive's file name: "wagon-webdav-1.0.2-beta-2.jar" -> ("wagon-webdav", "1.0.2-beta-2")."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    m = _NAME_VERSION.match(stem)
    name, version = (m.group("name"), m.group("version") or "") if m else ("", "")
    if not version:  # "name_1.2" or "name.1.2"
        t = _TRAILING_VERSION.search(name)
        if t is not None and t.group("version"):
            version = t.group("version")
            name = name[: len(name) - len(version) - 1]
    return name, version


_JAVA_IDENTIFIER = re.compile(r"^[^\W\d]", re.UNICODE)


def select_name(manifest: dict[str, str], fname: str) -> str:
    """Syft's order: the Maven bundle plugin's symbolic name, the file name, then the manifest's names."""
    symbolic = manifest.get("Bundle-SymbolicName", "")
    if "Apache Maven Bundle Plugin" in manifest.get("Created-By", "") and symbolic:
        if manifest.get("Implementation-Vendor-Id", "") != symbolic:
            return symbolic.split(".")[-1]
    if "." in fname and not fname.startswith("org.eclipse."):
        fields = fname.split(".")
        if all(_JAVA_IDENTIFIER.match(f) for f in fields):
            return fields[-1]  # a group-like name: "org.foo.bar" -> "bar"
    return fname or _first(manifest, "Name", "Bundle-Name", "Short-Name", "Extension-Name", "Implementation-Title")


_VERSION_KEYS = ("Implementation-Version", "Specification-Version", "Plugin-Version", "Bundle-Version")


def select_version(sections: list[dict[str, str]], fversion: str) -> str:
    """The file name's version, else the manifest's (any section, main first)."""
    if fversion:
        return fversion
    for key in _VERSION_KEYS:
        for section in sections:
            if section.get(key):
                return section[key]
    return ""


def _package(
    name: str,
    version: str,
    group: str,
    vpath: str,
    virtual_path: str,
    licenses: tuple[str, ...],
    sections: tuple[dict[str, str], ...],
    pom: PomProperties | None,
) -> Package:
    """`sections`: the archive's MANIFEST.MF (main section first) for its own package, () for another."""
    metadata = JavaMetadata(
        manifest=sections[0] if sections else {},
        group_id=group,
        virtual_path=virtual_path,
        pom_properties=pom,
        sections=sections[1:],
    )
    return Package(
        "java", name, version, vpath, purl=purl("maven", group, name, version), licenses=licenses, metadata=metadata
    )


def parse_manifest(content: bytes) -> dict[str, str]:
    """The main section of a MANIFEST.MF."""
    sections = parse_manifest_sections(content)
    return sections[0] if sections else {}


def parse_manifest_sections(content: bytes) -> list[dict[str, str]]:
    """Every section of a MANIFEST.MF (72-byte lines continued by a leading space; blank lines between sections)."""
    sections: list[dict[str, str]] = []
    key = ""
    for line in content.decode("utf-8", "replace").splitlines():
        if not line.strip():
            key = ""
            continue
        if line.startswith(" ") and key:
            sections[-1][key] += line[1:]
        elif ":" in line:
            name, _, value = line.partition(":")
            if not name.strip():
                continue
            if not key:
                sections.append({})
            key = name.strip()
            sections[-1][key] = value.strip()
    return sections


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


def manifest_group(manifest: dict[str, str]) -> str:
    """The groupId a manifest implies; '' where unknown."""
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
    return (
        _first(manifest, "Implementation-Vendor-Id", "Group-Id")
        or (symbolic.rpartition(".")[0] if "." in symbolic else "")
        or _first(manifest, "Implementation-Vendor", "Specification-Vendor")
    )


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


def pom_coordinates(content: bytes) -> tuple[str, str, str]:
    """(groupId, artifactId, version) of an embedded pom.xml, the parent's group and version
    standing in for missing ones and ${...} resolved from its properties; '' where unknown."""
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        return ("", "", "")
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return ("", "", "")

    def child(el: ET.Element | None, name: str) -> str:
        found = next((c for c in el if _local(c.tag) == name), None) if el is not None else None
        return (found.text or "").strip() if found is not None else ""

    parent = next((c for c in root if _local(c.tag) == "parent"), None)
    props_el = next((c for c in root if _local(c.tag) == "properties"), None)
    values = {_local(c.tag): (c.text or "").strip() for c in props_el} if props_el is not None else {}
    group = child(root, "groupId") or child(parent, "groupId")
    version = child(root, "version") or child(parent, "version")
    values.update(
        {
            "project.groupId": group,
            "project.version": version,
            "project.parent.version": child(parent, "version"),
            "project.parent.groupId": child(parent, "groupId"),
        }
    )

    def resolve(v: str) -> str:
        v = re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), m.group(0)), v)
        return "" if "${" in v else v

    return resolve(group), resolve(child(root, "artifactId")), resolve(version)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


CATALOGER = JavaCataloger()
