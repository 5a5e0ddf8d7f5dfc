""".NET / NuGet packages from `*.deps.json`, `*.nuspec`, `packages.config` and `packages.lock.json`.

deps.json: every library of type package, project (the application itself and its
project references) and runtimepack ("runtimepack." prefix dropped), as Syft
reports them. Trivy also drops a library whose runtime-target entry has no runtime
assets; Syft keeps it (a transitive dependency often has none), and so do we.
Package.metadata is a `NugetMetadata`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from ..filetree import ImageFiles
from .files import parse_each, regular_files
from .metadata import NugetMetadata
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

DEPS_JSON = "/**/*.deps.json"
NUSPEC = "/**/*.nuspec"
PACKAGES_CONFIG = "/**/packages.config"
PACKAGES_LOCK = "/**/packages.lock.json"
_KINDS = ("package", "project", "runtimepack")

JsonObject = dict[str, Any]  # a parsed JSON object: every value is checked before it is used


class NugetCataloger:
    name = "nuget"
    globs = (DEPS_JSON, NUSPEC, PACKAGES_CONFIG, PACKAGES_LOCK)

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        return parse_each(
            files,
            self.name,
            regular_files(files, self.globs),
            lambda content, path: _PARSERS[_kind(path)](content, path),
        )


def _kind(path: str) -> str:
    for suffix in ("deps.json", "nuspec", "packages.config", "packages.lock.json"):
        if path.endswith(suffix):
            return suffix
    raise AssertionError(path)  # regular_files only returns paths matching the globs


def parse_deps_json(content: bytes, path: str) -> list[Package]:
    doc = _json(content, path)
    libraries = doc.get("libraries", {})
    if not isinstance(libraries, dict):
        raise CatalogFileError(path, "'libraries' is not an object")
    targets = doc.get("targets")
    targets = targets if isinstance(targets, dict) else {}
    runtime = doc.get("runtimeTarget")
    target_name = runtime.get("name") if isinstance(runtime, dict) else None
    target = targets.get(target_name) if target_name else next(iter(targets.values()), None)
    target = target if isinstance(target, dict) else {}
    out: list[Package] = []
    for key, lib in libraries.items():
        if not isinstance(lib, dict) or lib.get("type") not in _KINDS or "/" not in key:
            continue
        entry = target.get(key)
        name, _, version = key.partition("/")
        name = name.removeprefix("runtimepack.") if lib["type"] == "runtimepack" else name
        deps = entry.get("dependencies") if isinstance(entry, dict) else None
        out.append(
            _package(
                name,
                version,
                path,
                NugetMetadata(
                    kind=lib["type"],
                    sha512=_str(lib.get("sha512")),
                    path=_str(lib.get("path")),
                    hash_path=_str(lib.get("hashPath")),
                    dependencies=tuple(f"{n}/{v}" for n, v in deps.items()) if isinstance(deps, dict) else (),
                ),
            )
        )
    return out


def parse_nuspec(content: bytes, path: str) -> list[Package]:
    metadata = _xml(content, path).find("metadata")
    if metadata is None:
        raise CatalogFileError(path, "no <metadata> element")
    name, version = metadata.findtext("id", "").strip(), metadata.findtext("version", "").strip()
    if not name or not version:
        raise CatalogFileError(path, "no <id> or <version>")
    lic = metadata.find("license")
    licenses = (lic.text.strip(),) if lic is not None and lic.get("type") == "expression" and lic.text else ()
    return [
        _package(
            name,
            version,
            path,
            NugetMetadata(kind="nuspec", authors=metadata.findtext("authors", "").strip()),
            licenses,
        )
    ]


def parse_packages_config(content: bytes, path: str) -> list[Package]:
    root = _xml(content, path)
    out: list[Package] = []
    for p in root.iter("package"):
        name, version = p.get("id", "").strip(), p.get("version", "").strip()
        if name and version:
            out.append(
                _package(
                    name,
                    version,
                    path,
                    NugetMetadata(kind="packages.config", target_framework=p.get("targetFramework", "")),
                )
            )
    return out


def parse_packages_lock(content: bytes, path: str) -> list[Package]:
    doc = _json(content, path)
    frameworks = doc.get("dependencies")
    if not isinstance(frameworks, dict):
        raise CatalogFileError(path, "no 'dependencies' object")
    seen: dict[tuple[str, str], Package] = {}
    for deps in frameworks.values():
        for name, dep in deps.items() if isinstance(deps, dict) else ():
            version = dep.get("resolved") if isinstance(dep, dict) else None
            if isinstance(version, str) and version and dep.get("type") != "Project":
                seen.setdefault(
                    (name, version),
                    _package(name, version, path, NugetMetadata(kind="packages.lock.json", type=_str(dep.get("type")))),
                )
    return list(seen.values())


def _package(name: str, version: str, path: str, metadata: NugetMetadata, licenses: tuple[str, ...] = ()) -> Package:
    return Package(
        "nuget", name, version, path, purl=purl("nuget", "", name, version), licenses=licenses, metadata=metadata
    )


def _json(content: bytes, path: str) -> JsonObject:
    try:
        doc = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CatalogFileError(path, f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise CatalogFileError(path, "not a JSON object")
    return doc


def _xml(content: bytes, path: str) -> ET.Element:
    """The document with namespaces dropped (nuspec files use several schema versions)."""
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise CatalogFileError(path, "DTDs and entities are not accepted")  # no entity expansion bombs
    try:
        root = ET.fromstring(content)
    except ET.ParseError as e:
        raise CatalogFileError(path, f"not valid XML: {e}") from None
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]
    return root


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


_PARSERS = {
    "deps.json": parse_deps_json,
    "nuspec": parse_nuspec,
    "packages.config": parse_packages_config,
    "packages.lock.json": parse_packages_lock,
}

CATALOGER = NugetCataloger()
