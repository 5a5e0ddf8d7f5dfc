"""Tar streams written from Python data, for the scanner's tests.

`build()` writes well-formed layers with `tarfile` (every entry type, PAX and GNU
formats, long names and links, base-256 numbers, PAX uid/gid/uname/gname/mtime
with fractions, SCHILY.xattr.*, whiteouts). Raw helpers write what tarfile will
not: GNU sparse headers, headers with arbitrary field bytes, PAX records with lying
lengths, and in-place edits of a built stream (`patch_header`) for bad input.
`compress()` wraps a stream in gzip (one or several members), zstd or nothing.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import pyzstd

BLOCK = 512
Format = Literal["pax", "gnu", "ustar"]
Compression = Literal["gzip", "zstd", "none"]

FORMATS: dict[str, int] = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}
TYPEFLAGS: dict[str, bytes] = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}

# (offset, length) of the ustar header fields.
FIELDS: dict[str, tuple[int, int]] = {
    "name": (0, 100),
    "mode": (100, 8),
    "uid": (108, 8),
    "gid": (116, 8),
    "size": (124, 12),
    "mtime": (136, 12),
    "chksum": (148, 8),
    "typeflag": (156, 1),
    "linkname": (157, 100),
    "magic": (257, 6),
    "version": (263, 2),
    "uname": (265, 32),
    "gname": (297, 32),
    "devmajor": (329, 8),
    "devminor": (337, 8),
    "prefix": (345, 155),
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One tar member. `path` is the name as stored (may be relative, './x', 'x/')."""

    path: str
    type: str = "file"  # a key of TYPEFLAGS
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    mtime: float = 1_700_000_000
    link: str = ""
    xattrs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    devmajor: int = 0
    devminor: int = 0

    def tarinfo(self) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(self.path)
        ti.type = TYPEFLAGS[self.type]
        ti.size = len(self.data) if self.type == "file" else 0
        ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = self.mode, self.uid, self.gid, self.uname, self.gname
        ti.mtime = self.mtime
        ti.linkname = self.link
        ti.devmajor, ti.devminor = self.devmajor, self.devminor
        ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in self.xattrs.items()}
        return ti


def whiteout(path: str) -> Entry:
    """The marker that deletes `path` ("etc/motd" -> "etc/.wh.motd")."""
    head, _, base = path.rstrip("/").rpartition("/")
    return Entry(f"{head}/.wh.{base}" if head else f".wh.{base}", mode=0o600)


def opaque(directory: str) -> Entry:
    """The marker that hides everything below `directory` in lower layers."""
    return Entry(f"{directory.rstrip('/')}/.wh..wh..opq", mode=0o600)


def build(entries: Sequence[Entry], fmt: Format = "pax", *, end: bool = True) -> bytes:
    """A tar stream of `entries`; `end=False` leaves out the two zero blocks (and padding)."""
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode="w", format=FORMATS[fmt], encoding="utf-8", errors="surrogateescape")
    for e in entries:
        tf.addfile(e.tarinfo(), io.BytesIO(e.data) if e.type == "file" else None)
    if end:
        tf.close()
    return buf.getvalue()


