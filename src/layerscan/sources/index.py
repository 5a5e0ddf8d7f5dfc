"""Manifest and index media types, platform selection, and digest checks shared by the sources."""

from __future__ import annotations

import hashlib
import json
import re

from ..errors import DigestMismatch, SourceError
from ..image import Buffer, Descriptor, Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
DEFAULT_PLATFORM = Platform("linux", "amd64")
# Layer types a scanner can read: OCI (also non-distributable) and Docker (also foreign) tars.
_LAYER_TYPE = re.compile(
    r"^application/vnd\.(?:oci\.image\.layer\.(?:nondistributable\.)?v1\.tar(?:\+gzip|\+zstd)?"
    r"|docker\.image\.rootfs\.(?:foreign\.)?diff\.tar(?:\.gzip)?)$"
)

# An OCI digest: algorithm, then an encoded hash. Checking this is also what keeps a
# digest from naming a path outside blobs/ ("sha256:../../etc/passwd").
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class PlatformNotFound(SourceError):
    """An index has no manifest for the requested platform."""


def check_digest(digest: str, what: str) -> tuple[str, str]:
    """(algorithm, hex) of a well-formed digest of an algorithm hashlib knows; SourceError otherwise."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise SourceError(f"{what}: {digest!r} is not a valid digest")
    alg, hexpart = digest.split(":", 1)
    if alg not in ("sha256", "sha384", "sha512"):
        raise SourceError(f"{what}: unsupported digest algorithm {alg!r}")
    return alg, hexpart


def parse_json(raw: Buffer, what: str) -> dict:
    try:
        doc = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError) as e:
        raise SourceError(f"{what} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{what} is not a JSON object")
    return doc


def parse_manifest(raw: Buffer, what: str, media_type: str = "") -> tuple[str, dict]:
    """(media type, document) of an index or image manifest.

    The type comes from the document's `mediaType`, else from `media_type` (the
    descriptor or Content-Type), else from its shape (OCI allows leaving it out).
    Schema 1 and anything that is neither an index nor a manifest is a SourceError.
    """
    doc = parse_json(raw, what)
    kind = doc.get("mediaType") or media_type
    if doc.get("schemaVersion") == 1 or kind in DOCKER_SCHEMA1:
        raise SourceError(
            f"{what} is a Docker schema 1 manifest, which is not supported "
            "(re-push the image with a current Docker or skopeo)"
        )
    if not kind:
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else ""
    if kind not in INDEX_MEDIA_TYPES + MANIFEST_MEDIA_TYPES:
        raise SourceError(f"{what} has unknown media type {kind!r}")
    key = "manifests" if kind in INDEX_MEDIA_TYPES else "layers"
    if not isinstance(doc.get(key), list):
        raise SourceError(f"{what} ({kind}) has no {key} list")
    return kind, doc


def descriptor(d: object, what: str) -> Descriptor:
    """A validated descriptor: well-formed digest, non-negative size."""
    try:
        desc = Descriptor.from_json(d)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SourceError(f"{what} is not a valid descriptor: {d!r:.200}") from None
    check_digest(desc.digest, what)
    if desc.size < 0:
        raise SourceError(f"{what} has a negative size")
    return desc


def manifest_parts(manifest: dict, what: str) -> tuple[Descriptor, list[Descriptor]]:
    """The config and layer descriptors of an image manifest."""
    config = descriptor(manifest.get("config"), f"{what}: config")
    layers = [descriptor(d, f"{what}: layer {i}") for i, d in enumerate(manifest["layers"])]
    for i, layer in enumerate(layers):
        if not _LAYER_TYPE.match(layer.media_type):
            raise SourceError(f"{what}: layer {i} has unknown media type {layer.media_type!r} (not an image layer tar)")
    return config, layers


def select_manifest(index: dict, platform: Platform | None) -> Descriptor:
    """The index entry for `platform`; a missing variant in the request matches any variant.

    With no platform: the host's, then linux/amd64. Nothing matches: PlatformNotFound
    listing what the index has.
    """
    entries = [descriptor(d, f"index entry {i}") for i, d in enumerate(index.get("manifests") or [])]
    images = [d for d in entries if d.media_type in MANIFEST_MEDIA_TYPES and d.platform is not None]
    wanted = [platform] if platform is not None else list(dict.fromkeys([Platform.host(), DEFAULT_PLATFORM]))
    for want in wanted:
        for d in images:
            p = d.platform
            assert p is not None
            if (p.os, p.architecture) == (want.os, want.architecture) and want.variant in ("", p.variant):
                return d
    # Attestation manifests of buildx indexes carry unknown/unknown: not a platform to offer.
    offered = ", ".join(str(d.platform) for d in images if d.platform != Platform("unknown", "unknown")) or "none"
    asked = " or ".join(str(w) for w in wanted)
    raise PlatformNotFound(
        f"no image for platform {asked} in the index (it has: {offered}); choose one with --platform"
    )


def verify_digest(data: Buffer | hashlib._Hash, digest: str, what: str) -> None:
    """Raise DigestMismatch unless `data` (bytes, or a finished hasher of the digest's algorithm) has `digest`."""
    alg, _ = check_digest(digest, what)
    hasher = data if hasattr(data, "hexdigest") else hashlib.new(alg, data)  # type: ignore[arg-type]
    actual = f"{alg}:{hasher.hexdigest()}"  # type: ignore[union-attr]
    if actual != digest:
        raise DigestMismatch(what, digest, actual)
