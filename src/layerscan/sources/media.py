"""What the OCI and Docker formats say, checked in one place for every source: media types (schema 1
refused, foreign layers recognised), digests, descriptors, and the parsing of indexes and manifests."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..errors import DigestMismatch, SourceError
from ..image import Buffer, Descriptor, Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
SCHEMA1_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# Layers a distributor may leave out of a registry or layout: Docker's foreign layers and OCI's
# non-distributable ones (fetched from their `urls`, if at all).
_FOREIGN_LAYER = re.compile(
    r"^application/vnd\.(?:oci\.image\.layer\.nondistributable\.v1\.tar(?:\+gzip|\+zstd)?"
    r"|docker\.image\.rootfs\.foreign\.diff\.tar(?:\.gzip)?)$"
)
# Layer types a scanner can read: the distributable OCI and Docker tars, and the foreign ones above.
_LAYER = re.compile(
    r"^application/vnd\.(?:oci\.image\.layer\.v1\.tar(?:\+gzip|\+zstd)?|docker\.image\.rootfs\.diff\.tar(?:\.gzip)?)$"
)

# An OCI digest: algorithm, then an encoded hash. Checking this is also what keeps a
# digest from naming a path outside blobs/ ("sha256:../../etc/passwd").
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_ALGORITHMS = ("sha256", "sha384", "sha512")


def is_foreign(desc: Descriptor) -> bool:
    """A foreign or non-distributable layer: one a source may lack without being broken."""
    return bool(_FOREIGN_LAYER.match(desc.media_type))


def check_digest(digest: str, what: str) -> tuple[str, str]:
    """(algorithm, hex) of a well-formed digest of an algorithm hashlib knows; SourceError otherwise."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise SourceError(f"{what}: {digest!r} is not a valid digest")
    alg, hexpart = digest.split(":", 1)
    if alg not in _ALGORITHMS:
        raise SourceError(f"{what}: unsupported digest algorithm {alg!r}")
    return alg, hexpart


def sha256_digest(data: Buffer) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: Buffer | hashlib._Hash, digest: str, what: str) -> None:
    """Raise DigestMismatch unless `data` (bytes, or a finished hasher of the digest's algorithm) has `digest`."""
    alg, _ = check_digest(digest, what)
    hasher = hashlib.new(alg, data) if isinstance(data, Buffer) else data
    actual = f"{alg}:{hasher.hexdigest()}"
    if actual != digest:
        raise DigestMismatch(what, digest, actual)


def verify_blob(data: Buffer, desc: Descriptor, what: str) -> None:
    """A blob is what its descriptor says: the same digest and the same size."""
    verify_digest(data, desc.digest, what)
    if len(data) != desc.size:
        raise SourceError(f"{what} {desc.digest} is {len(data)} bytes, its descriptor says {desc.size}")


def parse_json(raw: Buffer, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError) as e:
        raise SourceError(f"{what} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{what} is not a JSON object")
    return doc


def parse_manifest(raw: Buffer, what: str, media_type: str = "") -> tuple[str, dict[str, Any]]:
    """(media type, document) of an index or image manifest.

    The type comes from the document's `mediaType`, else from `media_type` (the
    descriptor or Content-Type), else from its shape (OCI allows leaving it out).
    Schema 1 and anything that is neither an index nor a manifest is a SourceError.
    """
    doc = parse_json(raw, what)
    kind = doc.get("mediaType") or media_type
    if doc.get("schemaVersion") == 1 or kind in SCHEMA1_MEDIA_TYPES:
        raise SourceError(
            f"{what}: Docker schema 1 manifests are not supported (deprecated since 2017); "
            "push or save the image again with a current Docker or skopeo"
        )
    if not kind:
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else ""
    if kind not in INDEX_MEDIA_TYPES + MANIFEST_MEDIA_TYPES:
        raise SourceError(f"{what} has unknown media type {kind!r}")
    key = "manifests" if kind in INDEX_MEDIA_TYPES else "layers"
    if not isinstance(doc.get(key), list):
        raise SourceError(f"{what} ({kind}) has no {key} list")
    return kind, doc


def config_platform(raw: bytes | None) -> Platform | None:
    """The platform an image config states; None if it states none or does not parse."""
    try:
        config = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("os"), str):
        return None
    return Platform(config["os"], str(config.get("architecture", "")), str(config.get("variant", "")))


def descriptor(d: object, what: str) -> Descriptor:
    """A validated descriptor: well-formed digest, non-negative size."""
    if not isinstance(d, dict):
        raise SourceError(f"{what} is not a valid descriptor: {d!r:.200}")
    try:
        desc = Descriptor.from_json(d)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SourceError(f"{what} is not a valid descriptor: {d!r:.200}") from None
    check_digest(desc.digest, what)
    if desc.size < 0:
        raise SourceError(f"{what} has a negative size")
    return desc


def index_entries(index: dict[str, Any], what: str) -> list[Descriptor]:
    return [descriptor(d, f"{what}: entry {i}") for i, d in enumerate(index["manifests"])]


def manifest_parts(manifest: dict[str, Any], what: str) -> tuple[Descriptor, list[Descriptor]]:
    """The config and layer descriptors of an image manifest; every layer must be a tar a scanner reads."""
    config = descriptor(manifest.get("config"), f"{what}: config")
    layers = [descriptor(d, f"{what}: layer {i}") for i, d in enumerate(manifest["layers"])]
    for i, layer in enumerate(layers):
        if not (_LAYER.match(layer.media_type) or is_foreign(layer)):
            raise SourceError(f"{what}: layer {i} has unknown media type {layer.media_type!r} (not an image layer tar)")
    return config, layers
