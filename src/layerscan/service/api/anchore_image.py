"""An ImageRecord as Anchore's `AnchoreImage` (anchore-format.md §5, the engine's make_response_image).

anchore-cli reads `image_detail[].{registry,repo,tag,fulltag,imageId,created_at,tag_detected_at}`
for `image list`, and the record plus `image_content.metadata` for `image get`, `add`,
`wait` and `import`.
"""

from __future__ import annotations

import datetime
from typing import Any

from ...refs import ImageRef, RefError
from ..store import ImageRecord

USER_ID = "admin"  # one account: Anchore's admin owns every image


def timestamp(when: datetime.datetime | None) -> str | None:
    """Anchore's form: ISO 8601 in UTC, seconds, with a Z."""
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.UTC).replace(tzinfo=None)
    return when.replace(microsecond=0).isoformat() + "Z"


def anchore_image(record: ImageRecord, metadata: dict[str, Any] | None, untagged: str | None = None) -> dict[str, Any]:
    """`metadata` is image_content.metadata (content.summary_metadata) once analyzed, else None.

    An image with no tag gets one detail named `untagged:<none>`, as Docker lists an untagged
    image, because anchore-cli reads image_detail[0] of every image it prints."""
    empty = dict.fromkeys(("arch", "distro", "distro_version", "dockerfile_mode", "image_size", "layer_count"))
    return {
        "imageDigest": record.image_digest,
        "parentDigest": record.parent_digest,
        "userId": USER_ID,
        "image_type": "docker",
        "analysis_status": record.analysis_status,
        "image_status": record.image_status,
        "analyzed_at": timestamp(record.analyzed_at),
        "created_at": timestamp(record.created_at),
        "last_updated": timestamp(record.last_updated),
        "annotations": {},
        "image_content": {"metadata": metadata if metadata is not None else empty},
        "image_detail": [_detail(record, t) for t in record.fulltags or ([f"{untagged}:<none>"] if untagged else [])],
    }


def _detail(record: ImageRecord, fulltag: str) -> dict[str, Any]:
    registry, repo, tag = _split(fulltag)
    return {
        "imageDigest": record.image_digest,
        "userId": USER_ID,
        "registry": registry,
        "repo": repo,
        "tag": tag,
        "digest": record.image_digest,
        "imageId": record.image_id,
        "dockerfile": None,
        "created_at": timestamp(record.created_at),
        "last_updated": timestamp(record.last_updated),
        "tag_detected_at": timestamp(record.tag_detected_at.get(fulltag) or record.created_at),
        "fulltag": fulltag,
        "fulldigest": f"{registry}/{repo}@{record.image_digest}",
    }


def _split(fulltag: str) -> tuple[str, str, str]:
    """registry, repo, tag of a stored "registry/repo:tag"."""
    try:
        ref = ImageRef.parse(fulltag)
    except RefError:
        ref = None
    if ref is not None and ref.tag:
        return ref.display_registry, ref.repository, ref.tag
    name, _, tag = fulltag.rpartition(":")
    registry, _, repo = name.partition("/")
    return registry, repo, tag
