"""The pure-Python twin of the native scanner: the oracle and the baseline.

tarfile in streaming mode, hashlib, zlib/gzip and pyzstd. Small on purpose: where
the native engine and this one disagree, this one is presumed right.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import posixpath
import re
import tarfile
import time
import zlib
from collections.abc import Iterable

import pyzstd

from ..errors import CompressionError, DigestMismatch, LayerError, LimitExceeded, TarFormatError
from .globs import GlobSet
from .model import EntryTable, FileRecord, LayerResult, ScanOptions, ScanStats, SecretHit, Whiteout
from .rules import confirm, is_binary

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
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


def normalize_path(name: str, layer: str = "", offset: int | None = None) -> str:
    """'./a/b/', '/a//b', 'a/./b' -> '/a/b'; the root is '/'. '..' escaping the root is an error."""
    norm = posixpath.normpath("/" + name.lstrip("/"))
    # normpath keeps a leading '//'; '..' at the root is clamped by normpath, so check the raw parts.
    depth = 0
    for part in name.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise TarFormatError(f"unsafe path {name!r} escapes the root", layer, offset)
        elif part not in ("", "."):
            depth += 1
    return "/" + norm.lstrip("/")


class _Source(io.RawIOBase):
    """Compressed chunks in, counted; optionally hashed to verify the blob digest."""

    def __init__(self, chunks: Iterable[bytes], digest: bool) -> None:
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

    def readinto(self, b) -> int:  # type: ignore[override]
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
        self.hash = hashlib.sha256() if diff_id else None

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        try:
            data = self._raw.read(len(b))
        except (EOFError, OSError, zlib.error, pyzstd.ZstdError) as e:
            raise CompressionError(f"corrupt or truncated compressed stream: {e}", self._layer, self.count) from None
        n = len(data)
        b[:n] = data
        self.count += n
        if self.count > self._limit:
            raise LimitExceeded(f"layer expands past {self._limit} bytes", self._layer, self.count)
        if self.hash is not None:
            self.hash.update(data)
        return n

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _Malformed(Exception):
    """A header tarfile would skip or end the archive on; scan_chunks names the layer."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.offset = offset


