"""Local sources: an OCI image layout directory, a tar of one, and `docker save` output (both forms).

Blob access only (resolve() checks what it reads): index.json or manifest.json lists the
images, blobs are `blobs/<alg>/<hex>` from a validated digest (or, in docker save's classic
form, the members manifest.json names), and layers are handed out as mmap views,
unverified (`LayerBlob.verified` False), so that the scanner checks their digest in its
one pass over them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from ..errors import SourceError
from ..image import Descriptor, LayerBlob, Platform
from . import docker_archive
from .files import Files, blob_name
from .media import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, config_platform, index_entries, parse_manifest
from .resolve import Document, Entry, Listing

log = logging.getLogger(__name__)

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"  # Docker's OCI form names its images here, in full


class LayoutSource:
    """Blobs of an oci-dir, oci-archive or docker-archive; `kind` says which, and so how names are matched."""

    def __init__(self, files: Files, name: str, kind: str) -> None:
        self.name = name
        self._files = files
        self._kind = kind
        self._annotations: list[dict[str, Any]] = []  # of index.json's entries
        self._docker_items: list[dict[str, Any]] | None = None  # manifest.json, in the classic form
        self._members: dict[str, str] = {}  # digest -> member name, where it is not blobs/<alg>/<hex>

    def open(self) -> Listing:
        self._files.open()
        if self._files.has("index.json"):
            return self._oci_listing()
        if self._kind == "docker-archive" and self._files.has("manifest.json"):
            self._docker_items = docker_archive.read_items(self._files, self.name)
            return docker_archive.listing(self._files, self._docker_items)
        if self._kind == "oci-dir":
            raise SourceError(f"{self.name}: no index.json: not an OCI image layout")
        found = (
            "manifest.json (use docker-archive:)"
            if self._files.has("manifest.json")
            else "neither index.json nor manifest.json"
        )
        raise SourceError(f"{self.name}: not an image archive of that kind: it has {found}")

    def _oci_listing(self) -> Listing:
        what = f"{self.name}: index.json"
        kind, index = parse_manifest(self._read("index.json", "index.json"), what)
        if kind not in INDEX_MEDIA_TYPES:
            raise SourceError(f"{what} is a {kind}, not an image index")
        descriptors = index_entries(index, what)
        self._annotations = [_annotations(d) for d in index["manifests"]]
        # Docker's OCI form keeps docker-archive's meaning of a tag: the full image name, normalised.
        key = CONTAINERD_NAME if self._kind == "docker-archive" else REF_NAME
        entries = tuple(
            Entry(
                i,
                tuple(n for n in (self._annotations[i].get(key),) if isinstance(n, str)),
                d.platform or (self._stated_platform(d) if len(descriptors) > 1 else None),
                d,
            )
            for i, d in enumerate(descriptors)
        )
        if self._kind == "docker-archive":
            return Listing("index.json", entries, docker_archive.same_tag, "tag")
        return Listing("index.json", entries, lambda chosen, entry: chosen in entry.names, "ref.name")

    def _stated_platform(self, desc: Descriptor) -> Platform | None:
        """The platform an image's config states, where index.json does not give it (Docker's OCI form).

        Only to choose among images and list them: the chosen image's blobs are checked by resolve().
        """
        if desc.media_type not in MANIFEST_MEDIA_TYPES:
            return None
        try:
            manifest = json.loads(self._files.read(self._member(desc.digest)) or b"")
            return config_platform(self._files.read(self._member(manifest["config"]["digest"])))
        except (SourceError, ValueError, TypeError, KeyError):
            return None

    def _read(self, member: str, what: str) -> bytes:
        data = self._files.read(member)
        if data is None:
            raise SourceError(f"{self.name}: {what} is missing ({member})")
        return data

    def _member(self, digest: str) -> str:
        return self._members.get(digest) or blob_name(digest, f"{self.name}: blob")

    def entry(self, entry: Entry) -> Document:
        if entry.descriptor is not None:
            return self.manifest(entry.descriptor)
        assert self._docker_items is not None  # only docker save's classic form makes its manifests up
        raw, self._members = docker_archive.made_up_manifest(self._files, self._docker_items[entry.position], self.name)
        return Document(raw, "manifest")

    def manifest(self, desc: Descriptor) -> Document:
        what = "index" if desc.media_type in INDEX_MEDIA_TYPES else "manifest"
        raw = self._read(self._member(desc.digest), f"{what} {desc.digest}")
        return Document(raw, what, desc.media_type, desc.digest, desc.size)

    def blob(self, desc: Descriptor, what: str) -> bytes:
        return self._read(self._member(desc.digest), f"{what} {desc.digest}")

    @contextlib.contextmanager
    def layer(self, desc: Descriptor) -> Iterator[LayerBlob | None]:
        with self._files.view(self._member(desc.digest)) as view:
            yield None if view is None else LayerBlob(view, verified=False)

    def image_names(
        self, entry: Entry | None, manifest_digest: str, config_digest: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        assert entry is not None  # a layout always lists its images
        if self._docker_items is not None:
            return docker_archive.repo_tags(self._docker_items[entry.position]), ()
        tags: tuple[str, ...] = ()
        if self._files.has("manifest.json"):  # Docker's OCI form: the tags are in its manifest.json
            try:
                tags = docker_archive.config_tags(docker_archive.read_items(self._files, self.name), config_digest)
            except SourceError as e:
                log.warning("%s; no tags taken from it", e)
        name = self._annotations[entry.position].get(CONTAINERD_NAME)
        return tags or tuple(n for n in (name,) if isinstance(n, str) and n), ()

    def close(self) -> None:
        self._files.close()


def _annotations(d: object) -> dict[str, Any]:
    annotations = d.get("annotations") if isinstance(d, dict) else None
    return annotations if isinstance(annotations, dict) else {}
