"""What the CycloneDX and SPDX writers share: the files worth listing, stable ids, a timestamp."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator

from ..analysis import Analysis
from ..scan.model import DIGEST_LEN, MD5_LEN, SHA1_LEN

TOOL = "layerscan"
_SHA256 = MD5_LEN + SHA1_LEN
_NAMESPACE = uuid.UUID("6b1f0c2e-1d59-4b8e-9a53-3d0f3c1f5a10")  # fixed: same image, same serial


def digested_files(a: Analysis) -> Iterator[tuple[str, str, str, str]]:
    """(path, md5, sha1, sha256) of the regular files (and hardlinks, which carry their
    target's digests), in path order."""
    files = a.files
    digests = files.digests
    for i, path in enumerate(files.paths):
        if files.hashed[i]:
            at = i * DIGEST_LEN
            yield (
                path,
                digests[at : at + MD5_LEN].hex(),
                digests[at + MD5_LEN : at + _SHA256].hex(),
                digests[at + _SHA256 : at + DIGEST_LEN].hex(),
            )


def document_uuid(a: Analysis) -> uuid.UUID:
    """Deterministic per image and source, so two runs on one image give one identity."""
    return uuid.uuid5(_NAMESPACE, f"{a.source_name}\n{a.manifest_digest}")


def timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
