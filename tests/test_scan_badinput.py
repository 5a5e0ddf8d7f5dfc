"""Hostile and broken layers: each gives its typed error from layerscan.errors, naming
the layer and (where it makes sense) the offset in the uncompressed tar stream, in
both engines, given as a buffer and as chunks; and a good scan works right after."""

from __future__ import annotations

import gzip
import hashlib
import time
import zlib
from typing import NamedTuple

import pytest

from layerscan.errors import CompressionError, DigestMismatch, LayerError, LimitExceeded, TarFormatError
from layerscan.scan import scan_layer
from layerscan.scan.model import Limits, ScanOptions
from scancheck import ENGINES
from tarbuilder import (
    BLOCK,
    Entry,
    base256,
    build,
    chunked,
    compress,
    end_of_archive,
    header,
    member,
    member_offsets,
    opaque,
    patch_header,
    pax,
    pax_record,
    whiteout,
)

FILES = [Entry(f"srv/f{i:02}", data=bytes(range(256)) * (i + 1)) for i in range(12)]
GOOD = build(FILES)
OFFSETS = member_offsets(GOOD)
GOOD_GZ = compress(GOOD, "gzip")
GOOD_ZST = compress(GOOD, "zstd")
ANY = -1  # the error must carry an offset, whichever it is


class Case(NamedTuple):
    blob: bytes
    error: type[LayerError] | tuple[type[LayerError], ...]
    offset: int | None  # the exact offset expected, ANY, or None for no claim
    limits: Limits = Limits()


def flipped(blob: bytes, at: int, value: int) -> bytes:
    return blob[:at] + bytes([value]) + blob[at + 1 :]


def pax_entry(records: bytes, name: bytes = b"x") -> bytes:
    return pax(records) + member(name, b"hi") + end_of_archive()


