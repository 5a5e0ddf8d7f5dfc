"""Regression tests for what hostile-input testing of the scanner found (issue 8, findings
1, 2, 3, 5, 6, 7 and 8). Each runs both engines, on the whole buffer and in chunks, and each
broken layer must give the same typed error at the same offset however it is fed."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscan.errors import LayerError, LimitExceeded, TarFormatError
from layerscan.scan import scan_layer
from layerscan.scan.model import MAX_PATH_WARNINGS, LayerResult, Limits, ScanOptions, Whiteout
from scancheck import ENGINES, assert_same
from tarbuilder import (
    BLOCK,
    Entry,
    build,
    chunked,
    compress,
    end_of_archive,
    gnu_sparse,
    header,
    member,
    member_offsets,
    pax,
    pax_record,
    pax_sparse,
    whiteout,
)

FEEDS = {"buffer": None, "chunks": [1000, 1, 4096], "bytes": [1]}
LAYER = "sha256:feedface"


def scan(blob: bytes, engine: str, feed: str, limits: Limits = Limits()) -> LayerResult:
    sizes = FEEDS[feed]
    data = blob if sizes is None else chunked(blob, sizes)
    return scan_layer(data, ScanOptions(limits=limits), engine=engine, name=LAYER)  # type: ignore[arg-type]


def error_of(blob: bytes, engine: str, feed: str, limits: Limits = Limits()) -> LayerError:
    with pytest.raises(LayerError) as info:
        scan(blob, engine, feed, limits)
    assert info.value.layer == LAYER
    return info.value


def assert_like_reference(blob: bytes, engine: str, feed: str) -> LayerResult:
    """The scan succeeds, and equals the reference engine given the whole buffer."""
    result = scan(blob, engine, feed)
    assert_same(result, scan(blob, "reference", "buffer"))
    return result


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


engines = pytest.mark.parametrize("engine", ENGINES)
feeds = pytest.mark.parametrize("feed", sorted(FEEDS))


# ---------------------------------------------------------------- finding 1


@engines
@feeds
@pytest.mark.parametrize("typeflag", [b"x", b"g"])
def test_pax_header_of_size_zero(engine: str, feed: str, typeflag: bytes) -> None:
    """An extended header with no records at all (the native parser once searched a NULL buffer)."""
    blob = member(b"PaxHeader/empty", b"", typeflag) + member(b"a", b"hi") + end_of_archive()
    result = assert_like_reference(blob, engine, feed)
    assert [(r.path, r.sha256) for r in result.entries] == [("/a", sha256(b"hi"))]


# ---------------------------------------------------------------- finding 2

PREFIX = member(b"first", b"x")  # so that the offsets below are not all 0
BAD_NUMBERS: dict[str, tuple[str, bytes]] = {
    "size-between-ascii-separators": ("size", b"\x1c1\x1f"),
    "size-with-a-space": ("size", b" 2"),
    "size-with-a-sign": ("size", b"+2"),
    "size-with-an-underscore": ("size", b"1_0"),
    "size-empty": ("size", b""),
    "uid-in-arabic-digits": ("uid", "١٢".encode()),
    "uid-in-fullwidth-digits": ("uid", "１２".encode()),
    "gid-negative": ("gid", b"-1"),
    "mtime-with-an-exponent": ("mtime", b"1e9"),
    "mtime-nan": ("mtime", b"nan"),
    "mtime-ending-in-a-dot": ("mtime", b"5."),
    "mtime-a-dot-first": ("mtime", b".5"),
    "atime-not-a-number": ("atime", b"yesterday"),
    "realsize-in-hex": ("GNU.sparse.realsize", b"0x10"),
}


@engines
@feeds
@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_pax_number_not_decimal_ascii(engine: str, feed: str, case: str) -> None:
    """PAX numbers are decimal ASCII digits (times: a '-' and a fraction too), nothing else:
    the engines once read '\\x1c1\\x1f' as two different sizes."""
    key, value = BAD_NUMBERS[case]
    blob = PREFIX + pax(pax_record(key, value)) + member(b"a", b"hi") + end_of_archive()
    err = error_of(blob, engine, feed)
    assert (type(err), err.offset) == (TarFormatError, len(PREFIX) + 2 * BLOCK), err  # the member it applies to
    assert key in err.reason


@engines
@feeds
def test_pax_number_in_a_global_header(engine: str, feed: str) -> None:
    """A global header's bad number is refused at the member it would apply to."""
    blob = PREFIX + pax(pax_record("uid", "٣"), b"g") + member(b"a", b"hi") + end_of_archive()
    err = error_of(blob, engine, feed)
    assert (type(err), err.offset) == (TarFormatError, len(PREFIX) + 2 * BLOCK), err


