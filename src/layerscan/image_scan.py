"""Every layer of one image through the scanner: each unique layer once, on up to
`max_threads` threads (the native scanner releases the GIL), each digest-checked; a layer
the result cache knows is not opened at all.

    scan_image(source, options, engine, max_threads, progress, cache, scan_threads)
        -> [LayerResult | None per manifest layer]

The biggest layers start first, since the biggest one bounds the image's wall time; and
each layer may use up to `scan_threads` threads (None: every core the process may use):
the native scanner hashes on a pool of threads that every layer being scanned shares, so
the cores a finished small layer leaves idle go to the big one.
"""

from __future__ import annotations

import hashlib
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, cast

from .errors import DigestMismatch, LayerError
from .image import Buffer, Descriptor, ImageSource
from .scan import scan_layer
from .scan.model import LayerResult, ScanOptions
from .store.results import ResultCache

if TYPE_CHECKING:
    from tqdm import tqdm

Advance = Callable[[int], None]


def scan_image(
    source: ImageSource,
    options: ScanOptions,
    engine: str,
    max_threads: int,
    progress: bool,
    cache: ResultCache,
    scan_threads: int | None = None,
) -> list[LayerResult | None]:
    """One result per manifest layer (None: missing); a layer listed twice is scanned once."""
    unique: dict[str, Descriptor] = {}
    for desc in sorted(source.layers, key=lambda d: -d.size):  # stable: equal sizes keep manifest order
        unique.setdefault(desc.digest, desc)
    bar = _bar(source.name, sum(d.size for d in unique.values())) if progress else None

    def advance(n: int) -> None:
        if bar is not None:
            bar.update(n)

    pool = ThreadPoolExecutor(max_workers=max(1, min(max_threads, len(unique))), thread_name_prefix="scan")
    try:
        futures: dict[str, Future[LayerResult | None]] = {
            digest: pool.submit(scan_one, source, desc, options, engine, advance, cache, scan_threads)
            for digest, desc in unique.items()
        }
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for fut in done:
            fut.result()  # re-raises the first failure; the rest are cancelled below
        by_digest = {digest: fut.result() for digest, fut in futures.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return [by_digest[d.digest] for d in source.layers]


def scan_one(
    source: ImageSource,
    desc: Descriptor,
    options: ScanOptions,
    engine: str,
    advance: Advance,
    cache: ResultCache,
    threads: int | None = None,
) -> LayerResult | None:
    scanned = False

    def scan() -> LayerResult | None:
        nonlocal scanned
        scanned = True
        return _scan_blob(source, desc, options, engine, advance, threads)

    result = cache.layer(desc.digest, scan)
    if not scanned:  # the blob is never opened: not downloaded, not read
        advance(desc.size)
    return result


def _scan_blob(
    source: ImageSource, desc: Descriptor, options: ScanOptions, engine: str, advance: Advance, threads: int | None
) -> LayerResult | None:
    with source.open_layer(desc) as blob:
        if blob is None:
            advance(desc.size)
            return None
        expected = None if blob.verified else desc.digest
        # A blob corrupted at rest or in transit is the DigestMismatch it is, not the malformed
        # layer it looks like: when the scan fails, the digest check is finished before reporting.
        data = blob.data
        if isinstance(data, Buffer):
            try:
                result = scan_layer(
                    data, options, engine=engine, name=desc.digest, expected_digest=expected, threads=threads
                )
            except LayerError:
                if expected is not None:
                    actual = "sha256:" + hashlib.sha256(data).hexdigest()
                    if actual != expected:
                        raise DigestMismatch(f"layer {desc.digest}", expected, actual) from None
                raise
            advance(desc.size)
            return result
        with _ReadAhead(data) as ahead:
            chunks = _counted(ahead, advance)
            try:
                return scan_layer(
                    chunks, options, engine=engine, name=desc.digest, expected_digest=expected, threads=threads
                )
            except LayerError:
                if blob.verified:  # the source checks the digest at the end of the stream
                    _drain(chunks)
                raise


class _ReadAhead:
    """A stream's chunks read on a thread of its own, at most `depth` chunks ahead of the scan,
    so that receiving a layer overlaps scanning it instead of alternating with it (a registry's
    layers streamed with the cache off). Errors of the stream are raised where its chunks are
    read; leaving the `with` stops the reader and waits for it (a read in progress ends by its
    own timeout), so no reader outlives its layer."""

    _END = object()

    def __init__(self, chunks: Iterable[bytes], depth: int = 8) -> None:
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(iter(chunks),), name="read-ahead", daemon=True)

    def __enter__(self) -> _ReadAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if item is self._END:
            self._done = True
            raise StopIteration
        return cast(bytes, item)

    def _read(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
            self._put(self._END)
        except BaseException as e:  # handed to the scan's thread, which raises it
            self._put(e)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # a generator: its own cleanup (the HTTP response) runs now
                close()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False


def _drain(chunks: Iterable[bytes]) -> None:
    """Read the rest of a stream whose source checks its digest at the end: a blob corrupted
    in transit then fails as the DigestMismatch it is, not as the malformed layer it looks like."""
    for _ in chunks:
        pass


def _counted(chunks: Iterable[bytes], advance: Advance) -> Iterator[bytes]:
    for chunk in chunks:
        advance(len(chunk))
        yield chunk


def _bar(name: str, total: int) -> tqdm[NoReturn]:
    from tqdm import tqdm  # a terminal's progress bar: not loaded for machines and services

    # No monitor thread (it only tunes the refresh rate of bars that stall): it would outlive the
    # bar by seconds, and the stages after the scan use a second core only in a one-thread process.
    tqdm.monitor_interval = 0
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )
