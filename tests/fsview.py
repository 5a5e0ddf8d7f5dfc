"""A directory (or one layer tar) seen as a one-layer image: tar it in memory, scan it, squash it.

    image_files_from_dir(path, globs) -> ImageFiles
    image_files_from_layer(blob, globs) -> ImageFiles     (a compressed or plain layer tar)

The fixtures are partial root filesystems; this gives catalogers exactly what they
get from a real image (the scan's captured files), without a registry or a layout.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from layerscan.filetree import FinalFile, ImageFiles
from layerscan.scan import scan_layer
from layerscan.scan.model import Marker, ScanOptions

ENGINE = "native"
SKIP = {"expected.json"}  # the answer key sits at each fixture's root; it is not part of the image


def tar_dir(root: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if rel in SKIP:
                continue
            tf.add(p, arcname=rel, recursive=False)
    return buf.getvalue()


def image_files_from_dir(
    root: Path | str,
    globs: tuple[str, ...],
    *,
    capture_limits: tuple[tuple[str, int], ...] = (),
    engine: str = ENGINE,
    markers: tuple[Marker, ...] = (),
) -> ImageFiles:
    return image_files_from_layer(
        tar_dir(Path(root)), globs, capture_limits=capture_limits, engine=engine, markers=markers
    )


def image_files_from_layer(
    blob: bytes,
    globs: tuple[str, ...],
    *,
    capture_limits: tuple[tuple[str, int], ...] = (),
    engine: str = ENGINE,
    markers: tuple[Marker, ...] = (),
) -> ImageFiles:
    options = ScanOptions(capture_globs=globs, capture_limits=capture_limits, markers=markers)
    result = scan_layer(blob, options, engine=engine)
    # One layer: no whiteouts to apply, and the last entry for a path wins.
    files = {rec.path: FinalFile(rec, 0) for rec in result.entries}
    return ImageFiles.of(files, dict(result.captured), set(result.too_big_to_capture), dict(result.marks))
