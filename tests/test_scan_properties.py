"""Property tests of the scan on generated layers.

Hypothesis writes layers with tests/tarbuilder.py (random long and unicode names,
every entry type, PAX and GNU formats, base-256 and PAX numbers, fractional
mtimes, xattrs, whiteouts, a GNU sparse member, file sizes around the 512-byte
block and the 64 KiB window, planted secrets, executables with planted scan markers),
compresses them (gzip with one or
several members, zstd, none) and feeds them in random chunk sizes. Each engine
must agree with an expectation computed here from the generated records, which
tests the oracle itself; and native must equal reference in every column.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscan._scan import OUTSIDE_ABSOLUTE, OUTSIDE_LINK
from layerscan.scan import scan_layer
from layerscan.scan.allow import Docstrings, allowed_by
from layerscan.scan.model import (
    EntryTable,
    FileRecord,
    LayerResult,
    Mark,
    Marker,
    ScanOptions,
    ScanStats,
    SecretHit,
    Whiteout,
    outside_root_warnings,
)
from layerscan.scan.rules import builtin_rules, mask, split_lines
from scancheck import ENGINES, assert_same, columns
from tarbuilder import (
    Entry,
    build,
    chunked,
    compress,
    digests,
    end_of_archive,
    gnu_sparse,
    member_offsets,
    opaque,
    whiteout,
)

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# Fake secrets, each with the builtin rule that must find it.
SECRETS: dict[bytes, str] = {
    b"AKIAZ4QW7R2M9XK3T6BV": "aws-access-key-id",
    b"ghp_R7kLm2Qx9Tz4Vb8Nc1Hd6Fs3Gy5Ua0Ei7KoP": "github-pat",
    b"-----BEGIN RSA PRIVATE KEY-----": "private-key",
    b"glpat-Xy7Qm2Lk9Pz4Rt8Vw1Nb": "gitlab-token",
}
# Filler text no builtin rule can match: lowercase letters, spaces and newlines.
FILLER = "abcdefghijklmnopqrstuvwxyz   \n"
CAPTURE_GLOB = "**/*.json"  # captures exactly the paths ending in ".json"
CAPTURE_MAX = 2000
WINDOW = 1 << 16
RULES = tuple(builtin_rules())
# A marker longer than a tar block's tail, and one that overlaps itself ("zzz" holds "zz" twice).
MARKERS = (Marker(b"\xff Go buildinf:", 100), Marker(b"zz", 5))
EXECUTABLE_HEADS = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
OTHER_MACH_O = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")  # executables too, not generated
MAX_HITS = 4  # marks per marker per file (tar.h LS_MARK_MAX_HITS)

component = st.text(st.sampled_from("abcXYZ019_-+.@ éü日本🙂"), min_size=1, max_size=12).filter(
    lambda c: c not in (".", "..") and not c.startswith(".wh.")
)
long_component = st.text(st.sampled_from("abcdefghijklmnop日"), min_size=90, max_size=160)
components = st.lists(st.one_of(component, component, long_component), min_size=1, max_size=5)
suffix = st.sampled_from(["", "", ".json", ".txt"])
small_sizes = st.sampled_from([0, 1, 100, 511, 512, 513, 1023, 1024, 1025, 1536])
big_sizes = st.sampled_from([WINDOW - 1, WINDOW, WINDOW + 1, 2 * WINDOW + 7])


def verdict(data: bytes, path: str, rule: str, line: int) -> str:
    """What the allow rules (tested on their own in test_secret_allow.py) say of a planted secret,
    from its line and the next: the engines must hand them that context (a header alone is no key)."""
    lines = [*split_lines(data), b""]
    m = next(r for r in RULES if r.id == rule).matches(lines[line - 1])
    assert m is not None
    offset = sum(map(len, lines[: line - 1])) + m.start()
    return allowed_by(rule, path, lines[line - 1], m.group(0), lines[line], offset, Docstrings(data))


@dataclasses.dataclass(frozen=True)
class Planted:
    """A file's content and the 1-based lines of the secrets planted in it."""

    data: bytes
    hits: tuple[tuple[str, int], ...]  # (rule id, line)


@st.composite
def executable(draw: st.DrawFn) -> Planted:
    """An executable's head (or one byte short of one) and NULs, markers planted around
    blocks, windows and the end; binary, so never searched for secrets."""
    size = draw(st.one_of(small_sizes, big_sizes))
    data = bytearray(size)
    head = draw(st.sampled_from(EXECUTABLE_HEADS))
    head = head[: draw(st.sampled_from([len(head), len(head), 3]))]  # "\x7fEL" is not an executable
    data[: len(head)] = head[:size]
    for _ in range(draw(st.integers(0, 7))):
        marker = draw(st.sampled_from([m.literal for m in MARKERS] + [b"zzz"]))
        anchor = draw(st.sampled_from([512, 1024, WINDOW, size, draw(st.integers(0, max(size, 1)))]))
        pos = max(4, min(size - len(marker), anchor - draw(st.integers(0, len(marker)))))
        if pos >= 4:
            data[pos : pos + len(marker)] = marker
    return Planted(bytes(data), ())


