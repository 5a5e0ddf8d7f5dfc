"""One layer in, one LayerResult out: the native engine, or its pure-Python twin.

    scan_layer(buffer_or_chunks, options, engine="native") -> LayerResult

A buffer (bytes, memoryview, an mmap of a cached blob) is scanned with the GIL
released for the whole layer; an iterable of chunks is pushed through the same
state machine (`feed`/`finish`), for layers streamed straight from the network.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable

from ..image import Buffer
from . import reference
from .model import LayerResult, ScanOptions

ENGINES = ("native", "reference")


def native_available() -> bool:
    try:
        from .. import _scan  # noqa: F401
    except ImportError:
        return False
    return True


def scan_layer(
    data: Buffer | Iterable[bytes],
    options: ScanOptions = ScanOptions(),
    *,
    engine: str = "native",
    compression: str = "auto",
    name: str = "",
    expected_digest: str | None = None,
) -> LayerResult:
    kw = dict(compression=compression, name=name, expected_digest=expected_digest)
    is_mmap = isinstance(data, mmap.mmap)
    is_buffer = is_mmap or isinstance(data, (bytes, bytearray, memoryview))
    if engine == "reference":
        return reference.scan_buffer(data, options, **kw) if is_buffer else reference.scan_chunks(data, options, **kw)
    if engine != "native":
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    from .. import _scan

    if is_mmap:
        return _scan_mmap(_scan.Scanner(options, **kw), data)  # type: ignore[arg-type]
    if is_buffer:
        return _scan.scan_buffer(data, options, **kw)
    scanner = _scan.Scanner(options, **kw)
    for chunk in data:
        scanner.feed(chunk)
    return scanner.finish()


# A multiple of every page size; large enough that the per-window GIL hand-off is noise.
MMAP_WINDOW = 16 << 20


def _scan_mmap(scanner, data: mmap.mmap) -> LayerResult:
    """Feed a mapped blob window by window, dropping each window's pages once read.

    Pages of a file mapping count in the process's RSS for as long as they stay mapped:
    a 1 GB cached layer would show 1 GB resident. MADV_DONTNEED on a read-only file
    mapping only unmaps them (the kernel's page cache keeps them), so RSS stays bounded.
    """
    size = len(data)
    with memoryview(data) as view:
        for start in range(0, size, MMAP_WINDOW):
            end = min(start + MMAP_WINDOW, size)
            scanner.feed(view[start:end])
            data.madvise(mmap.MADV_DONTNEED, start, end - start)
    return scanner.finish()
