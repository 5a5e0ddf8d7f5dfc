"""Anchore's retrieve_files: the contents of the configured paths of the final image.

capture_globs(settings)         the globs the scan captures those paths with
capture_limits(settings)        those globs with the per-file size they need
retrieve_files(files, settings) -> {path as configured: content}
"""

from __future__ import annotations

import logging
import posixpath

from .config import RetrieveFiles
from .filetree import ImageFiles
from .scan import globs
from .scan.model import captured_bytes

log = logging.getLogger(__name__)


def capture_globs(settings: RetrieveFiles) -> tuple[str, ...]:
    """Each configured path as a capture glob that matches it (as the image names it) and nothing else."""
    return tuple(globs.escape(_in_image(p)) for p in settings.file_list)


def capture_max_bytes(settings: RetrieveFiles) -> int:
    return settings.max_file_size_kb * 1024


def capture_limits(settings: RetrieveFiles) -> tuple[tuple[str, int], ...]:
    return tuple((g, capture_max_bytes(settings)) for g in capture_globs(settings))


def retrieve_files(files: ImageFiles, settings: RetrieveFiles) -> dict[str, bytes]:
    """Regular files only (links are not followed), at most max_file_size_kb KiB,
    keyed by the path exactly as configured."""
    limit = capture_max_bytes(settings)
    out: dict[str, bytes] = {}
    for path in settings.file_list:
        norm = _in_image(path)
        entry = files.get(norm)
        if entry is None or entry.record.type != "file":
            continue
        if entry.record.size > limit:
            log.warning(
                "retrieve_files: %s is %d bytes, more than max_file_size_kb=%d; skipped",
                path,
                entry.record.size,
                settings.max_file_size_kb,
            )
            continue
        content = files.captured.get(norm)
        if content is not None:
            out[path] = captured_bytes(content)
    return out


def _in_image(path: str) -> str:
    """A configured path as the final image names its files: absolute and normalized."""
    return posixpath.normpath("/" + path.lstrip("/"))
