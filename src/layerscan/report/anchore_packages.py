"""The Anchore export's `package_list` section, from the catalogers' Package values.

OS packages (pkgs.all, pkgs_plus_source.all, pkgfiles.all, pkgs.allinfo) come from
`catalog.anchore`, which knows the database fields. Library packages take the shapes Anchore Engine's syft handlers write (§3.2 of
anchore-format.md), keyed as the policy engine's ImageLoader expects. `Package.metadata`
keys read here, all optional:
  npm     author (str), authors (list), url / homepage
  gem     authors (list), homepage, files (list)
  python  author, author_email, site_packages (the site-packages dir), top_level (list)
  java    manifest (dict: main-section fields), pom_properties (dict: groupId, artifactId, version)
  all     cpes (list)
An element with no entries is left out, as Anchore leaves out an empty kvfile: the
loader's generic branch stops at the first empty `pkgs.*` element.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from ..catalog.anchore import os_package_list
from ..catalog.model import Distro, Package

Entry = tuple[str, dict[str, Any]]


def package_list(packages: list[Package], distro: Distro | None) -> dict[str, dict[str, Any]]:
    elements: dict[str, dict[str, Any]] = dict(os_package_list(packages, distro))
    for p in packages:
        convert = _CONVERTERS.get(p.type)
        if convert is None:
            continue
        element, (key, value) = convert(p)
        base = elements.setdefault(element, {})
        base.setdefault(key, value)  # Anchore never overwrites: the first package at a key wins
    return {element: {"base": base} for element, base in elements.items() if base}


def _licenses(p: Package) -> list[str]:
    return list(p.licenses)


def _cpes(p: Package) -> list[str]:
    return list(p.metadata.get("cpes", []))


def npm(p: Package) -> tuple[str, Entry]:
    m = p.metadata
    origins = ([m["author"]] if m.get("author") else []) + list(m.get("authors", []))
    return "pkgs.npms", (
        p.location,
        {
            "name": p.name,
            "versions": [p.version],
            "latest": p.version,
            "sourcepkg": m.get("url") or m.get("homepage") or "",
            "origins": origins,
            "lics": _licenses(p),
            "cpes": _cpes(p),
        },
    )


def gem(p: Package) -> tuple[str, Entry]:
    m = p.metadata
    return "pkgs.gems", (
        p.location,
        {
            "name": p.name,
            "versions": [p.version],
            "latest": p.version,
            "sourcepkg": m.get("homepage", ""),
            "files": list(m.get("files", [])),
            "origins": list(m.get("authors", [])),
            "lics": _licenses(p),
            "cpes": _cpes(p),
        },
    )


def python(p: Package) -> tuple[str, Entry]:
    m = p.metadata
    site = m.get("site_packages") or posixpath.dirname(posixpath.dirname(p.location))
    # Anchore keys a python package by <site-packages>/<top-level name>, preferring its own name.
    top = list(m.get("top_level", []))
    key_name = p.name if p.name in top or not top else top[-1]
    origin = m.get("author", "") or ""
    if m.get("author_email"):
        origin += f" <{m['author_email']}>"
    return "pkgs.python", (
        posixpath.join(site, key_name),
        {
            "name": p.name,
            "version": p.version,
            "latest": p.version,
            "files": list(p.files),
            "origin": origin,
            "license": " ".join(p.licenses),
            "location": site,
            "type": "python",
            "cpes": _cpes(p),
        },
    )


def java(p: Package) -> tuple[str, Entry]:
    m = p.metadata
    manifest = m.get("manifest", {}) or {}
    pom = m.get("pom_properties", {}) or {}
    last = p.location.split(":")[-1]
    ext = posixpath.splitext(last)[1].lstrip(".") or "jar"
    origin = pom.get("groupId") or manifest.get("Specification-Vendor") or manifest.get("Implementation-Vendor")
    return "pkgs.java", (
        p.location,
        {
            "name": p.name,
            "specification-version": manifest.get("Specification-Version", "N/A"),
            "implementation-version": manifest.get("Implementation-Version", "N/A"),
            "maven-version": pom.get("version", "N/A"),
            "origin": origin or "N/A",
            "location": p.location,
            "type": f"java-{ext}",
            "cpes": _cpes(p),
            # The loader parses this string for groupId:artifactId; it must be a dict holding it.
            "metadata": {
                "pom.properties": "\ngroupId={}\nartifactId={}\nversion={}\n".format(
                    pom.get("groupId"), pom.get("artifactId"), pom.get("version")
                )
            },
        },
    )


def nuget(p: Package) -> tuple[str, Entry]:
    """Beyond Anchore, which lists nuget as a content type but never produced it.

    The value has the shape of pkgs.npms (as our issue asks), plus the four keys the
    policy engine's generic `pkgs.<x>` loader reads (version, type, license, origin),
    so the export still loads. Several packages share one deps.json, hence the key.
    """
    return "pkgs.nuget", (
        f"{p.location}:{p.name}@{p.version}",
        {
            "name": p.name,
            "versions": [p.version],
            "latest": p.version,
            "sourcepkg": p.source or "",
            "origins": [],
            "lics": _licenses(p),
            "cpes": _cpes(p),
            "version": p.version,
            "type": "nuget",
            "license": " ".join(p.licenses) or "N/A",
            "origin": "N/A",
        },
    )


_CONVERTERS: dict[str, Callable[[Package], tuple[str, Entry]]] = {
    "npm": npm,
    "gem": gem,
    "python": python,
    "java": java,
    "nuget": nuget,
}
