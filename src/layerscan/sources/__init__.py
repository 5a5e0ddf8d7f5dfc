"""Image sources: where an image's manifest, config and layer blobs come from.

    open_source("oci-dir:PATH[:REF]" | "oci-archive:FILE[:REF]" | "docker-archive:FILE[:TAG]"
                | "registry:REF" | "docker://REF" | a bare path, platform=, config=)

The spec forms and how they are parsed are in spec.py; each source (registry.py,
layout.py) only supplies blobs, and resolve.py turns any of them into the one image the
pipeline reads, with the same checks for all.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from pathlib import Path

from ..config import Config
from ..errors import SourceError
from ..image import Platform
from ..refs import ImageRef
from .files import DirFiles, TarFiles
from .layout import LayoutSource
from .resolve import BlobSource, ResolvedImage, resolve
from .spec import LOCAL_SCHEMES, REGISTRY_PREFIXES, Choice, SourceSpec, parse_spec, registry_reference

__all__ = ["open_source", "registry_reference"]


def open_source(spec: str, *, platform: str | Platform | None = None, config: Config) -> ResolvedImage:
    """The image `spec` names, resolved to one platform ("os/arch[/variant]"); close it, or use `with`."""
    if isinstance(platform, str):
        try:
            platform = Platform.parse(platform)
        except ValueError as e:
            raise SourceError(str(e)) from None
    parsed = parse_spec(spec) or _bare_path(spec)
    if parsed.kind in LOCAL_SCHEMES and parsed.choice != Choice() and not os.path.exists(parsed.location):
        raise SourceError(
            f"{spec!r}: no file or directory {parsed.location!r}: the path ends at the first ':', as skopeo "
            f"reads it; a path with a ':' is given bare, without {parsed.kind}:"
        )
    return resolve(_source(parsed, config), parsed.choice, platform)


def _source(spec: SourceSpec, config: Config) -> BlobSource:
    if spec.kind == "registry":
        from .registry import RegistrySource  # requests and the cache only load when needed

        return RegistrySource(ImageRef.parse(spec.location), config)
    path = Path(spec.location)
    files = DirFiles(path) if spec.kind == "oci-dir" else TarFiles(path)
    return LayoutSource(files, spec.name, spec.kind)


def _bare_path(spec: str) -> SourceSpec:
    """A spec without a scheme is a path that exists; anything else is a mistake, explained."""
    if os.path.exists(spec):
        return SourceSpec(_detect(spec), spec)
    scheme, sep, rest = spec.partition(":")
    if sep and os.path.exists(scheme):
        raise SourceError(
            f"{spec!r} is not a file or directory; to choose an image inside {scheme}, write "
            f"{'oci-dir' if os.path.isdir(scheme) else 'docker-archive or oci-archive'}:{spec}"
        )
    if sep and "/" not in scheme and "." not in scheme and not scheme.isdigit():
        raise SourceError(
            f"unknown source scheme {scheme!r} in {spec!r}; use one of: "
            + ", ".join((*(f"{s}:" for s in LOCAL_SCHEMES), *REGISTRY_PREFIXES))
        )
    raise SourceError(f"{spec!r} is not a file or directory; to pull from a registry, write registry:{spec}")


def _detect(path: str) -> str:
    if os.path.isdir(path):
        return "oci-dir"
    try:
        with tarfile.open(path, "r:") as tf:
            names = {posixpath.normpath(n) for n in tf.getnames()}
    except (tarfile.TarError, OSError) as e:
        raise SourceError(f"{path}: not an image directory or tar archive ({e})") from None
    if "index.json" in names:
        return "oci-archive"
    if "manifest.json" in names:
        return "docker-archive"
    raise SourceError(f"{path}: a tar archive, but neither an OCI archive nor a docker archive")