@st.composite
def contents(draw: st.DrawFn) -> Planted:
    size = draw(st.one_of(small_sizes, small_sizes, small_sizes, big_sizes))
    if draw(st.integers(0, 5)) == 0:
        return draw(executable())
    if draw(st.integers(0, 4)) == 0:  # binary: a NUL up front, so never searched
        return Planted(b"\0" + draw(st.binary(min_size=size, max_size=size))[1:] if size else b"", ())
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    text = bytearray("".join(rng.choices(FILLER, k=size)), "ascii")
    secret = draw(st.sampled_from(sorted(SECRETS)))
    planted = b" " + secret + b"\n"
    if len(planted) > size or draw(st.booleans()):
        return Planted(bytes(text), ())
    # Around a block, a window, or anywhere.
    anchor = draw(st.sampled_from([512, 1024, WINDOW, 2 * WINDOW, draw(st.integers(0, size))]))
    pos = max(0, min(size - len(planted), anchor - draw(st.integers(0, len(planted)))))
    text[pos : pos + len(planted)] = planted
    line = text.count(b"\n", 0, pos + 1) + 1
    return Planted(bytes(text), ((SECRETS[secret], line),))


@dataclasses.dataclass(frozen=True)
class Layer:
    entries: tuple[Entry, ...]
    planted: dict[int, Planted]  # index in entries -> what was planted in that file
    fmt: str
    sparse: bool  # a GNU sparse member follows the entries


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    fmt = draw(st.sampled_from(["pax", "gnu"]))
    entries: list[Entry] = []
    planted: dict[int, Planted] = {}
    stored: list[str] = []  # names of earlier entries, for hardlinks
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(
            st.sampled_from(
                ["file", "file", "file", "dir", "symlink", "hardlink", "char", "block", "fifo", "whiteout", "opaque"]
            )
        )
        parts = draw(components)
        name = "/".join(parts) + draw(suffix)
        if kind == "whiteout":
            entries.append(whiteout(name))
            continue
        if kind == "opaque":
            entries.append(opaque(name))
            continue
        if kind == "hardlink" and not stored:
            kind = "symlink"
        stored_name = draw(st.sampled_from(["", "./", "/"])) + name
        fields = dict(
            mode=draw(st.integers(0, 0o7777)),
            uid=draw(st.one_of(st.integers(0, 70000), st.integers(0, 2**40))),
            gid=draw(st.one_of(st.integers(0, 70000), st.integers(0, 2**40))),
            uname=draw(st.text(st.sampled_from("rootappé日"), max_size=8)),
            gname=draw(st.text(st.sampled_from("wheelstaffü"), max_size=8)),
            mtime=draw(mtimes(fmt)),
        )
        if fmt == "pax":
            fields["xattrs"] = draw(
                st.dictionaries(
                    st.sampled_from(["user.a", "security.capability", "user.日本"]), st.text(max_size=10), max_size=2
                )
            )
        if kind == "file":
            p = draw(contents())
            planted[len(entries)] = p
            entries.append(Entry(stored_name, "file", p.data, **fields))  # type: ignore[arg-type]
        elif kind == "symlink":
            entries.append(
                Entry(
                    stored_name,
                    "symlink",
                    link=draw(st.sampled_from(["", "/", "../"])) + "/".join(draw(components)),
                    **fields,
                )
            )  # type: ignore[arg-type]
        elif kind == "hardlink":
            entries.append(Entry(stored_name, "hardlink", link=draw(st.sampled_from(stored)), **fields))  # type: ignore[arg-type]
        elif kind in ("char", "block"):
            entries.append(
                Entry(
                    stored_name, kind, devmajor=draw(st.integers(0, 255)), devminor=draw(st.integers(0, 255)), **fields
                )
            )  # type: ignore[arg-type]
        else:
            entries.append(Entry(stored_name, kind, **fields))  # type: ignore[arg-type]
        stored.append(stored_name)
    return Layer(tuple(entries), planted, fmt, draw(st.booleans()))


def mtimes(fmt: str) -> st.SearchStrategy[float]:
    """GNU: integers incl. negative and base-256 ones; PAX: also fractions (eighths, so that str() is exact)."""
    ints = st.one_of(st.integers(0, 8**11 - 1), st.integers(-(2**40), 2**40))
    if fmt == "gnu":
        return ints
    return st.one_of(ints, st.builds(lambda n, k: n + k / 8, st.integers(-(10**9), 4 * 10**9), st.integers(1, 7)))