@engines
@feeds
def test_pax_numbers_that_are_decimal_ascii(engine: str, feed: str) -> None:
    records = (
        pax_record("size", "0002")
        + pax_record("uid", "4294967296")
        + pax_record("mtime", "-12.75")
        + pax_record("atime", "1700000000.123456789")
    )
    blob = pax(records) + member(b"a", b"hi") + end_of_archive()
    result = assert_like_reference(blob, engine, feed)
    rec = result.entries[0]
    assert (rec.size, rec.uid, rec.mtime, rec.sha256) == (2, 2**32, -12, sha256(b"hi"))


# ---------------------------------------------------------------- finding 3

CHUNKS = [(0, b"head" * 100), (8192, b"tail" * 200)]
REAL_SIZE = 10_000
STORED = sum(len(d) for _, d in CHUNKS)


@engines
@feeds
@pytest.mark.parametrize("fmt", ["0.1", "1.0"])
def test_pax_sparse_file(engine: str, feed: str, fmt: str) -> None:
    """A PAX sparse file is a file of its real size, without digests (its data is not its content)."""
    blob = pax_sparse("var/disk.img", CHUNKS, REAL_SIZE, fmt) + member(b"after", b"ok") + end_of_archive()  # type: ignore[arg-type]
    result = assert_like_reference(blob, engine, feed)
    disk, after = result.entries
    assert (disk.path, disk.type, disk.size, disk.sha256) == ("/var/disk.img", "file", REAL_SIZE, None)
    assert (after.path, after.sha256) == ("/after", sha256(b"ok"))
    assert result.stats.sparse == 1


@engines
@feeds
def test_old_gnu_sparse_file_with_extension_blocks(engine: str, feed: str) -> None:
    chunks = [(i * 4096, bytes([65 + i % 26]) * 100) for i in range(30)]  # 4 slots in the header, 26 in two blocks
    blob = gnu_sparse(b"var/many.img", chunks, 30 * 4096) + member(b"after", b"ok") + end_of_archive()
    result = assert_like_reference(blob, engine, feed)
    assert [(r.path, r.size, r.sha256) for r in result.entries] == [
        ("/var/many.img", 30 * 4096, None),
        ("/after", 2, sha256(b"ok")),
    ]


def records_01(numbers: str, real_size: int = REAL_SIZE, blocks: str | None = None) -> bytes:
    out = pax_record("GNU.sparse.size", str(real_size)) + pax_record("GNU.sparse.map", numbers)
    return out + (pax_record("GNU.sparse.numblocks", blocks) if blocks is not None else b"")


def map_10(*numbers: int | str) -> bytes:
    return b"".join(b"%s\n" % str(n).encode() for n in numbers)


class Broken(NamedTuple):
    blob: bytes
    error: type[LayerError]
    offset: int
    limits: Limits = Limits()


def broken_01(numbers: str, **kw: object) -> bytes:
    return pax_sparse("x", CHUNKS, REAL_SIZE, "0.1", records=records_01(numbers, **kw)) + end_of_archive()  # type: ignore[arg-type]


def broken_10(map_text: bytes, chunks: list[tuple[int, bytes]] = CHUNKS) -> bytes:
    return pax_sparse("x", chunks, REAL_SIZE, "1.0", map_text=map_text) + end_of_archive()


