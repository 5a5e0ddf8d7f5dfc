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
from . import native, reference
from .model import LayerResult, ScanOptions

ENGINES = ("native", "reference")


def scan_layer(
    data: Buffer | Iterable[bytes],
    options: ScanOptions = ScanOptions(),
    *,
    engine: str = "native",
    compression: str = "auto",
    name: str = "",
    expected_digest: str | None = None,
) -> LayerResult:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if isinstance(data, (bytes, bytearray, memoryview, mmap.mmap)):
        scan_buffer = native.scan_buffer if engine == "native" else reference.scan_buffer
        return scan_buffer(data, options, compression=compression, name=name, expected_digest=expected_digest)
    if engine == "reference":
        return reference.scan_chunks(data, options, compression=compression, name=name, expected_digest=expected_digest)
    scanner = native.Scanner(options, compression=compression, name=name, expected_digest=expected_digest)
    for chunk in data:
        scanner.feed(chunk)
    return scanner.finish()
