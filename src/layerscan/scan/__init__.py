"""One layer in, one LayerResult out: the native engine, or its pure-Python twin.

    scan_layer(buffer_or_chunks, options, engine="native", threads=None) -> LayerResult

A buffer (bytes, memoryview, an mmap of a cached blob) is scanned with the GIL
released for the whole layer; an iterable of chunks is pushed through the same
state machine (`feed`/`finish`), for layers streamed straight from the network.
`threads` (native engine): how many threads may work on the layer at once; None is
every core the process may use, 1 the caller's thread alone. The result is the same.

    prepare(options, engine, tmp_dir)   # the native engine's rules ready before the first layer,
                                        # from <tmp_dir>/layerscan_hscache when compiled before
                                        # (tmp_dir None: compiled, nothing kept)
    glob_filter(globs, paths) -> the paths any capture glob matches (the C matcher), for
    the catalogers' look over the final tree: one dialect for what is captured and what is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..image import Buffer
from . import native, rulecache
from .model import LayerResult, ScanOptions
from .native import glob_filter

__all__ = ["ENGINES", "glob_filter", "prepare", "scan_layer"]

ENGINES = ("native", "reference")


def prepare(options: ScanOptions, engine: str, tmp_dir: str | None) -> None:
    """With `tmp_dir`, the native rules' database loaded from (or saved to) the rule cache there."""
    if engine == "native":
        native.prepare(options, Path(tmp_dir) / rulecache.DIRNAME if tmp_dir is not None else None)


def scan_layer(
    data: Buffer | Iterable[bytes],
    options: ScanOptions = ScanOptions(),
    *,
    engine: str = "native",
    compression: str = "auto",
    name: str = "",
    expected_digest: str | None = None,
    threads: int | None = None,
) -> LayerResult:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "reference":
        from . import reference  # with its pyzstd and tarfile, loaded only when asked for

        if isinstance(data, Buffer):
            return reference.scan_buffer(
                data, options, compression=compression, name=name, expected_digest=expected_digest
            )
        return reference.scan_chunks(data, options, compression=compression, name=name, expected_digest=expected_digest)
    with native.Scanner(
        options, compression=compression, name=name, expected_digest=expected_digest, threads=threads
    ) as scanner:
        for chunk in (data,) if isinstance(data, Buffer) else data:
            scanner.feed(chunk)
        return scanner.finish()
