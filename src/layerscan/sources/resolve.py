"""One path from any source to the image the pipeline reads, with the same checks for every source.

A source (registry, OCI layout, docker archive) only hands out bytes: its top document
or the list of images it holds, manifests and indexes by descriptor, small blobs whole,
and layers as an mmap slice or a stream. `resolve()` does the rest, as go-containerregistry's
`remote`, `layout` and `tarball` all sit behind one `v1.Image`:

    top -> (choose an entry: REF/TAG, @N, platform) -> index ... -> platform -> manifest -> config

Every index, manifest and config is checked against the digest and size it was addressed
by, parsed with its media type checked (schema 1 refused), and every layer must be an
image tar. A layer a source does not have is an error unless it is foreign or
non-distributable (then it is reported as missing, and the analysis goes on without it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ..closable import Closable
from ..errors import SourceError
from ..image import Buffer, Descriptor, LayerBlob, Platform
from .media import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    index_entries,
    is_foreign,
    manifest_parts,
    parse_json,
    parse_manifest,
    sha256_digest,
    verify_blob,
    verify_digest,
)
from .spec import Choice

log = logging.getLogger(__name__)

DEFAULT_PLATFORM = Platform("linux", "amd64")
MAX_INDEX_DEPTH = 4  # index -> index -> manifest is the deepest seen in practice
_NOT_A_PLATFORM = Platform("unknown", "unknown")  # what buildx gives its attestation manifests


class PlatformNotFound(SourceError):
    """No image of the source is for the requested platform."""


@dataclasses.dataclass(frozen=True)
class Document:
    """An index or manifest as a source hands it over, with what it must match."""

    raw: bytes
    what: str  # for messages: "manifest", "index"
    media_type: str = ""  # of the descriptor or the Content-Type; the document's own wins
    digest: str | None = None  # the digest it was addressed by; None: addressed by name (a tag, index.json)
    size: int | None = None  # the size its descriptor gives


@dataclasses.dataclass(frozen=True)
class Entry:
    """One image a layout or archive lists at its top (index.json, manifest.json)."""

    position: int
    names: tuple[str, ...]  # as the source writes them: ref.names, RepoTags
    platform: Platform | None  # as the listing states it
    descriptor: Descriptor | None  # of its manifest or index; None when the source makes the manifest up


@dataclasses.dataclass(frozen=True)
class Listing:
    """The images a layout or archive holds, to choose from."""

    what: str  # "index.json", "manifest.json"
    entries: tuple[Entry, ...]
    matches: Callable[[str, Entry], bool]  # whether a chosen name names this entry
    name_kind: str  # what a name is here, for messages: "ref.name", "tag"


class BlobSource(Protocol):
    """Blob access to one source. Constructors do no I/O; `open()` starts it; `close()` is always safe."""

    name: str

    def open(self) -> Document | Listing:
        """The top of the source: a document (a registry's manifest or index) or a listing of images."""
        ...

    def entry(self, entry: Entry) -> Document:
        """The manifest or index of a listed image."""
        ...

    def manifest(self, desc: Descriptor) -> Document:
        """An index's entry by descriptor."""
        ...

    def blob(self, desc: Descriptor, what: str) -> bytes:
        """A small blob (the config), whole; `what` it is, for messages."""
        ...

    def layer(self, desc: Descriptor) -> contextlib.AbstractContextManager[LayerBlob | None]:
        """A layer as a buffer or a stream of chunks; None if the source does not have it."""
        ...

    def image_names(
        self, entry: Entry | None, manifest_digest: str, config_digest: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(repo_tags, repo_digests) of the resolved image."""
        ...

    def close(self) -> None: ...


@dataclasses.dataclass(eq=False)
class ResolvedImage(Closable):
    """One image of a source, resolved to one manifest and its config: the ImageSource the pipeline reads.

    `raw_manifest` and `raw_config` are the bytes the digests name. `parent_digest` is the
    digest of the index the manifest was chosen from (Anchore's parentDigest), else the
    manifest's own.
    """

    source: BlobSource
    name: str
    manifest: dict[str, Any]
    raw_manifest: bytes
    manifest_digest: str
    parent_digest: str
    config: dict[str, Any]
    raw_config: bytes
    config_digest: str
    layers: list[Descriptor]
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]

    @contextlib.contextmanager
    def open_layer(self, desc: Descriptor) -> Iterator[LayerBlob | None]:
        with self.source.layer(desc) as blob:
            if blob is None and not is_foreign(desc):
                raise SourceError(f"{self.name}: layer {desc.digest} is missing")
            if blob is not None and isinstance(blob.data, Buffer):
                if len(blob.data) != desc.size:
                    raise SourceError(
                        f"{self.name}: layer {desc.digest} is {len(blob.data)} bytes, the manifest says {desc.size}"
                    )
            yield blob  # a stream is size-checked by its source as it flows

    def close(self) -> None:
        self.source.close()


def resolve(source: BlobSource, choice: Choice = Choice(), platform: Platform | None = None) -> ResolvedImage:
    """The image `choice` and `platform` pick in `source`; the source is closed if that fails.

    With no platform: the host's, then linux/amd64, wherever an index offers several.
    """
    try:
        return _resolve(source, choice, platform)
    except BaseException:
        source.close()
        raise


def _resolve(source: BlobSource, choice: Choice, platform: Platform | None) -> ResolvedImage:
    top = source.open()
    entry = None
    if isinstance(top, Listing):
        entry = choose(top, choice, platform, source.name)
        doc = source.entry(entry)
    else:
        doc = top
    parent_digest = None
    for _ in range(MAX_INDEX_DEPTH):
        if doc.digest is not None:
            verify_digest(doc.raw, doc.digest, f"{source.name}: {doc.what}")
        digest = doc.digest or sha256_digest(doc.raw)
        what = f"{source.name}: {doc.what} {digest}"
        if doc.size is not None and len(doc.raw) != doc.size:
            raise SourceError(f"{what} is {len(doc.raw)} bytes, its descriptor says {doc.size}")
        kind, parsed = parse_manifest(doc.raw, what, doc.media_type)
        if kind in MANIFEST_MEDIA_TYPES:
            break
        parent_digest = parent_digest or digest
        doc = source.manifest(select_platform(index_entries(parsed, what), platform, what))
    else:
        raise SourceError(f"{source.name}: indexes nested deeper than {MAX_INDEX_DEPTH}")
    config_desc, layers = manifest_parts(parsed, what)
    raw_config = source.blob(config_desc, "config")
    verify_blob(raw_config, config_desc, f"{source.name}: config")
    repo_tags, repo_digests = source.image_names(entry, digest, config_desc.digest)
    return ResolvedImage(
        source,
        source.name,
        manifest=parsed,
        raw_manifest=doc.raw,
        manifest_digest=digest,
        parent_digest=parent_digest or digest,
        config=parse_json(raw_config, f"{source.name}: config {config_desc.digest}"),
        raw_config=raw_config,
        config_digest=config_desc.digest,
        layers=layers,
        repo_tags=repo_tags,
        repo_digests=repo_digests,
    )


# ---------------------------------------------------------------------------- choosing


def choose(listing: Listing, choice: Choice, platform: Platform | None, name: str) -> Entry:
    """The entry `choice` names, else the only image, else the one for `platform`.

    Entries with the same manifest are one image (Docker lists an image once per tag).
    Entries that share their names are the platforms of one image; entries with different
    names are different images, and choosing among them takes a name (or @N).
    """
    entries = [e for e in listing.entries if e.platform != _NOT_A_PLATFORM]
    if not entries:
        raise SourceError(f"{name}: {listing.what} lists no image")
    if choice.index is not None:
        if choice.index >= len(listing.entries):
            raise SourceError(f"{name}: {listing.what} has no image @{choice.index}; it has {_describe(listing)}")
        entries = [listing.entries[choice.index]]
    elif choice.name is not None:
        entries = [e for e in entries if listing.matches(choice.name, e)]
        if not entries:
            raise SourceError(
                f"{name}: no image with {listing.name_kind} {choice.name!r} in {listing.what}; "
                f"it has {_describe(listing)}"
            )
    images: dict[str | int, Entry] = {}
    for e in entries:
        images.setdefault(e.descriptor.digest if e.descriptor is not None else e.position, e)
    entries = list(images.values())
    if len(entries) > 1 and choice == Choice() and len({e.names for e in entries}) > 1:
        raise SourceError(
            f"{name}: {listing.what} holds {len(entries)} images; choose one with {name}:{listing.name_kind.upper()} "
            f"or {name}:@N; it has {_describe(listing)}"
        )
    if len(entries) == 1:
        only = entries[0]
        if platform is None or only.platform is None or _matches(only.platform, platform):
            return only
        raise PlatformNotFound(_no_platform([platform], [only.platform], name))
    for want in _wanted(platform):
        found = [e for e in entries if e.platform is not None and _matches(e.platform, want)]
        if len(found) > 1:
            raise SourceError(
                f"{name}: {len(found)} images for platform {want} in {listing.what}; choose one with "
                f"{name}:@N; it has {_describe(listing)}"
            )
        if found:
            return found[0]
    raise PlatformNotFound(_no_platform(_wanted(platform), [e.platform for e in entries], name))


def select_platform(entries: list[Descriptor], platform: Platform | None, what: str) -> Descriptor:
    """The manifest of an index (the platforms of one image) for `platform`; a missing variant matches any."""
    images = [d for d in entries if d.media_type in MANIFEST_MEDIA_TYPES + INDEX_MEDIA_TYPES]
    if len(images) == 1 and (platform is None or images[0].platform is None):
        return images[0]  # an index of one: whatever it is for
    for want in _wanted(platform):
        for d in images:
            if d.platform is not None and _matches(d.platform, want):
                return d
    raise PlatformNotFound(_no_platform(_wanted(platform), [d.platform for d in images], what))


def _wanted(platform: Platform | None) -> list[Platform]:
    return [platform] if platform is not None else list(dict.fromkeys([Platform.host(), DEFAULT_PLATFORM]))


def _matches(have: Platform, want: Platform) -> bool:
    return (have.os, have.architecture) == (want.os, want.architecture) and want.variant in ("", have.variant)


def _no_platform(wanted: list[Platform], offered: list[Platform | None], where: str) -> str:
    have = ", ".join(dict.fromkeys(str(p) for p in offered if p is not None and p != _NOT_A_PLATFORM)) or "none"
    asked = " or ".join(str(w) for w in wanted)
    return f"{where}: no image for platform {asked} (it has: {have}); choose one with --platform"


def _describe(listing: Listing) -> str:
    """Every entry on one line: `@0 app:1.0 (linux/amd64); @1 <untagged> (linux/arm64)`."""
    return "; ".join(
        f"@{e.position} {', '.join(e.names) or '<no ' + listing.name_kind + '>'} ({e.platform or 'platform not given'})"
        for e in listing.entries
    )