def gzip_member_bomb(total: int) -> bytes:
    """Concatenated gzip members of zeros under one tar header that claims them all."""
    mib = 1 << 20
    zeros = gzip.compress(bytes(mib), 9, mtime=0)
    first = gzip.compress(header(b"bomb", size=total - BLOCK) + bytes(mib - BLOCK), 9, mtime=0)
    return first + zeros * (total // mib - 1)


def gzip_stream_bomb(total: int) -> bytes:
    """One deflate stream of `total` bytes: a tar header and zeros."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [z.compress(header(b"bomb", size=total - BLOCK))]
    parts += [z.compress(bytes(1 << 20)) for _ in range(total >> 20)]
    return b"".join(parts) + z.flush()


# Layer -> (error, offset). Offsets of header problems are the offset of that header.
CASES: dict[str, Case] = {
    "truncated-gzip": Case(GOOD_GZ[: len(GOOD_GZ) // 2], CompressionError, ANY),
    "gzip-without-trailer": Case(GOOD_GZ[:-8], CompressionError, ANY),
    "gzip-cut-in-header": Case(GOOD_GZ[:6], CompressionError, ANY),
    "corrupt-deflate-block-type": Case(flipped(GOOD_GZ, 10, 0xFF), CompressionError, ANY),
    "gzip-bad-crc": Case(flipped(GOOD_GZ, len(GOOD_GZ) - 8, GOOD_GZ[-8] ^ 0x55), CompressionError, ANY),
    "corrupt-second-gzip-member": Case(
        (lambda m: flipped(m, m.index(b"\x1f\x8b", 10) + 10, 0xFF))(compress(GOOD, "gzip", members=2)),
        CompressionError,
        ANY,
    ),
    "truncated-zstd": Case(GOOD_ZST[: len(GOOD_ZST) // 2], CompressionError, ANY),
    "truncated-tar-in-data": Case(GOOD[: OFFSETS[5] + BLOCK + 100], TarFormatError, ANY),
    "truncated-tar-in-header": Case(GOOD[: OFFSETS[5] + 100], TarFormatError, OFFSETS[5]),
    "truncated-tar-gzip": Case(compress(GOOD[: OFFSETS[7] + 300], "gzip"), TarFormatError, OFFSETS[7]),
    "bad-checksum-mid-stream": Case(
        patch_header(GOOD, OFFSETS[8], {"chksum": b"000001\0 "}, fix_checksum=False), TarFormatError, OFFSETS[8]
    ),
    "bad-checksum-mid-stream-zstd": Case(
        compress(patch_header(GOOD, OFFSETS[8], {"chksum": b"000001\0 "}, fix_checksum=False), "zstd"),
        TarFormatError,
        OFFSETS[8],
    ),
    "garbage-header-mid-stream": Case(
        GOOD[: OFFSETS[4]] + b"\xab" * BLOCK + GOOD[OFFSETS[4] :], TarFormatError, OFFSETS[4]
    ),
    "size-not-a-number": Case(patch_header(GOOD, OFFSETS[3], {"size": b"12x45\0"}), TarFormatError, OFFSETS[3]),
    "negative-size": Case(patch_header(GOOD, OFFSETS[3], {"size": base256(-5, 12)}), TarFormatError, OFFSETS[3]),
    "size-past-the-end-octal": Case(patch_header(GOOD, OFFSETS[3], {"size": b"77777777777\0"}), TarFormatError, ANY),
    # Past the end of the stream, and past max_total_bytes too: truncated, or refused up front.
    "size-past-the-end-base256": Case(
        patch_header(GOOD, OFFSETS[3], {"size": base256(2**62, 12)}), (TarFormatError, LimitExceeded), ANY
    ),
    "pax-record-longer-than-header": Case(pax_entry(b"99999999 path=abc\n"), TarFormatError, 0),
    "pax-record-length-huge": Case(pax_entry(b"99999999999999999999999 path=abc\n"), TarFormatError, 0),
    "pax-record-length-zero": Case(pax_entry(b"0 path=abc\n"), TarFormatError, 0),
    "pax-record-length-too-short": Case(pax_entry(b"3 path=abc\n"), TarFormatError, 0),
    "pax-record-length-off-by-one": Case(pax_entry(pax_record("path", "abc", length=13)), TarFormatError, 0),
    "pax-record-not-a-number": Case(pax_entry(b"zz path=abc\n"), TarFormatError, 0),
    "pax-record-without-equals": Case(pax_entry(b"11 pathabc\n"), TarFormatError, 0),
    "pax-garbage-after-records": Case(pax_entry(pax_record("path", "abc") + b"junk"), TarFormatError, 0),
    "pax-header-over-limit": Case(
        build([Entry("a", data=b"x", xattrs={"user.big": "v" * 5000})]),
        LimitExceeded,
        0,
        Limits(max_ext_header_bytes=4096),
    ),
    "pax-path-over-ext-limit": Case(
        build([Entry("p/" + "x" * 5000, data=b"x")]),
        LimitExceeded,
        0,
        Limits(max_ext_header_bytes=4096, max_path_bytes=1 << 20),
    ),
    "gnu-longname-over-ext-limit": Case(
        build([Entry("g/" + "y" * 5000, data=b"x")], "gnu"),
        LimitExceeded,
        0,
        Limits(max_ext_header_bytes=4096, max_path_bytes=1 << 20),
    ),
    "too-many-entries": Case(GOOD, LimitExceeded, OFFSETS[10], Limits(max_entries=10)),
    "too-many-entries-whiteouts-count": Case(
        build([*FILES[:8], whiteout("etc/motd"), opaque("app"), Entry("z", data=b"")]),
        LimitExceeded,
        ANY,
        Limits(max_entries=10),
    ),
    "path-over-limit": Case(build([Entry("q/" + "z" * 255, data=b"1")]), LimitExceeded, 0, Limits(max_path_bytes=256)),
    "total-bytes-over-limit": Case(GOOD, LimitExceeded, ANY, Limits(max_total_bytes=len(GOOD) // 2)),
}


def scan(blob: bytes, engine: str, chunks: bool, limits: Limits = Limits(), **kw: object):
    data = chunked(blob, [1000, 1, 4096]) if chunks else blob
    return scan_layer(data, ScanOptions(limits=limits), engine=engine, name="sha256:feedface", **kw)  # type: ignore[arg-type]


def assert_healthy(engine: str) -> None:
    """A good layer still scans right after a failure."""
    result = scan(GOOD_GZ, engine, chunks=False)
    assert [r.path for r in result.entries] == [normalized(e.path) for e in FILES]
    assert result.entries[11].sha256 == hashlib.sha256(FILES[11].data).hexdigest()


def normalized(path: str) -> str:
    return "/" + path


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("chunks", [False, True], ids=["buffer", "chunks"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_layer_gives_typed_error(case: str, chunks: bool, engine: str) -> None:
    c = CASES[case]
    with pytest.raises(c.error) as info:
        scan(c.blob, engine, chunks, c.limits)
    err = info.value
    assert err.layer == "sha256:feedface" and "sha256:feedface" in str(err), (
        f"{engine}: the error does not name the layer: {err}"
    )
    if c.offset == ANY:
        assert isinstance(err.offset, int) and err.offset >= 0, f"{engine}: no offset in {err!r}"
    elif c.offset is not None:
        assert err.offset == c.offset, f"{engine}: {case}: offset {err.offset}, expected {c.offset}: {err}"
    assert_healthy(engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_error_does_not_depend_on_feeding(case: str, engine: str) -> None:
    """One bad layer, one error: the same class at the same offset whole, in odd chunks, byte by byte."""
    c = CASES[case]
    seen = set()
    for sizes in (None, [1000, 1, 4096], [1], [65536, 7]):
        data = c.blob if sizes is None else chunked(c.blob, sizes)
        with pytest.raises(LayerError) as info:
            scan_layer(data, ScanOptions(limits=c.limits), engine=engine, name="x")  # type: ignore[arg-type]
        seen.add((type(info.value), info.value.offset))
    assert len(seen) == 1, f"{engine}: {case}: {sorted(seen, key=str)}"


@pytest.mark.parametrize("engine", ENGINES)
def test_limits_are_inclusive(engine: str) -> None:
    """Exactly at each limit is fine; the cases above are one past it."""
    entries = build([Entry("q/" + "z" * 254, data=b"1"), *FILES[:9]])
    limits = Limits(max_entries=10, max_path_bytes=256, max_total_bytes=len(entries))
    assert len(scan(entries, engine, chunks=False, limits=limits).entries) == 10


@pytest.fixture(scope="module", params=["members", "stream"])
def bomb(request: pytest.FixtureRequest) -> bytes:
    return gzip_member_bomb(4 << 30) if request.param == "members" else gzip_stream_bomb(256 << 20)


@pytest.mark.parametrize("engine", ENGINES)
def test_gzip_bomb_fails_fast(engine: str, bomb: bytes) -> None:
    """A few MB of gzip that inflate to 256 MiB or 4 GiB stop at max_total_bytes, in well under a second."""
    limit = 8 << 20
    t0 = time.process_time()
    with pytest.raises(LimitExceeded) as info:
        scan(bomb, engine, chunks=False, limits=Limits(max_total_bytes=limit))
    spent = time.process_time() - t0
    assert info.value.offset is not None  # the header that claims the bytes, or where the limit was crossed
    assert spent < 1.0, f"{engine} spent {spent:.2f} s of CPU on a bomb capped at {limit} bytes"
    assert_healthy(engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("chunks", [False, True], ids=["buffer", "chunks"])
def test_wrong_expected_digest(engine: str, chunks: bool) -> None:
    right = "sha256:" + hashlib.sha256(GOOD_GZ).hexdigest()
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DigestMismatch) as info:
        scan(GOOD_GZ, engine, chunks, expected_digest=wrong)
    assert (info.value.expected, info.value.actual) == (wrong, right)
    assert "sha256:feedface" in str(info.value)
    assert scan(GOOD_GZ, engine, chunks, expected_digest=right).digest == right


@pytest.mark.parametrize("engine", ENGINES)
def test_digest_covers_bytes_after_the_stream(engine: str) -> None:
    """Zero padding after the last gzip member still belongs to the blob the digest names."""
    blob = GOOD_GZ + bytes(100)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    assert scan(blob, engine, chunks=True, expected_digest=digest).digest == digest
