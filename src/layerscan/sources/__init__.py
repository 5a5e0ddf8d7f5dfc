"""Image sources: where an image's manifest, config and layer blobs come from.

    open_source("oci-dir:PATH" | "oci-archive:FILE" | "docker-archive:FILE"
                | "registry:REF" | "docker://REF" | a bare path, platform=, config=)

A bare path is recognised by its content.
"""

from __future__ import annotations

import os
import posixpath
import tarfile

from ..config import Config
from ..errors import SourceError
from ..image import ImageSource, Platform
from .layout import open_layout

LOCAL_SCHEMES = ("oci-dir", "oci-archive", "docker-archive")
SCHEMES = (*LOCAL_SCHEMES, "registry", "docker")


def open_source(spec: str, *, platform: str | Platform | None = None, config: Config) -> ImageSource:
    """The image `spec` names, resolved to one platform ("os/arch[/variant]"); close it, or use `with`."""
    if isinstance(platform, str):
        try:
            platform = Platform.parse(platform)
        except ValueError as e:
            raise SourceError(str(e)) from None
    ref = registry_reference(spec)
    if ref is not None:
        return _registry(ref, platform, config)
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in LOCAL_SCHEMES:
        return open_layout(rest, platform, scheme)
    if os.path.exists(spec):
        return open_layout(spec, platform, _detect(spec))
    if sep and "/" not in scheme and "." not in scheme and not scheme.isdigit():
        raise SourceError(
            f"unknown source scheme {scheme!r} in {spec!r}; use one of: "
            + ", ".join(f"{s}:" for s in SCHEMES[:-1])
            + ", docker://"
        )
    raise SourceError(f"{spec!r} is not a file or directory; to pull from a registry, write registry:{spec}")


def registry_reference(spec: str) -> str | None:
    """The image reference in a `registry:REF` or `docker://REF` spec; None for a local source."""
    for prefix in ("registry:", "docker://"):
        if spec.startswith(prefix):
            return spec[len(prefix) :]
    return None


def _registry(ref: str, platform: Platform | None, config: Config) -> ImageSource:
    from .registry import open_registry  # requests and the cache only load when needed

    return open_registry(ref, platform=platform, config=config, fetch_foreign=config.fetch_foreign_layers)


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