TRUNCATED_10 = pax_sparse("x", CHUNKS, REAL_SIZE, "1.0", map_text=map_10(60, *range(120)))[: 3 * BLOCK + 100]
BROKEN_MAPS: dict[str, Broken] = {
    "0.1-not-a-number": Broken(broken_01("0,a"), TarFormatError, 0),
    "0.1-signed": Broken(broken_01("+0,400,8192,800"), TarFormatError, 0),
    "0.1-empty": Broken(broken_01(""), TarFormatError, 0),
    "0.1-odd-count": Broken(broken_01("0,400,8192"), TarFormatError, 0),
    "0.1-past-int64": Broken(broken_01("0,400,99999999999999999999,1"), TarFormatError, 0),
    "0.1-numblocks-disagrees": Broken(broken_01("0,400,8192,800", blocks="3"), TarFormatError, 0),
    "0.1-out-of-order": Broken(broken_01("8192,800,0,400"), TarFormatError, 0),
    "0.1-overlapping": Broken(broken_01("0,400,399,800"), TarFormatError, 0),
    "0.1-past-the-real-size": Broken(broken_01("0,400,9500,800"), TarFormatError, 0),
    "0.1-more-data-than-stored": Broken(broken_01(f"0,400,8192,{STORED}"), TarFormatError, 0),
    "1.0-count-not-a-number": Broken(broken_10(b"two\n0\n400\n8192\n800\n"), TarFormatError, 0),
    "1.0-number-with-a-space": Broken(broken_10(map_10(2, 0, "400 ", 8192, 800)), TarFormatError, 0),
    "1.0-out-of-order": Broken(broken_10(map_10(2, 8192, 800, 0, 400)), TarFormatError, 0),
    "1.0-past-the-real-size": Broken(broken_10(map_10(2, 0, 400, 9500, 800)), TarFormatError, 0),
    "1.0-more-data-than-stored": Broken(broken_10(map_10(2, 0, 400, 8192, STORED)), TarFormatError, 0),
    "1.0-runs-past-the-data": Broken(broken_10(map_10(1000, 0, 400)), TarFormatError, 0),
    "1.0-larger-than-the-limit": Broken(
        broken_10(map_10(200, *range(0, 4000, 10)), [(i * 10, b"z") for i in range(200)]),
        LimitExceeded,
        0,
        Limits(max_ext_header_bytes=1024),
    ),
    "1.0-truncated-inside-the-map": Broken(TRUNCATED_10, TarFormatError, len(TRUNCATED_10)),
    "1.0-on-a-directory": Broken(
        pax(pax_record("GNU.sparse.major", "1") + pax_record("GNU.sparse.minor", "0"))
        + header(b"d/", b"5")
        + end_of_archive(),
        TarFormatError,
        0,
    ),
    "keys-in-a-global-header": Broken(
        pax(records_01("0,2"), b"g") + member(b"a", b"hi") + end_of_archive(), TarFormatError, 0
    ),
    "two-maps-for-one-member": Broken(
        pax(records_01("0,400,8192,800")) + gnu_sparse(b"s", CHUNKS, REAL_SIZE) + end_of_archive(), TarFormatError, 0
    ),
    "old-gnu-out-of-order": Broken(
        gnu_sparse(b"s", list(reversed(CHUNKS)), REAL_SIZE) + end_of_archive(), TarFormatError, 0
    ),
    "old-gnu-past-the-real-size": Broken(gnu_sparse(b"s", CHUNKS, 8192) + end_of_archive(), TarFormatError, 0),
}


@engines
@feeds
@pytest.mark.parametrize("case", sorted(BROKEN_MAPS))
def test_broken_sparse_map(engine: str, feed: str, case: str) -> None:
    """A sparse map is parsed and checked (the native engine once took any as a sparse file)."""
    c = BROKEN_MAPS[case]
    err = error_of(c.blob, engine, feed, c.limits)
    assert (type(err), err.offset) == (c.error, c.offset), err


# ---------------------------------------------------------------- finding 5

OLD_GNU_MANY = gnu_sparse(b"s", [(i * 4096, b"y" * 10) for i in range(10)], 10 * 4096) + end_of_archive()


@engines
@feeds
@pytest.mark.parametrize("cut", [BLOCK, BLOCK + 100], ids=["at-the-block", "inside-the-block"])
def test_old_gnu_sparse_truncated_before_its_extension_block(engine: str, feed: str, cut: int) -> None:
    """isextended=1 and the stream ends (the reference once raised IndexError)."""
    err = error_of(OLD_GNU_MANY[:cut], engine, feed)
    assert (type(err), err.offset) == (TarFormatError, cut), err


@engines
@feeds
def test_old_gnu_sparse_extension_block_not_a_number(engine: str, feed: str) -> None:
    blob = bytearray(OLD_GNU_MANY)
    blob[BLOCK + 24 : BLOCK + 36] = b"12x45\0".ljust(12, b"\0")  # a slot of the extension block
    err = error_of(bytes(blob), engine, feed)
    assert (type(err), err.offset) == (TarFormatError, BLOCK), err


# ---------------------------------------------------------------- finding 6


@pytest.mark.timeout(60)  # tarfile alone would seek through the 2 EiB for ever
@engines
@feeds
def test_member_claiming_more_than_the_stream_holds(engine: str, feed: str) -> None:
    """A 1.5 KB layer whose whiteout claims 2**61 bytes ends at once as truncated."""
    blob = build([Entry("a", data=b"hi")], end=False) + header(
        b"etc/.wh.motd", size=b"\x80" + (2**61).to_bytes(11, "big")
    )
    err = error_of(blob, engine, feed, Limits(max_total_bytes=2**62))
    assert (type(err), err.offset) == (TarFormatError, len(blob)), err


# ---------------------------------------------------------------- finding 7

TAR = build([Entry(f"srv/f{i:02}", data=bytes(range(256)) * (i + 40)) for i in range(24)])


@engines
@feeds
@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_limit_reported_at_the_limit(engine: str, feed: str, compression: str) -> None:
    """Bytes up to max_total_bytes are parsed, and a stream that goes on past it (here inside
    a header) is refused with the limit itself as the offset, whatever the reads were."""
    limit = member_offsets(TAR)[8] + 100
    err = error_of(compress(TAR, compression, members=2), engine, feed, Limits(max_total_bytes=limit))  # type: ignore[arg-type]
    assert (type(err), err.offset) == (LimitExceeded, limit), err


