"""Manifest and index media types, platform selection, and digest checks shared by the sources."""

from __future__ import annotations

import hashlib

from ..errors import DigestMismatch, LayerscanError
from ..image import Descriptor, Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)


class PlatformNotFound(LayerscanError):
    """An index has no manifest for the requested platform."""


def select_manifest(index: dict, platform: Platform) -> Descriptor:
    """The index entry for `platform`; a missing variant in the request matches any variant."""
    entries = [Descriptor.from_json(d) for d in index.get("manifests") or []]
    images = [d for d in entries if d.media_type in MANIFEST_MEDIA_TYPES and d.platform is not None]
    for d in images:
        p = d.platform
        assert p is not None
        if (p.os, p.architecture) == (platform.os, platform.architecture) and platform.variant in ("", p.variant):
            return d
    offered = ", ".join(str(d.platform) for d in images) or "none"
    raise PlatformNotFound(f"no image for platform {platform} in the index (it has: {offered}); choose one with --platform")


def verify_digest(hasher: "hashlib._Hash", expected: str, what: str) -> None:
    """Raise DigestMismatch unless the finished `hasher` (sha256) gives `expected`."""
    actual = f"sha256:{hasher.hexdigest()}"
    if actual != expected:
        raise DigestMismatch(what, expected, actual)