def headers(tar: bytes) -> Iterator[int]:
    """Offsets of every header block of a well-formed stream (extended headers included)."""
    off = 0
    while off + BLOCK <= len(tar) and tar[off : off + BLOCK].strip(b"\0"):
        size = number(tar[off + 124 : off + 136])
        yield off
        off += BLOCK + -(-size // BLOCK) * BLOCK


def member_offsets(tar: bytes) -> list[int]:
    """Offsets of the headers that carry an entry (not PAX 'x'/'g' nor GNU 'L'/'K')."""
    return [o for o in headers(tar) if tar[o + 156 : o + 157] not in (b"x", b"g", b"L", b"K")]


def number(field: bytes) -> int:
    """A tar number field: octal, or GNU base-256 when the top bit is set."""
    if field[0] & 0x80:
        n = int.from_bytes(field, "big") & ~(0x80 << (8 * (len(field) - 1)))
        return n - (1 << (8 * len(field) - 1)) if field[0] & 0x40 else n
    digits = field.replace(b"\0", b" ").strip()
    return int(digits, 8) if digits else 0


def base256(n: int, width: int) -> bytes:
    """GNU base-256: top bit set, two's complement for negative numbers."""
    return (n % (1 << (8 * width)) | (0x80 << (8 * (width - 1)))).to_bytes(width, "big")


def octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def checksum(header: bytes) -> bytes:
    return b"%06o\0 " % (sum(header[:148]) + 8 * 32 + sum(header[156:BLOCK]))


def header(
    name: bytes,
    typeflag: bytes = b"0",
    size: int | bytes = 0,
    *,
    fields: Mapping[str, bytes] = {},
    good_checksum: bool = True,
) -> bytes:
    """One ustar header block. `size` may be raw field bytes; `fields` overrides any field raw."""
    raw = bytearray(BLOCK)
    values: dict[str, bytes] = {
        "name": name,
        "mode": octal(0o644, 8),
        "uid": octal(0, 8),
        "gid": octal(0, 8),
        "size": size if isinstance(size, bytes) else octal(size, 12),
        "mtime": octal(1_700_000_000, 12),
        "typeflag": typeflag,
        "magic": b"ustar\0",
        "version": b"00",
        **fields,
    }
    for field, value in values.items():
        off, length = FIELDS[field]
        assert len(value) <= length, f"{field} value longer than {length} bytes"
        raw[off : off + len(value)] = value
    raw[148:156] = checksum(bytes(raw)) if good_checksum else b"000000\0 "
    return bytes(raw)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def member(name: bytes, data: bytes = b"", typeflag: bytes = b"0", **kw: object) -> bytes:
    """A raw member: header plus padded data."""
    return header(name, typeflag, len(data), **kw) + padded(data)  # type: ignore[arg-type]


def pax_record(key: str, value: bytes | str, length: int | None = None) -> bytes:
    """'<len> key=value\\n' with the true length, or with `length` as given (a lie)."""
    body = b" " + key.encode() + b"=" + (value.encode() if isinstance(value, str) else value) + b"\n"
    if length is None:
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
    return str(length).encode() + body


def pax(records: bytes, typeflag: bytes = b"x") -> bytes:
    """A PAX extended header member holding `records` (raw, so they may lie)."""
    return member(b"PaxHeader/x", records, typeflag)


def gnu_sparse(name: bytes, chunks: Sequence[tuple[int, bytes]], real_size: int) -> bytes:
    """An old-GNU sparse member ('S'): data chunks at their offsets in a file of real_size bytes;
    four slots in the header, 21 in each extension block after it."""
    data = b"".join(d for _, d in chunks)
    raw = bytearray(header(name, b"S", len(data), fields={"magic": b"ustar ", "version": b" \0"}))
    slots = [octal(off, 12) + octal(len(d), 12) for off, d in chunks]
    raw[386 : 386 + 24 * min(4, len(slots))] = b"".join(slots[:4])
    raw[482] = len(slots) > 4  # extension blocks follow
    raw[483:495] = octal(real_size, 12)
    raw[148:156] = checksum(bytes(raw))
    extensions = b""
    for i in range(4, len(slots), 21):
        block = bytearray(b"".join(slots[i : i + 21]).ljust(BLOCK, b"\0"))
        block[504] = i + 21 < len(slots)
        extensions += block
    return bytes(raw) + extensions + padded(data)


def pax_sparse(
    name: str,
    chunks: Sequence[tuple[int, bytes]],
    real_size: int,
    fmt: Literal["0.1", "1.0"],
    *,
    records: bytes | None = None,
    map_text: bytes | None = None,
) -> bytes:
    """A GNU sparse file in PAX format 0.1 (the map in GNU.sparse.map) or 1.0 (the map at
    the start of the data); `records` and `map_text` replace the true ones (to lie)."""
    data = b"".join(d for _, d in chunks)
    numbers = [n for off, d in chunks for n in (off, len(d))]
    if fmt == "0.1":
        true_records = (
            pax_record("GNU.sparse.size", str(real_size))
            + pax_record("GNU.sparse.numblocks", str(len(chunks)))
            + pax_record("GNU.sparse.map", ",".join(map(str, numbers)))
            + pax_record("GNU.sparse.name", name)
        )
    else:
        true_records = (
            pax_record("GNU.sparse.major", "1")
            + pax_record("GNU.sparse.minor", "0")
            + pax_record("GNU.sparse.name", name)
            + pax_record("GNU.sparse.realsize", str(real_size))
        )
        if map_text is None:
            map_text = b"".join(b"%d\n" % n for n in (len(chunks), *numbers))
        data = padded(map_text) + data
    return pax(true_records if records is None else records) + member(b"GNUSparseFile.0/x", data)


def end_of_archive() -> bytes:
    return bytes(2 * BLOCK)


def patch_header(tar: bytes, offset: int, fields: Mapping[str, bytes], *, fix_checksum: bool = True) -> bytes:
    """A copy of `tar` with the header at `offset` edited raw; its checksum recomputed unless told not to."""
    out = bytearray(tar)
    for field, value in fields.items():
        off, length = FIELDS[field]
        assert len(value) <= length
        out[offset + off : offset + off + length] = value.ljust(length, b"\0")
    if fix_checksum:
        out[offset + 148 : offset + 156] = checksum(bytes(out[offset : offset + BLOCK]))
    return bytes(out)


def compress(tar: bytes, compression: Compression, *, members: int = 1, level: int = 6) -> bytes:
    """gzip (split into `members` concatenated members), zstd, or the tar as is."""
    if compression == "none":
        return tar
    if compression == "zstd":
        return pyzstd.compress(tar, level)
    step = -(-len(tar) // members) if tar else 1
    parts = [tar[i : i + step] for i in range(0, len(tar), step)] or [b""]
    return b"".join(gzip.compress(p, level, mtime=0) for p in parts)


def chunked(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """`data` cut into pieces of the given sizes, cycling through them; empty pieces included."""
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        yield data[i : i + n]
        i += n
        k += 1


def digests(data: bytes) -> bytes:
    """md5 | sha1 | sha256 raw, as EntryTable.digests holds them."""
    return hashlib.md5(data).digest() + hashlib.sha1(data).digest() + hashlib.sha256(data).digest()