SPARSE_CHUNKS = ((0, b"head" * 100), (8192, b"tail" * 200))
SPARSE_SIZE = 10_000


def tar_of(layer: Layer) -> bytes:
    if not layer.sparse:
        return build(layer.entries, layer.fmt)  # type: ignore[arg-type]
    return (
        build(layer.entries, layer.fmt, end=False)
        + gnu_sparse(b"var/sparse.img", SPARSE_CHUNKS, SPARSE_SIZE)
        + end_of_archive()
    )  # type: ignore[arg-type]


def normalized(name: str) -> str:
    return "/" + "/".join(p for p in name.split("/") if p not in ("", "."))


def expected(layer: Layer, tar: bytes, blob: bytes, options: ScanOptions) -> dict:
    """What a scan of `layer` must report, derived from the generated records alone."""
    table = EntryTable()
    whiteouts: list[Whiteout] = []
    secrets: list[SecretHit] = []
    captured: dict[str, bytes] = {}
    too_big: list[str] = []
    marks: dict[str, tuple[Mark, ...]] = {}
    outside: list[tuple[int, str, str, str | None]] = []  # names here are absolute at worst, never '..'
    count = 0
    for i, e in enumerate(layer.entries):
        count += 1
        path = normalized(e.path)
        if e.path.startswith("/"):
            outside.append((OUTSIDE_ABSOLUTE, e.path, path, None))
        base = path.rsplit("/", 1)[1]
        if base == ".wh..wh..opq":
            whiteouts.append(Whiteout(path.rsplit("/", 1)[0] or "/", True))
            continue
        if base.startswith(".wh."):
            whiteouts.append(Whiteout(path[: -len(base)] + base[4:], False))
            continue
        marks.pop(path, None)  # a path's marks are its last entry's
        link = {"symlink": e.link, "hardlink": normalized(e.link)}.get(e.type)
        if e.type == "hardlink" and e.link.startswith("/"):
            outside.append((OUTSIDE_ABSOLUTE | OUTSIDE_LINK, e.link, normalized(e.link), path))
        size = len(e.data) if e.type == "file" else 0
        rec = FileRecord(
            path,
            e.type,
            e.mode,
            e.uid,
            e.gid,
            e.uname,
            e.gname,
            size,
            int(e.mtime),
            link,
            None,
            None,
            None,
            tuple(sorted(e.xattrs)),
        )
        table.append(rec, digests(e.data) if e.type == "file" else None)
        if e.type != "file":
            continue
        if found := marks_of(e.data, options.markers):
            marks[path] = found
        if path.endswith(".json"):
            if size <= options.capture_max_bytes:
                captured[path] = e.data
            else:
                too_big.append(path)
        if size <= options.secret_max_file_size:
            secrets += [
                SecretHit(
                    rule,
                    path,
                    line,
                    mask(next(s for s, r in SECRETS.items() if r == rule)),
                    verdict(e.data, path, rule, line),
                )
                for rule, line in layer.planted[i].hits
            ]
    if layer.sparse:
        count += 1
        marks.pop("/var/sparse.img", None)
        table.append(
            FileRecord(
                "/var/sparse.img", "file", 0o644, 0, 0, "", "", SPARSE_SIZE, 1_700_000_000, None, None, None, None
            ),
            None,
        )
    return {
        "entries": columns(table),
        "whiteouts": whiteouts,
        "secrets": secrets,
        "captured": captured,
        "too_big_to_capture": too_big,
        "stats": ScanStats(len(blob), len(tar), count, 0.0, int(layer.sparse)),
        "diff_id": "sha256:" + hashlib.sha256(tar).hexdigest(),
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "warnings": outside_root_warnings(outside),
        "marks": marks,
    }


def marks_of(data: bytes, markers: Sequence[Marker]) -> tuple[Mark, ...]:
    """Each marker's first MAX_HITS occurrences, overlapping ones too, in an executable."""
    if len(data) < 4 or not data.startswith(EXECUTABLE_HEADS + OTHER_MACH_O):
        return ()
    found = []
    for i, (literal, window) in enumerate(markers):
        at = [m.start() for m in re.finditer(b"(?=" + re.escape(literal) + b")", data)][:MAX_HITS]
        found += [Mark(i, a, data[a : a + window]) for a in at]
    return tuple(sorted(found))


def scan(
    blob: bytes, options: ScanOptions, engine: str, chunk_sizes: Sequence[int] | None, threads: int | None = None
) -> LayerResult:
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    data = blob if chunk_sizes is None else chunked(blob, chunk_sizes)
    return scan_layer(data, options, engine=engine, name="generated", expected_digest=digest, threads=threads)


