"""The export's `package_list` analyzer: OS elements (os_packages.py) and library elements.

Library packages take the shapes Anchore Engine's syft handlers write (§3.2 of
anchore-format.md), keyed as the policy engine's ImageLoader expects. An element with
no entries is left out, as Anchore leaves out an empty kvfile: the loader's generic
branch stops at the first empty `pkgs.*` element. The one exception is `pkgs.binary`,
which Anchore's binary analyzer writes empty. `cpes` lists the package's CPEs
(catalog/cpe.py) as syft's artifact does, most specific first.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping

from ...catalog.metadata import (
    BinaryMetadata,
    GemMetadata,
    GoMetadata,
    JavaMetadata,
    NpmMetadata,
    NugetMetadata,
    PythonMetadata,
)
from ...catalog.model import Distro, Package
from ..jsonstream import Json
from .os_packages import os_package_list

Entry = tuple[str, str, dict[str, Json]]  # element, key, value

# The policy engine's loaders for these elements; every other `pkgs.*` element goes to
# its generic loader (loaders.py load_generic_packages), which returns nothing at all
# when any such element is empty.
_TYPED_ELEMENTS = frozenset({"pkgs.all", "pkgs.allinfo", "pkgs.npms", "pkgs.gems", "pkgs.python", "pkgs.java"})


def package_list(packages: list[Package], distro: Distro | None) -> dict[str, dict[str, Mapping[str, Json]]]:
    elements: dict[str, dict[str, Json]] = {
        name: dict[str, Json](values) for name, values in os_package_list(packages, distro).items()
    }
    # Anchore never overwrites: at a shared key the first package wins, first in the order
    # Syft lists them to the engine (by name, version, type, location).
    for p in sorted(packages, key=lambda p: (p.name, p.version, p.type, p.location)):
        entry = library_entry(p)
        if entry is None:
            continue
        element, key, value = entry
        elements.setdefault(element, {}).setdefault(key, value)
    out: dict[str, dict[str, Mapping[str, Json]]] = {
        element: {"base": base} for element, base in elements.items() if base
    }
    # Anchore writes pkgs.binary even when it found no binary. Beyond Anchore: not when
    # the empty element would make the loader drop another generic element (go, nuget).
    if not any(e.startswith("pkgs.") and e not in _TYPED_ELEMENTS for e in out):
        out["pkgs.binary"] = {"base": {}}
    return out


def library_entry(p: Package) -> Entry | None:
    """The package's element and entry; None for OS packages (they are in os_packages)."""
    m = p.metadata
    if isinstance(m, NpmMetadata):
        return (
            "pkgs.npms",
            p.location,
            _npms_shape(p, sourcepkg=m.url or m.homepage, origins=[m.author_field] if m.author_field else []),
        )
    if isinstance(m, GemMetadata):
        return (
            "pkgs.gems",
            p.location,
            {
                "name": p.name,
                "versions": [p.version],
                "latest": p.version,
                "sourcepkg": m.homepage,
                "files": list(m.files),
                "origins": list(m.authors),
                "lics": list(p.licenses),
                "cpes": list(p.cpes),
            },
        )
    if isinstance(m, PythonMetadata):
        return _python(p, m)
    if isinstance(m, JavaMetadata):
        return _java(p, m)
    if isinstance(m, NugetMetadata):
        return _nuget(p)
    if isinstance(m, GoMetadata):
        return _go(p, m)
    if isinstance(m, BinaryMetadata):
        return _binary(p, m)
    return None  # php-composer, rust-crate: Anchore's syft handlers skip their types


def _npms_shape(p: Package, *, sourcepkg: str, origins: list[str]) -> dict[str, Json]:
    return {
        "name": p.name,
        "versions": [p.version],
        "latest": p.version,
        "sourcepkg": sourcepkg,
        "origins": origins,
        "lics": list(p.licenses),
        "cpes": list(p.cpes),
    }


def _python(p: Package, m: PythonMetadata) -> Entry:
    """As the engine's python handler: the distribution's name as declared, keyed by
    <site-packages>/<name>, or by its last top-level module when the name is not part of it."""
    name = m.name or p.name
    key_name = name
    if m.top_level:
        last = m.top_level[-1]
        key_name = name if name in last else last  # Anchore quirk: a substring test
    origin = m.author + (f" <{m.author_email}>" if m.author_email else "")
    # Syft gives RECORD's paths relative to site-packages, and the engine joins them
    # without normalizing: a script's path keeps its "../../../bin".
    # A path under site-packages comes back as itself (both are normalized): only the
    # others need relpath, which is slow.
    site, inside = m.site_packages, m.site_packages.rstrip("/") + "/"
    files = [f if f.startswith(inside) else posixpath.join(site, posixpath.relpath(f, site)) for f in p.files]
    return (
        "pkgs.python",
        posixpath.join(m.site_packages, key_name),
        {
            "name": name,
            "version": p.version,
            "latest": p.version,
            "files": files,
            "origin": origin,
            "license": " ".join(p.licenses),
            "location": m.site_packages,
            "type": "python",
            "cpes": list(p.cpes),
        },
    )


def _java(p: Package, m: JavaMetadata) -> Entry:
    """Keyed by Syft's virtual path; the manifest's values as the engine's handler reads them."""
    manifest, pom, key = _engine_manifest(m), m.pom_properties, m.virtual_path or p.location
    last = p.location.split(":")[-1]
    ext = posixpath.splitext(last)[1].lstrip(".") or "jar"
    origin = (
        (pom.group_id if pom else "") or manifest.get("Specification-Vendor") or manifest.get("Implementation-Vendor")
    )
    # Anchore quirk: without a pom.properties the engine formats None into the string.
    group, artifact, version = (pom.group_id, pom.artifact_id, pom.version) if pom else (None, None, None)
    return (
        "pkgs.java",
        key,
        {
            "name": p.name,
            "specification-version": manifest.get("Specification-Version", "N/A"),
            "implementation-version": manifest.get("Implementation-Version", "N/A"),
            "maven-version": pom.version if pom else "N/A",
            "origin": origin or "N/A",
            "location": key,
            "type": f"java-{ext}",
            "cpes": list(p.cpes),
            # The loader parses this string for groupId:artifactId; it must be a dict holding it.
            "metadata": {"pom.properties": f"\ngroupId={group}\nartifactId={artifact}\nversion={version}\n"},
        },
    )


def _engine_manifest(m: JavaMetadata) -> dict[str, str]:
    """Every section of the manifest in one map, as the engine's java handler reads it: the
    main section, then the named ones in the order of their names (Syft hands them over as
    a JSON object keyed by "Name", a section without one by its index), later ones winning."""
    named = {}
    for i, section in enumerate(m.sections):
        named[section.get("Name", str(i))] = {k: v for k, v in section.items() if k != "Name"}
    merged = dict(m.manifest)
    for name in sorted(named):
        merged.update(named[name])
    return merged


def _go(p: Package, m: GoMetadata) -> Entry | None:
    """Anchore's golang handler: keyed "<binary>:<module>@<version>", Syft's metadata as it is.
    The stdlib pseudo-package is left out: the Syft Anchore runs (0.75) has none."""
    if p.name == "stdlib" and not m.main_module:
        return None
    metadata: dict[str, Json] = {}
    if m.build_settings:
        metadata["goBuildSettings"] = dict(m.build_settings)
    metadata["goCompiledVersion"] = m.go_compiled_version
    metadata["architecture"] = m.architecture
    if m.h1_digest:
        metadata["h1Digest"] = m.h1_digest
    if m.main_module:
        metadata["mainModule"] = m.main_module
    return (
        "pkgs.go",
        f"{p.location}:{p.name}@{p.version}",
        {
            "name": p.name,
            "version": p.version,
            "location": p.location,
            "type": "go",
            "files": [],
            "license": "N/A",
            "origin": "N/A",
            "cpes": list(p.cpes),
            "metadata": metadata,
        },
    )


def _binary(p: Package, m: BinaryMetadata) -> Entry:
    """Anchore's binary analyzer's shape, one entry per runtime and version, keyed by the file.
    Anchore's own analyzer knows python, go and busybox; the other runtimes are beyond it."""
    return (
        "pkgs.binary",
        p.location,
        {
            "name": p.name,
            "version": p.version,
            "location": p.location,
            "type": "binary",
            "files": [],
            "license": "N/A",
            "origin": "N/A",
            # A JSON string, as Anchore stores it (json.dumps' default separators).
            "metadata": json.dumps({"evidence_type": m.evidence_type}),
        },
    )


def _nuget(p: Package) -> Entry:
    """Beyond Anchore, which lists nuget as a content type but never produced it.

    The value has the shape of pkgs.npms (as our issue asks), plus the four keys the
    policy engine's generic `pkgs.<x>` loader reads (version, type, license, origin),
    so the export still loads. Several packages share one deps.json, hence the key.
    """
    value = _npms_shape(p, sourcepkg=p.source, origins=[])
    value.update(version=p.version, type="nuget", license=" ".join(p.licenses) or "N/A", origin="N/A")
    return "pkgs.nuget", f"{p.location}:{p.name}@{p.version}", value