@engines
@feeds
def test_gzip_crc_error_after_the_member_is_parsed(engine: str, feed: str) -> None:
    """A bad CRC is found at the end of its member, after all of the member's data was parsed."""
    first = compress(TAR[: len(TAR) // 2], "gzip")
    bad = first[:-8] + bytes([first[-8] ^ 0xFF]) + first[-7:] + compress(TAR[len(TAR) // 2 :], "gzip")
    err = error_of(bad, engine, feed)
    assert err.offset == len(TAR) // 2, err


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[bytes, Limits]:
    blob = bytearray(compress(TAR, draw(st.sampled_from(["gzip", "zstd"])), members=draw(st.integers(1, 3))))
    for _ in range(draw(st.integers(0, 3))):
        blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del blob[draw(st.integers(0, len(blob))) :]
    limit = draw(st.sampled_from([64 << 30, len(TAR), len(TAR) // 2, draw(st.integers(1, len(TAR)))]))
    return bytes(blob), Limits(max_total_bytes=limit)


def outcome(blob: bytes, engine: str, sizes: list[int] | None, limits: Limits) -> object:
    try:
        result = scan_layer(blob if sizes is None else chunked(blob, sizes), ScanOptions(limits=limits), engine=engine)
    except LayerError as e:
        return type(e), e.offset
    return [r.sha256 for r in result.entries]


@engines
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=corrupted(), sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=4))
def test_outcome_does_not_depend_on_feeding(engine: str, case: tuple[bytes, Limits], sizes: list[int]) -> None:
    blob, limits = case
    assert outcome(blob, engine, sizes, limits) == outcome(blob, engine, None, limits)


# ---------------------------------------------------------------- finding 8

OUTSIDE = [
    Entry("../etc/passwd", data=b"root"),
    Entry("a/../../etc/shadow", data=b"x"),
    Entry("/abs/file", data=b"y"),
    Entry("ok", data=b"fine"),
    Entry("link", "hardlink", link="../../abs/file"),
    Entry("abslink", "hardlink", link="/ok"),
    whiteout("../../gone"),
    Entry("sym", "symlink", link="../../../etc/passwd"),  # a symlink's target is kept as stored
    Entry("a/../b/./c", data=b"inside"),  # '..' that stays inside the root is no warning
]


@engines
@feeds
def test_names_outside_the_root_are_read_inside_it(engine: str, feed: str) -> None:
    """Such names are read as containerd does (cleaned, '..' stopping at the root), each with a
    warning: one bad name must not hide a whole layer (it once refused the layer)."""
    result = assert_like_reference(build(OUTSIDE), engine, feed)
    assert [(r.path, r.link, r.sha256) for r in result.entries] == [
        ("/etc/passwd", None, sha256(b"root")),
        ("/etc/shadow", None, sha256(b"x")),
        ("/abs/file", None, sha256(b"y")),
        ("/ok", None, sha256(b"fine")),
        ("/link", "/abs/file", None),
        ("/abslink", "/ok", None),
        ("/sym", "../../../etc/passwd", None),
        ("/b/c", None, sha256(b"inside")),
    ]
    assert result.whiteouts == [Whiteout("/gone", False)]
    assert result.warnings == [
        "entry '../etc/passwd' escapes the root with '..': read as '/etc/passwd', inside the root",
        "entry 'a/../../etc/shadow' escapes the root with '..': read as '/etc/shadow', inside the root",
        "entry '/abs/file' is absolute: read as '/abs/file', inside the root",
        "hardlink '/link': target '../../abs/file' escapes the root with '..': read as '/abs/file', inside the root",
        "hardlink '/abslink': target '/ok' is absolute: read as '/ok', inside the root",
        "entry '../../.wh.gone' escapes the root with '..': read as '/.wh.gone', inside the root",
    ]


@engines
def test_warnings_about_names_are_bounded(engine: str) -> None:
    """A layer of absolute names gets one warning for each of the first MAX_PATH_WARNINGS, then a count."""
    n = MAX_PATH_WARNINGS + 50
    result = assert_like_reference(build([Entry(f"/f{i}", data=b"") for i in range(n)]), engine, "buffer")
    assert len(result.entries) == n
    assert (
        result.warnings[-2]
        == f"entry '/f{MAX_PATH_WARNINGS - 1}' is absolute: read as '/f{MAX_PATH_WARNINGS - 1}', inside the root"
    )
    assert result.warnings[-1] == "50 more entry names or hardlink targets outside the root, read inside it"
    assert len(result.warnings) == MAX_PATH_WARNINGS + 1