_PAX_RECORD = re.compile(rb"([1-9][0-9]*) [^=\n]+=")


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


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends an archive silently at a truncated or invalid header that is not the
    first, takes negative sizes, and reads PAX records without checking their lengths;
    a scan must not."""

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        ti = super().frombuf(buf, encoding, errors)
        if ti.size < 0:
            raise tarfile.InvalidHeaderError("negative size")
        return ti

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> tarfile.TarInfo:
        offset = tf.fileobj.tell()  # type: ignore[union-attr]
        try:
            return super().fromtarfile(tf)
        except (tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as e:
            raise _Malformed(f"malformed tar header ({e})", offset) from None

    def _proc_pax(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        tf.fileobj = _CheckedPaxRead(tf, self.size, self.offset)  # type: ignore[assignment]
        return super()._proc_pax(tf)  # type: ignore[misc]


class _CheckedPaxRead:
    """Stands in for tarfile's stream for the one read that takes a PAX header's records."""

    def __init__(self, tf: tarfile.TarFile, size: int, offset: int) -> None:
        self._tf, self._stream, self._size, self._offset = tf, tf.fileobj, size, offset

    def read(self, n: int) -> bytes:
        self._tf.fileobj = self._stream
        buf = self._stream.read(n)  # type: ignore[union-attr]
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
    chunks: Iterable[bytes],
    options: ScanOptions = ScanOptions(),
    *,
    compression: str = "auto",
    name: str = "",
    expected_digest: str | None = None,
) -> LayerResult:
    """Scan one layer given as an iterable of compressed chunks."""
    t0 = time.perf_counter()
    limits = options.limits
    src = _Source(chunks, expected_digest is not None)
    plain = _Plain(_decompressor(src, compression), limits.max_total_bytes, name, options.compute_diff_id)
    capture = GlobSet(options.capture_globs)
    secret_rules = list(options.rules)

    entries = EntryTable()
    whiteouts: list[Whiteout] = []
    secrets: list[SecretHit] = []
    captured: dict[str, bytes] = {}
    too_big: list[str] = []
    count = sparse = 0
    try:
        tf = tarfile.open(
            fileobj=io.BufferedReader(plain, CHUNK),
            mode="r|",
            encoding="utf-8",
            errors="surrogateescape",
            tarinfo=_StrictTarInfo,
        )
        for ti in tf:
            offset = ti.offset
            count += 1
            if count > limits.max_entries:
                raise LimitExceeded(f"more than {limits.max_entries} entries", name, offset)
            if tf.offset > limits.max_total_bytes:  # else tarfile skips there block by block, even past EOF
                raise LimitExceeded(f"entry data runs past {limits.max_total_bytes} bytes", name, offset)
            _check_ext_header(ti, limits.max_ext_header_bytes, name)
            if len(ti.name.encode("utf-8", "surrogateescape")) > limits.max_path_bytes:
                raise LimitExceeded(f"path longer than {limits.max_path_bytes} bytes", name, offset)
            path = normalize_path(ti.name, name, offset)
            base = posixpath.basename(path)
            if base.startswith(WHITEOUT_PREFIX):
                parent = posixpath.dirname(path)
                if base == OPAQUE_MARKER:
                    whiteouts.append(Whiteout(parent, True))
                elif not base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):  # other .wh..wh.* are aufs metadata
                    whiteouts.append(Whiteout(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]), False))
                continue
            kind = _TYPES.get(ti.type, "file")  # POSIX: unknown typeflags read as regular files
            link: str | None = None
            if kind == "symlink":
                link = ti.linkname
            elif kind == "hardlink":
                link = normalize_path(ti.linkname, name, offset)
            digests = None
            if kind == "file" and ti.sparse is not None:
                sparse += 1  # stored data is not the file's content: no digests
            elif kind == "file":
                want_capture = capture.matches(path)
                want_secrets = bool(secret_rules) and ti.size <= options.secret_max_file_size
                keep = (want_capture and ti.size <= options.capture_max_bytes) or want_secrets
                md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
                parts: list[bytes] = []
                f = tf.extractfile(ti)
                assert f is not None
                while data := f.read(CHUNK):
                    md5.update(data)
                    sha1.update(data)
                    sha256.update(data)
                    if keep:
                        parts.append(data)
                digests = md5.digest() + sha1.digest() + sha256.digest()
                content = b"".join(parts)
                if want_capture:
                    if ti.size <= options.capture_max_bytes:
                        captured[path] = content
                    else:
                        too_big.append(path)
                if want_secrets and not (options.secret_skip_binary and is_binary(content)):
                    secrets.extend(confirm(path, content, secret_rules))
            xattrs = tuple(sorted(k[len("SCHILY.xattr.") :] for k in ti.pax_headers if k.startswith("SCHILY.xattr.")))
            entries.append(
                FileRecord(
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
        raise TarFormatError(str(e), name, e.offset) from None
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
    stats = ScanStats(src.count, plain.count, count, time.perf_counter() - t0, sparse)
    diff_id = "sha256:" + plain.hash.hexdigest() if plain.hash is not None else None
    return LayerResult(entries, whiteouts, secrets, captured, too_big, stats, diff_id, digest)


def _check_ext_header(ti: tarfile.TarInfo, limit: int, layer: str) -> None:
    size = sum(len(k) + len(v) for k, v in ti.pax_headers.items())
    if size > limit or len(ti.name) > limit or len(ti.linkname) > limit:
        raise LimitExceeded(f"extended header larger than {limit} bytes", layer, ti.offset)


def scan_buffer(data, options: ScanOptions = ScanOptions(), **kw) -> LayerResult:
    """Scan one layer held in memory (bytes, memoryview or mmap)."""
    view = memoryview(data).cast("B")
    return scan_chunks((view[i : i + CHUNK] for i in range(0, len(view), CHUNK)), options, **kw)
