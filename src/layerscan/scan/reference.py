"""The pure-Python twin of the native scanner: the oracle and the baseline.

tarfile in streaming mode, hashlib, zlib/gzip and pyzstd. Small on purpose: where
the native engine and this one disagree, this one is presumed right.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import posixpath
import re
import tarfile
import time
import zlib
from collections.abc import Iterable, Iterator

import pyzstd

from .._scan import (
    OPAQUE_MARKER,
    OUTSIDE_ABSOLUTE,
    OUTSIDE_ESCAPES,
    OUTSIDE_LINK,
    WHITEOUT_META_PREFIX,
    WHITEOUT_PREFIX,
)
from ..errors import CompressionError, DigestMismatch, LayerError, LimitExceeded, TarFormatError
from ..image import Buffer
from . import model
from .globs import GlobSet
from .rules import confirm, is_binary

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20

_TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.GNUTYPE_SPARSE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


def detect_compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def normalize_path(name: str) -> tuple[str, int]:
    """'./a/b/', '/a//b', 'a/./b' -> '/a/b'; the root is '/'. As containerd does, a '..' past
    the root stays at the root; also returns OUTSIDE_* flags saying how the name was outside it."""
    flags = OUTSIDE_ABSOLUTE if name.startswith("/") else 0
    depth = 0
    for part in name.split("/"):
        if part == "..":
            if depth == 0:
                flags |= OUTSIDE_ESCAPES
            depth = max(depth - 1, 0)
        elif part not in ("", "."):
            depth += 1
    # normpath keeps a leading '//' and clamps '..' at the root
    return "/" + posixpath.normpath("/" + name.lstrip("/")).lstrip("/"), flags


class _Source(io.RawIOBase):
    """Compressed chunks in, counted; optionally hashed to verify the blob digest."""

    def __init__(self, chunks: Iterable[bytes | memoryview], digest: bool) -> None:
        self._it = iter(chunks)
        self._buf = memoryview(b"")
        self.count = 0
        self.hash = hashlib.sha256() if digest else None

    def readable(self) -> bool:
        return True

    def head(self, n: int) -> bytes:
        """The first `n` bytes not yet read (fewer at the end), without consuming them:
        chunks may be shorter than a magic number."""
        while len(self._buf) < n:
            chunk = next(self._it, None)
            if chunk is None:
                break
            self.count += len(chunk)
            if self.hash is not None:
                self.hash.update(chunk)
            self._buf = memoryview(bytes(self._buf) + bytes(chunk))
        return bytes(self._buf[:n])

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            chunk = next(self._it, None)
            if chunk is None:
                return 0
            self._buf = memoryview(chunk).cast("B")
            self.count += len(self._buf)
            if self.hash is not None:
                self.hash.update(self._buf)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _Plain(io.RawIOBase):
    """The uncompressed tar stream: counted, bounded, optionally hashed for the diff_id."""

    def __init__(self, raw: io.BufferedIOBase, limit: int, layer: str, diff_id: bool) -> None:
        self._raw = raw
        self._limit = limit
        self._layer = layer
        self.count = 0
        self._over = False  # the last read reached the limit with more data behind it
        self.hash = hashlib.sha256() if diff_id else None

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._over:
            raise LimitExceeded(f"layer expands past {self._limit} bytes", self._layer, self._limit)
        try:
            # read1: what one step of the decompressor gives, so that an error found at the end of a
            # gzip member comes after that member's data (as in the native engine), not in place of it.
            data = self._raw.read1(len(b))
        except (EOFError, OSError, zlib.error, pyzstd.ZstdError) as e:
            raise CompressionError(f"corrupt or truncated compressed stream: {e}", self._layer, self.count) from None
        if self.count + len(data) > self._limit:
            # Bytes up to the limit are parsed first and the limit is reported at the limit
            # itself (as the native engine does), whatever the sizes of the reads.
            data = data[: self._limit - self.count]
            self._over = True
            if not data:
                raise LimitExceeded(f"layer expands past {self._limit} bytes", self._layer, self._limit)
        n = len(data)
        b[:n] = data
        self.count += n
        if self.hash is not None:
            self.hash.update(data)
        return n

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _Malformed(Exception):
    """A header tarfile would skip or end the archive on; scan_chunks names the layer."""

    def __init__(self, reason: str, offset: int, error: type[LayerError] = TarFormatError) -> None:
        super().__init__(reason)
        self.offset = offset
        self.error = error


_PAX_RECORD = re.compile(rb"([1-9][0-9]*) [^=\n]+=")
# PAX numbers are decimal ASCII (POSIX): digits only; times may have a '-' and a fraction.
_DIGITS = re.compile(r"[0-9]+")
_TIME = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
PAX_NUMBERS: dict[str, re.Pattern[str]] = {
    **dict.fromkeys(("size", "uid", "gid"), _DIGITS),
    **dict.fromkeys(("mtime", "atime", "ctime"), _TIME),
    **dict.fromkeys(
        (f"GNU.sparse.{k}" for k in ("size", "realsize", "numblocks", "offset", "numbytes", "major", "minor")), _DIGITS
    ),
}
INT64_MAX = (1 << 63) - 1
BLOCK = tarfile.BLOCKSIZE
# tarfile's own, missing from typeshed: the header number parser and the header errors it raises.
_nti = tarfile.nti  # type: ignore[attr-defined]
_InvalidHeader: type[tarfile.HeaderError] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]
_BAD_HEADER = (tarfile.TruncatedHeaderError, _InvalidHeader)  # type: ignore[attr-defined]


def check_pax_records(buf: bytes, offset: int) -> None:
    """Every record is '<len> key=value\\n' with a length that fits: tarfile does not check."""
    pos = 0
    while pos < len(buf) and buf[pos] != 0:
        m = _PAX_RECORD.match(buf, pos)
        length = int(m.group(1)) if m else 0
        if m is None or length < m.end() - pos + 1 or pos + length > len(buf) or buf[pos + length - 1] != 0x0A:
            raise _Malformed("malformed PAX record", offset)
        pos += length
    if buf[pos:].strip(b"\0"):
        raise _Malformed("malformed PAX record", offset)


@dataclasses.dataclass
class SparseMap:
    """The one GNU sparse map of a member: its format and its numbers (offset, numbytes, ...)."""

    format: str  # "old GNU", "0.0", "0.1" or "1.0"
    numbers: list[int]


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends an archive silently at a truncated or invalid header that is not the
    first, takes negative sizes, reads PAX records without checking their lengths, takes
    any number int() takes, and trusts GNU sparse maps; a scan must not."""

    sparse_map: SparseMap | None = None
    _sparse_structs: tuple[list[tuple[int, int]], bool, int]  # old GNU: set by frombuf() for _proc_sparse()

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _StrictTarInfo:
        ti = super().frombuf(buf, encoding, errors)
        if ti.size < 0:
            raise _InvalidHeader("negative size")
        if ti.type == tarfile.GNUTYPE_SPARSE and not all(_in_int64(n) for s in ti._sparse_structs[0] for n in s):
            raise _InvalidHeader("sparse slot out of range")
        return ti

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> _StrictTarInfo:
        assert tf.fileobj is not None
        offset = tf.fileobj.tell()
        try:
            return super().fromtarfile(tf)
        except _BAD_HEADER as e:
            raise _Malformed(f"malformed tar header ({e})", offset) from None

    def _proc_pax(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        tf.fileobj = _CheckedPaxRead(tf, self.size, self.offset)  # type: ignore[assignment]
        member: tarfile.TarInfo = super()._proc_pax(tf)  # type: ignore[misc]
        # Sparse maps describe one file; tarfile would apply these to the next member.
        if self.type == tarfile.XGLTYPE and any(k.startswith("GNU.sparse.") for k in tf.pax_headers):
            raise _Malformed("GNU sparse keys in a global header", self.offset)
        return member

    def _apply_pax_info(self, pax_headers: dict[str, str], encoding: str, errors: str) -> None:
        for key, value in pax_headers.items():
            rx = PAX_NUMBERS.get(key)
            if rx is not None and not rx.fullmatch(value):
                raise _Malformed(f"malformed PAX number in {key}", self.offset)
        super()._apply_pax_info(pax_headers, encoding, errors)  # type: ignore[misc]

    def _proc_sparse(self, tf: tarfile.TarFile) -> _StrictTarInfo:
        """Old GNU sparse: the map in the header and its extension blocks, strictly."""
        structs, isextended, origsize = self._sparse_structs
        del self._sparse_structs
        numbers = _old_gnu_slots(structs)
        f = tf.fileobj
        assert f is not None
        while isextended:
            at = f.tell()
            buf = f.read(BLOCK)
            if len(buf) < BLOCK:
                raise _Malformed("tar stream truncated inside a member", f.tell())
            try:
                pairs = [(_nti(buf[i : i + 12]), _nti(buf[i + 12 : i + 24])) for i in range(0, 21 * 24, 24)]
            except _BAD_HEADER:
                raise _Malformed("malformed sparse header", at) from None
            if not all(_in_int64(n) for p in pairs for n in p):
                raise _Malformed("malformed sparse header", at)
            numbers += _old_gnu_slots(pairs)
            isextended = bool(buf[504])
        self._sparse(self, "old GNU").numbers = numbers
        self.offset_data = f.tell()
        tf.offset = self.offset_data + self._block(self.size)  # type: ignore[attr-defined]
        self.size = origsize
        return self

    def _proc_gnusparse_01(self, member: _StrictTarInfo, pax_headers: dict[str, str]) -> None:
        if self.type == tarfile.XGLTYPE:
            return  # refused in _proc_pax
        sparse_map = self._sparse(member, "0.1")
        numbers = [int(n) if _DIGITS.fullmatch(n) else -1 for n in pax_headers["GNU.sparse.map"].split(",")]
        blocks = pax_headers.get("GNU.sparse.numblocks")
        if (
            not all(_in_int64(n) for n in numbers)
            or len(numbers) % 2
            or (blocks is not None and not (_DIGITS.fullmatch(blocks) and int(blocks) == len(numbers) // 2))
        ):
            raise _Malformed("malformed GNU sparse map", self.offset)
        sparse_map.numbers = numbers

    def _proc_gnusparse_00(self, member: _StrictTarInfo, pax_headers: dict[str, str], buf: bytes) -> None:
        if self.type != tarfile.XGLTYPE:  # else refused in _proc_pax
            self._sparse(member, "0.0")

    def _proc_gnusparse_10(self, member: _StrictTarInfo, pax_headers: dict[str, str], tf: tarfile.TarFile) -> None:
        if self.type != tarfile.XGLTYPE:  # else refused in _proc_pax
            self._sparse(member, "1.0")  # its map is in the member's data: read_sparse_map() reads it

    def _sparse(self, member: _StrictTarInfo, format: str) -> SparseMap:
        """Give `member` its sparse map, of which it may have only one."""
        if member.sparse_map is not None:
            raise _Malformed("more than one GNU sparse map for one member", self.offset)
        member.sparse_map = SparseMap(format, [])
        member.sparse = []  # type: ignore[assignment]  # not None: a sparse file, whose data is not its content
        return member.sparse_map


def _in_int64(n: int) -> bool:
    return 0 <= n <= INT64_MAX


def _old_gnu_slots(pairs: Iterable[tuple[int, int]]) -> list[int]:
    """The numbers of old GNU (offset, numbytes) slots, unused (all-zero) slots left out."""
    return [n for off, num in pairs if off or num for n in (off, num)]


def read_sparse_map(tf: tarfile.TarFile, ti: _StrictTarInfo, max_bytes: int) -> None:
    """Read a PAX 1.0 map from the start of the member's data, then check the member's map:
    chunks in order, inside the file's real size, and no more data than the member stores."""
    sparse_map = ti.sparse_map
    if sparse_map is None or sparse_map.format == "0.0":
        return
    area = tf.offset - ti.offset_data
    used = 0
    if sparse_map.format == "1.0":
        f = tf.fileobj
        assert f is not None
        text = bytearray()
        pos = 0
        want: int | None = None  # numbers the map holds, once its first line is read
        while want is None or len(sparse_map.numbers) < want:
            nl = text.find(b"\n", pos)
            if nl < 0:
                if used + BLOCK > area:
                    raise _Malformed("GNU sparse map runs past the member's data", ti.offset)
                if used + BLOCK > -(-max_bytes // BLOCK) * BLOCK:
                    raise _Malformed(f"GNU sparse map larger than {max_bytes} bytes", ti.offset, LimitExceeded)
                block = f.read(BLOCK)
                if len(block) < BLOCK:
                    raise _Malformed("tar stream truncated inside a member", f.tell())
                text += block
                used += BLOCK
                continue
            line = bytes(text[pos:nl])
            pos = nl + 1
            if not (line.isdigit() and int(line) <= INT64_MAX):
                raise _Malformed("malformed GNU sparse map", ti.offset)
            if want is None:
                want = 2 * int(line)
            else:
                sparse_map.numbers.append(int(line))
    end = total = 0
    for off, num in zip(sparse_map.numbers[::2], sparse_map.numbers[1::2], strict=True):
        if off < end or off + num > ti.size:
            raise _Malformed("GNU sparse map out of order or past the end of the file", ti.offset)
        end = off + num
        total += num
    if total > area - used:
        raise _Malformed("GNU sparse map describes more data than the member holds", ti.offset)


def _members(tf: tarfile.TarFile) -> Iterator[_StrictTarInfo]:
    """tarfile's members, each one's data area skipped here before the next: tarfile would
    seek through whatever size a header claims, even one the stream does not have."""
    f = tf.fileobj
    assert f is not None
    while (ti := tf.next()) is not None:
        yield ti  # type: ignore[misc]
        while (left := tf.offset - f.tell()) > 0:
            if not f.read(min(left, CHUNK)):
                raise _Malformed("tar stream truncated inside a member", f.tell())


class _CheckedPaxRead:
    """Stands in for tarfile's stream for the one read that takes a PAX header's records."""

    def __init__(self, tf: tarfile.TarFile, size: int, offset: int) -> None:
        self._tf, self._stream, self._size, self._offset = tf, tf.fileobj, size, offset

    def read(self, n: int) -> bytes:
        self._tf.fileobj = self._stream
        buf = self._stream.read(n)
        check_pax_records(buf[: self._size], self._offset)
        return buf


def _decompressor(src: _Source, compression: str) -> io.BufferedIOBase:
    if compression == "auto":
        compression = detect_compression(src.head(4))
    buffered = io.BufferedReader(src, CHUNK)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # reads every member
    if compression == "zstd":
        return pyzstd.ZstdFile(buffered, "rb")
    if compression == "none":
        return buffered
    raise ValueError(f"unknown compression {compression!r}")


def scan_chunks(
    chunks: Iterable[bytes | memoryview],
    options: model.ScanOptions = model.ScanOptions(),
    *,
    compression: str = "auto",
    name: str = "",
    expected_digest: str | None = None,
) -> model.LayerResult:
    """Scan one layer given as an iterable of compressed chunks."""
    t0 = time.perf_counter()
    limits = options.limits
    src = _Source(chunks, expected_digest is not None)
    plain = _Plain(_decompressor(src, compression), limits.max_total_bytes, name, options.compute_diff_id)
    capture = [(GlobSet(globs), limit) for globs, limit in options.capture_groups()]
    spill: model.SpillFile | None = None
    spill_end = 0
    secret_rules = list(options.rules)

    entries = model.EntryTable()
    whiteouts: list[model.Whiteout] = []
    secrets: list[model.SecretHit] = []
    captured: dict[str, model.Captured] = {}
    too_big: list[str] = []
    marks: dict[str, tuple[model.Mark, ...]] = {}
    outside: list[tuple[int, str, str, str | None]] = []
    count = sparse = 0
    try:
        tf = tarfile.open(
            fileobj=io.BufferedReader(plain, CHUNK),
            mode="r|",
            encoding="utf-8",
            errors="surrogateescape",
            tarinfo=_StrictTarInfo,
        )
        for ti in _members(tf):
            read_sparse_map(tf, ti, limits.max_ext_header_bytes)
            offset = ti.offset
            count += 1
            if count > limits.max_entries:
                raise LimitExceeded(f"more than {limits.max_entries} entries", name, offset)
            if tf.offset > limits.max_total_bytes:  # else tarfile skips there block by block, even past EOF
                raise LimitExceeded(f"entry data runs past {limits.max_total_bytes} bytes", name, offset)
            _check_ext_header(ti, limits.max_ext_header_bytes, name)
            if len(ti.name.encode("utf-8", "surrogateescape")) > limits.max_path_bytes:
                raise LimitExceeded(f"path longer than {limits.max_path_bytes} bytes", name, offset)
            path, flags = normalize_path(ti.name)
            if flags:
                outside.append((flags, ti.name, path, None))
            base = posixpath.basename(path)
            if not base.startswith(WHITEOUT_PREFIX):
                marks.pop(path, None)  # the path's last entry holds its marks
            if base.startswith(WHITEOUT_PREFIX):
                parent = posixpath.dirname(path)
                if base == OPAQUE_MARKER:
                    whiteouts.append(model.Whiteout(parent, True))
                elif not base.startswith(WHITEOUT_META_PREFIX):  # aufs metadata
                    whiteouts.append(model.Whiteout(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]), False))
                continue
            kind = _TYPES.get(ti.type, "file")  # POSIX: unknown typeflags read as regular files
            link: str | None = None
            if kind == "symlink":
                link = ti.linkname
            elif kind == "hardlink":
                link, flags = normalize_path(ti.linkname)
                if flags:
                    outside.append((flags | OUTSIDE_LINK, ti.linkname, link, path))
            digests = None
            if kind == "file" and ti.sparse is not None:
                sparse += 1  # stored data is not the file's content: no digests
            elif kind == "file":
                limit = max((lim for globs, lim in capture if globs.matches(path)), default=-1)
                want_capture = limit >= 0
                whole = want_capture and ti.size <= limit
                want_secrets = bool(secret_rules) and ti.size <= options.secret_max_file_size
                to_spill = whole and not want_secrets and ti.size > options.capture_spill_bytes
                keep = (whole and not to_spill) or want_secrets
                if to_spill and spill is None:
                    spill = model.SpillFile.create()
                md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
                parts: list[bytes] = []
                f = tf.extractfile(ti)
                assert f is not None
                while data := f.read(CHUNK):
                    md5.update(data)
                    sha1.update(data)
                    sha256.update(data)
                    # An executable is kept whole for its markers (the native engine streams it).
                    if not parts and options.markers and data.startswith(model.EXECUTABLE_MAGICS):
                        keep = True
                    if keep:
                        parts.append(data)
                    if to_spill:
                        assert spill is not None
                        _write_all(spill.fd, data)
                digests = md5.digest() + sha1.digest() + sha256.digest()
                content = b"".join(parts)
                if to_spill:
                    assert spill is not None
                    captured[path] = model.Spill(spill, spill_end, ti.size)
                    spill_end += ti.size
                elif whole:
                    captured[path] = content
                elif want_capture:
                    too_big.append(path)
                if want_secrets and not (options.secret_skip_binary and is_binary(content)):
                    secrets.extend(confirm(path, content, secret_rules))
                if found := model.find_marks(content, options.markers):
                    marks[path] = found
            xattrs = tuple(sorted(k[len("SCHILY.xattr.") :] for k in ti.pax_headers if k.startswith("SCHILY.xattr.")))
            entries.append(
                model.FileRecord(
                    path,
                    kind,
                    ti.mode & 0o7777,
                    ti.uid,
                    ti.gid,
                    ti.uname,
                    ti.gname,
                    ti.size if kind == "file" else 0,
                    int(ti.mtime),
                    link,
                    None,
                    None,
                    None,
                    xattrs,
                ),
                digests,
            )
        plain.drain()
    except _Malformed as e:
        raise e.error(str(e), name, e.offset) from None
    except (tarfile.TarError, UnicodeError, ValueError, OverflowError) as e:
        # tarfile lets some malformed fields out as the builtin errors (an undecodable
        # hdrcharset, a PAX mtime of 'nan' or 'inf', a bad GNU.sparse number).
        raise TarFormatError(f"malformed tar stream: {e}", name, plain.count) from None
    except LayerError:
        raise
    except (EOFError, zlib.error, pyzstd.ZstdError, gzip.BadGzipFile) as e:
        raise CompressionError(f"corrupt or truncated compressed stream: {e}", name, plain.count) from None

    digest = None
    if src.hash is not None:
        # Compressed bytes past the end of the decompressed stream still belong to the blob.
        while src.read(CHUNK):
            pass
        digest = "sha256:" + src.hash.hexdigest()
        if digest != expected_digest:
            raise DigestMismatch(f"layer {name}", str(expected_digest), digest)
    stats = model.ScanStats(src.count, plain.count, count, time.perf_counter() - t0, sparse)
    diff_id = "sha256:" + plain.hash.hexdigest() if plain.hash is not None else None
    return model.LayerResult(
        entries,
        whiteouts,
        secrets,
        captured,
        too_big,
        stats,
        diff_id,
        digest,
        model.outside_root_warnings(outside),
        marks,
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _check_ext_header(ti: tarfile.TarInfo, limit: int, layer: str) -> None:
    size = sum(len(k) + len(v) for k, v in ti.pax_headers.items())
    if size > limit or len(ti.name) > limit or len(ti.linkname) > limit:
        raise LimitExceeded(f"extended header larger than {limit} bytes", layer, ti.offset)


def scan_buffer(
    data: Buffer,
    options: model.ScanOptions = model.ScanOptions(),
    *,
    compression: str = "auto",
    name: str = "",
    expected_digest: str | None = None,
) -> model.LayerResult:
    """Scan one layer held in memory (bytes, memoryview or mmap)."""
    view = memoryview(data).cast("B")
    chunks = (view[i : i + CHUNK] for i in range(0, len(view), CHUNK))
    return scan_chunks(chunks, options, compression=compression, name=name, expected_digest=expected_digest)
