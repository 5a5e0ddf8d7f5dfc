"""Submit an image for analysis, as Anchore's catalog does: resolve the reference at its registry
first (manifest and config fetched and digest-checked), and queue it only if that worked:
in the store, and, when a Celery queue is configured, as a message to its workers.

A reference that does not parse, a registry that refuses the credentials, a tag or digest
that is not there, or a registry that cannot be reached is a SubmitError carrying the HTTP
status the API answers with, and nothing is queued.
"""

from __future__ import annotations

import re

from ..config import Config
from ..errors import DigestMismatch, LayerscanError, SourceError
from ..refs import SHA256_DIGEST, ImageRef, RefError
from ..sources import open_source
from ..sources.auth import AuthError
from .store import NOT_ANALYZED, ImageRecord, Store

_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


class SubmitError(LayerscanError):
    """An image that cannot be queued; `status` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def submit(store: Store, config: Config, tag: str | None, digest: str | None, force: bool = False) -> ImageRecord:
    """Queue `tag` (a "registry/repo:tag" reference), or `digest` of it ("sha256:…" or
    "registry/repo@sha256:…", with `tag` naming it). A known image gains the tag; with
    `force`, an analyzed or failed one is analyzed again."""
    ref = _reference(tag, digest)
    try:
        source = open_source(f"registry:{ref}", config=config)
        try:
            manifest_digest = source.manifest_digest
            image_id = source.config_digest.partition(":")[2]
            manifest, image_config, parent_digest = source.raw_manifest, source.raw_config, source.parent_digest
        finally:
            source.close()
    except RefError as e:
        raise SubmitError(400, str(e)) from None
    except AuthError as e:
        raise SubmitError(401, str(e)) from None
    except DigestMismatch as e:
        raise SubmitError(502, str(e)) from None
    except SourceError as e:
        raise SubmitError(_status_of(e), str(e)) from None
    fulltag = ref.repo_tag() or ""
    record = store.add_image(
        manifest_digest,
        image_id,
        fulltag,
        f"registry:{ref.repo_digest(manifest_digest)}",  # pinned: a tag that moves later changes nothing
        manifest,
        image_config,
        parent_digest,
        force=force,
    )
    if config.service.queue_url and record.analysis_status == NOT_ANALYZED:
        from .celery_queue import dispatch  # Celery loads only where a queue is configured

        dispatch(config, record.image_digest)
    return record


def _reference(tag: str | None, digest: str | None) -> ImageRef:
    if not tag:
        raise SubmitError(400, "a tag is required (with a digest too, the tag names it: registry/repo:tag)")
    try:
        ref = ImageRef.parse(tag)
    except RefError as e:
        raise SubmitError(400, str(e)) from None
    if ref.digest:
        raise SubmitError(400, f"tag {tag!r} holds a digest; give the digest in the digest field")
    if not digest:
        return ref
    name, _, bare = digest.rpartition("@")
    if not SHA256_DIGEST.fullmatch(bare):
        raise SubmitError(400, f"digest {digest!r} is not sha256:<64 lowercase hex> or registry/repo@sha256:<hex>")
    if name:
        try:
            named = ImageRef.parse(f"{name}@{bare}")
        except RefError as e:
            raise SubmitError(400, str(e)) from None
        if (named.registry, named.repository) != (ref.registry, ref.repository):
            raise SubmitError(400, f"digest {digest!r} names another repository than tag {tag!r}")
    return ImageRef(ref.registry, ref.repository, ref.tag, bare)


def _status_of(e: SourceError) -> int:
    """404 when the registry says the tag or digest is not there, 400 for an image layerscan cannot
    analyze (schema 1, not an image), 502 when the registry fails or cannot be reached."""
    match = _HTTP_STATUS.search(str(e))
    if match is None:
        unreachable = ("attempts", "TLS", "redirects", "timed out", "refused")
        return 502 if any(word in str(e) for word in unreachable) else 400
    status = int(match.group(1))
    if status == 404:
        return 404
    if status in (401, 403):
        return status
    return 400 if 400 <= status < 500 else 502