compressions = st.sampled_from(["none", "gzip", "zstd"])
chunkings = st.one_of(st.none(), st.lists(st.integers(1, 70_000), min_size=1, max_size=6))
optionses = st.builds(
    lambda max_secret: ScanOptions(
        rules=RULES,
        secret_max_file_size=max_secret,
        capture_globs=(CAPTURE_GLOB,),
        capture_max_bytes=CAPTURE_MAX,
        compute_diff_id=True,
        markers=MARKERS,
    ),
    st.sampled_from([10_000_000, 1024]),
)


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(layer=layers(), compression=compressions, members=st.integers(1, 3), chunk_sizes=chunkings, options=optionses)
def test_engine_matches_generated_records(
    engine: str, layer: Layer, compression: str, members: int, chunk_sizes: list[int] | None, options: ScanOptions
) -> None:
    tar = tar_of(layer)
    blob = compress(tar, compression, members=members)  # type: ignore[arg-type]
    got = scan(blob, options, engine, chunk_sizes)
    want = expected(layer, tar, blob, options)
    actual = dict(got.__dict__, stats=got.stats._replace(seconds=0.0), entries=columns(got.entries))
    for key, value in want.items():
        assert actual[key] == value, f"{engine}: {key} differs from the generated records"


@SETTINGS
@given(layer=layers(), compression=compressions, members=st.integers(1, 3), chunk_sizes=chunkings, options=optionses)
def test_native_equals_reference(
    layer: Layer, compression: str, members: int, chunk_sizes: list[int] | None, options: ScanOptions
) -> None:
    blob = compress(tar_of(layer), compression, members=members)  # type: ignore[arg-type]
    assert_same(scan(blob, options, "native", chunk_sizes), scan(blob, options, "reference", None))


@SETTINGS
@given(layer=layers(), compression=compressions, members=st.integers(1, 3), chunk_sizes=chunkings, options=optionses)
def test_native_same_on_1_2_and_4_threads(
    layer: Layer, compression: str, members: int, chunk_sizes: list[int] | None, options: ScanOptions
) -> None:
    """Hashing on the pool's threads (tests/test_scan_threads.py) changes nothing in the result."""
    blob = compress(tar_of(layer), compression, members=members)  # type: ignore[arg-type]
    one = scan(blob, options, "native", chunk_sizes, threads=1)
    for threads in (2, 4):
        assert_same(scan(blob, options, "native", chunk_sizes, threads=threads), one)


@pytest.mark.parametrize("engine", ENGINES)
@settings(SETTINGS, max_examples=50)
@given(
    secret=st.sampled_from(sorted(SECRETS)),
    split=st.integers(1, 60),
    chunk=st.integers(1, 4096),
    lead=st.integers(0, 1500),
    compression=compressions,
)
def test_secret_straddling_chunks(
    engine: str, secret: bytes, split: int, chunk: int, lead: int, compression: str
) -> None:
    """A secret cut by an input chunk boundary (and, uncompressed, exactly at byte `split` of it) is still found once."""
    split = min(split, len(secret) - 1)
    probe = build([Entry("app/.env", data=b"x")])
    data_at = member_offsets(probe)[0] + 512
    # Put the secret so that a chunk boundary of the uncompressed input falls `split` bytes into it.
    start = lead + (-(data_at + lead + split) % chunk)
    text = b"a" * (start - 1) + b"\n" + secret + b"\n" if start else secret + b"\n"
    layer = build([Entry("app/.env", data=text)])
    assert (data_at + text.index(secret) + split) % chunk == 0
    blob = compress(layer, compression)  # type: ignore[arg-type]
    result = scan_layer(chunked(blob, [chunk]), ScanOptions(rules=RULES), engine=engine, name="straddle")
    assert [(s.rule, s.path, s.line) for s in result.secrets] == [(SECRETS[secret], "/app/.env", 2 if start else 1)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("power", [15, 16, 17, 18, 20])
def test_secret_straddling_inflate_windows(engine: str, power: int) -> None:
    """In a 1.5 MiB gzip file, a secret across each power-of-two offset of the tar stream is found."""
    secret = b"ghp_R7kLm2Qx9Tz4Vb8Nc1Hd6Fs3Gy5Ua0Ei7KoP"
    line = (b"lorem ipsum dolor sit amet " * 150)[:4000] + b"\n"
    body = bytearray(line * 400)
    at = (1 << power) - 512 - 20  # the file's data starts after one 512-byte header
    body[at - 1 : at + len(secret) + 1] = b"\n" + secret + b"\n"
    tar = build([Entry("srv/big.txt", data=bytes(body))])
    assert member_offsets(tar) == [0] and tar.index(secret) == (1 << power) - 20
    result = scan_layer(compress(tar, "gzip"), ScanOptions(rules=RULES), engine=engine)
    assert [(s.rule, s.line) for s in result.secrets] == [("github-pat", body.count(b"\n", 0, at) + 1)]
    assert result.entries[0].sha256 == hashlib.sha256(body).hexdigest()
