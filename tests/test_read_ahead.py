"""image_scan._ReadAhead: a streamed layer's chunks read on a thread of their own, ahead of the scan."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from layerscan.image_scan import _ReadAhead


def _readers() -> int:
    return sum(t.name == "read-ahead" for t in threading.enumerate())


def test_chunks_come_in_order_and_the_reader_ends() -> None:
    chunks = [bytes([i]) * (i + 1) for i in range(100)]
    with _ReadAhead(chunks, depth=3) as ahead:
        assert list(ahead) == chunks
        assert list(ahead) == []  # stays ended
    assert _readers() == 0


def test_an_error_of_the_stream_is_raised_where_it_is_read_after_the_chunks_before_it() -> None:
    def stream() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ConnectionError("cut")

    with _ReadAhead(stream()) as ahead:
        assert next(ahead) == b"a" and next(ahead) == b"b"
        with pytest.raises(ConnectionError, match="cut"):
            next(ahead)
    assert _readers() == 0


def test_leaving_early_stops_the_reader_and_closes_the_stream() -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
        finally:  # what blob_chunks does with its HTTP response
            closed.set()

    with _ReadAhead(endless(), depth=2) as ahead:
        assert next(ahead) == b"x" * 1024
    assert closed.is_set()
    assert _readers() == 0
