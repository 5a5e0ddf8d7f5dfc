"""The catalog stage: every cataloger over the squashed image, failures kept local.

    capture_globs()          the files the scan must capture for the catalogers
    capture_limits()         (glob, size limit) for the globs whose files can be big (rpm databases, jars)
    capture_markers()        the markers the scan looks for in executables (ImageFiles.marks)
    catalog_image(files)     -> CatalogResult(distro, packages, errors), every package with its CPEs

Registering a cataloger is one line in `_OS_MODULES` or `_LIBRARY_MODULES`: the module's name; the module
exposes `CATALOGER`, an object satisfying `model.Cataloger`. Each Package carries its
ecosystem's typed metadata (`metadata.py`), the whole contract with the report writers.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Sequence
from functools import cache

from ..aside import aside
from ..filetree import ImageFiles
from ..scan.model import Marker
from . import cpe as _cpe
from . import distro as _distro
from .model import Cataloger, CatalogError, Distro, Package

log = logging.getLogger(__name__)

# The OS package databases first (their packages come first), then the libraries.
_OS_MODULES = ("dpkg", "apk", "rpm")
_LIBRARY_MODULES = ("npm", "gem", "python", "nuget", "java", "golang", "rust", "composer", "binary")

OS_TYPES = ("dpkg", "rpm", "apk")
# Anchore: syft's ownership-by-file-overlap children; binary: as Anchore's binary analyzer and Syft skip them
FILTERED_BY_OWNERSHIP = ("python", "npm", "binary")


@dataclasses.dataclass
class CatalogResult:
    distro: Distro | None
    packages: list[Package]
    errors: list[CatalogError]


@cache
def catalogers() -> tuple[Cataloger, ...]:
    return tuple(importlib.import_module(f".{name}", __package__).CATALOGER for name in _OS_MODULES + _LIBRARY_MODULES)


def capture_globs() -> tuple[str, ...]:
    """The union of every cataloger's globs and distro detection's, in a stable order."""
    out: dict[str, None] = dict.fromkeys(_distro.GLOBS)
    for c in catalogers():
        out.update(dict.fromkeys(c.globs))
    return tuple(out)


def capture_limits() -> tuple[tuple[str, int], ...]:
    """Each glob of a cataloger that declares `max_capture_bytes`, with that limit; the
    other globs get the scan's default. Big captures spill to disk, so a large limit costs
    disk for the files that need it, not memory."""
    return tuple((g, c.max_capture_bytes) for c in catalogers() if hasattr(c, "max_capture_bytes") for g in c.globs)


def capture_markers() -> tuple[Marker, ...]:
    """The union of the catalogers' markers (an optional `markers` attribute), in a stable order."""
    return tuple(dict.fromkeys(m for c in catalogers() for m in getattr(c, "markers", ())))


def catalog_image(files: ImageFiles, *, owned_package_filtering: bool = True) -> CatalogResult:
    """Every cataloger over the image. The library catalogers run in a forked child where that
    is safe (aside.py) while this process reads the OS package databases, the bigger half (the
    OS packages' file records stay here: they are most of the data)."""
    distro = _distro.detect(files)
    split = len(_OS_MODULES)
    with aside(lambda: _run(catalogers()[split:], files, distro)) as libraries:
        packages, errors = _run(catalogers()[:split], files, distro)
        library_packages, library_errors = libraries.result()
    packages += library_packages
    errors += library_errors
    for e in errors:
        log.warning("%s: skipped %s: %s", e.cataloger, e.path, e.reason)
    if owned_package_filtering:
        packages = filter_owned(packages)
    return CatalogResult(distro, packages, errors)


def _run(
    chosen: Sequence[Cataloger], files: ImageFiles, distro: Distro | None
) -> tuple[list[Package], list[CatalogError]]:
    """These catalogers' packages, each with its CPEs, and their errors, in cataloger order."""
    packages: list[Package] = []
    errors: list[CatalogError] = []
    for c in chosen:
        try:
            for item in c.catalog(files, distro):
                if isinstance(item, CatalogError):
                    errors.append(item)
                else:
                    packages.append(item)
        except Exception as e:  # a cataloger bug must not cost the other ecosystems
            log.warning("%s: cataloger failed: %s", c.name, e, exc_info=True)
            errors.append(CatalogError(c.name, "", f"cataloger failed: {type(e).__name__}: {e}"))
    return _cpe.with_cpes(packages), errors


def filter_owned(packages: list[Package]) -> list[Package]:
    """Drop python and npm packages whose metadata file or files an OS package owns
    (pip or npm packages installed by dpkg, rpm or apk), as Anchore does by default."""
    owned = {f for p in packages if p.type in OS_TYPES for f in p.files}
    if not owned:
        return packages
    return [
        p
        for p in packages
        if p.type not in FILTERED_BY_OWNERSHIP or (p.location not in owned and owned.isdisjoint(p.files))
    ]
