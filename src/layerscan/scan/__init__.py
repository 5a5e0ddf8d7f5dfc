"""One layer in, one LayerResult out: the native engine, or its pure-Python twin.

    scan_layer(buffer_or_chunks, options, engine="native") -> LayerResult

A buffer (bytes, memoryview, an mmap of a cached blob) is scanned with the GIL
released for the whole layer; an iterable of chunks is pushed through the same
state machine (`feed`/`finish`), for layers streamed straight from the network.
"""

from __future__ import annotations

from typing import Iterable, Union

from . import reference
from .model import LayerResult, ScanOptions

Buffer = Union[bytes, bytearray, memoryview]
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
    is_buffer = isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, "__buffer__") or _is_mmap(data)
    if engine == "reference":
        return reference.scan_buffer(data, options, **kw) if is_buffer else reference.scan_chunks(data, options, **kw)
    if engine != "native":
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    from .. import _scan

    if is_buffer:
        return _scan.scan_buffer(data, options, **kw)
    scanner = _scan.Scanner(options, **kw)
    for chunk in data:
        scanner.feed(chunk)
    return scanner.finish()


def _is_mmap(obj: object) -> bool:
    import mmap

    return isinstance(obj, mmap.mmap)
