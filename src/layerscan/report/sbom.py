"""What the CycloneDX and SPDX writers share: the files worth listing, stable ids, a timestamp."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator

from ..analysis import Analysis
from ..scan.model import FileRecord

TOOL = "layerscan"
_NAMESPACE = uuid.UUID("6b1f0c2e-1d59-4b8e-9a53-3d0f3c1f5a10")  # fixed: same image, same serial


def digested_files(a: Analysis) -> Iterator[tuple[str, FileRecord]]:
    """Regular files (and hardlinks, which carry their target's digests), in path order."""
    files = a.files.files
    for path in sorted(files):
        rec = files[path].record
        if rec.sha1 and rec.sha256 and rec.md5:
            yield path, rec


def document_uuid(a: Analysis) -> uuid.UUID:
    """Deterministic per image and source, so two runs on one image give one identity."""
    return uuid.uuid5(_NAMESPACE, f"{a.source_name}\n{a.manifest_digest}")


def timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
