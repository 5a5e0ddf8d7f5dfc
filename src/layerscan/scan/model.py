"""Value types of one layer scan, shared by the native and the reference engine.

Both engines fill the same columnar `EntryTable`, so comparing them is comparing
columns, and Python never builds 100k dicts unless a caller asks for records.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile
import weakref
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

# The scan's constants are defined once, in the scanner's tar.h, and exported by _scan.
from .._scan import (
    DIGEST_LEN,
    ENTRY_KINDS,
    MARK_HEAD,
    MARK_MAX_HITS,
    MARK_PROBE,
    MD5_LEN,
    OUTSIDE_ESCAPES,
    OUTSIDE_LINK,
    SHA1_LEN,
)

if TYPE_CHECKING:
    from .rules import Rule

# One byte per entry in EntryTable.types; the tar typeflag family each stands for.
TYPE_CODES: dict[str, str] = ENTRY_KINDS
TYPE_BYTES: dict[str, int] = {name: ord(code) for code, name in TYPE_CODES.items()}

# How an entry name or hardlink target was outside the root (OUTSIDE_* flags); it is
# read inside it, as containerd does.
MAX_PATH_WARNINGS = 100  # named per layer; the rest are counted in one more warning


def outside_root_warnings(found: Iterable[tuple[int, str, str, str | None]]) -> list[str]:
    """A warning naming each name outside the root, from (OUTSIDE_* flags, the name as stored,
    the path it is read as, the hardlink's own path or None): the first MAX_PATH_WARNINGS,
    then how many more there were, so that a hostile layer cannot flood a report."""
    out: list[str] = []
    n = 0
    for flags, name, path, entry in found:
        n += 1
        if n <= MAX_PATH_WARNINGS:
            what = f"hardlink {entry!r}: target {name!r}" if flags & OUTSIDE_LINK else f"entry {name!r}"
            how = "escapes the root with '..'" if flags & OUTSIDE_ESCAPES else "is absolute"
            out.append(f"{what} {how}: read as {path!r}, inside the root")
    if n > MAX_PATH_WARNINGS:
        out.append(f"{n - MAX_PATH_WARNINGS} more entry names or hardlink targets outside the root, read inside it")
    return out


def hex_digests(digests: bytes | bytearray, i: int) -> tuple[str, str, str]:
    """(md5, sha1, sha256) of row i of a digest column (DIGEST_LEN bytes a row), as hex."""
    d = digests[i * DIGEST_LEN : (i + 1) * DIGEST_LEN]
    return d[:MD5_LEN].hex(), d[MD5_LEN : MD5_LEN + SHA1_LEN].hex(), d[MD5_LEN + SHA1_LEN :].hex()


class FileRecord(NamedTuple):
    """One tar entry. `path` is absolute and normalized ("/etc/passwd")."""

    path: str
    type: str  # one of TYPE_CODES' values
    mode: int  # permission bits incl. setuid/setgid/sticky (mode & 0o7777)
    uid: int
    gid: int
    uname: str
    gname: str
    size: int  # bytes of data for files; 0 for everything else
    mtime: int
    link: str | None  # symlink target as stored; hardlink target normalized like `path`
    md5: str | None  # hex; None unless type == "file"
    sha1: str | None
    sha256: str | None
    xattrs: tuple[str, ...] = ()  # names only; values are not kept

    def to_json(self) -> dict:
        """The `scan-layer` JSON form of this record."""
        return {
            "path": self.path,
            "type": self.type,
            "mode": format(self.mode, "04o"),
            "uid": self.uid,
            "gid": self.gid,
            "size": self.size,
            "mtime": self.mtime,
            "link": self.link,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
        }


class RecordColumns(Protocol):
    """The columns a FileRecord is read from: EntryTable's and the squashed ImageFiles'."""

    paths: list[str]
    modes: array
    uids: array
    gids: array
    sizes: array
    mtimes: array
    unames: list[str]
    gnames: list[str]
    links: list[str | None]
    xattrs: list[tuple[str, ...]]


def record_at(
    columns: RecordColumns, i: int, kind: str, digests: tuple[str, str, str] | tuple[None, None, None]
) -> FileRecord:
    """Row i of the columns as a FileRecord, of type `kind` with these (md5, sha1, sha256)."""
    md5, sha1, sha256 = digests
    return FileRecord(
        columns.paths[i],
        kind,
        columns.modes[i],
        columns.uids[i],
        columns.gids[i],
        columns.unames[i],
        columns.gnames[i],
        columns.sizes[i],
        columns.mtimes[i],
        columns.links[i],
        md5,
        sha1,
        sha256,
        columns.xattrs[i],
    )


@dataclasses.dataclass
class EntryTable:
    """Every entry of one layer, column by column, in tar order (duplicates kept)."""

    paths: list[str] = dataclasses.field(default_factory=list)
    types: bytearray = dataclasses.field(default_factory=bytearray)
    modes: array = dataclasses.field(default_factory=lambda: array("l"))
    uids: array = dataclasses.field(default_factory=lambda: array("q"))
    gids: array = dataclasses.field(default_factory=lambda: array("q"))
    sizes: array = dataclasses.field(default_factory=lambda: array("q"))
    mtimes: array = dataclasses.field(default_factory=lambda: array("q"))
    unames: list[str] = dataclasses.field(default_factory=list)
    gnames: list[str] = dataclasses.field(default_factory=list)
    links: list[str | None] = dataclasses.field(default_factory=list)
    # DIGEST_LEN bytes per entry; all zero for entries that are not regular files.
    digests: bytearray = dataclasses.field(default_factory=bytearray)
    xattrs: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    # 1 for a GNU sparse file: type "file" without digests (its stored data is not its content).
    sparse: bytearray = dataclasses.field(default_factory=bytearray)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> FileRecord:
        kind = TYPE_CODES[chr(self.types[i])]
        if kind == "file" and not (i < len(self.sparse) and self.sparse[i]):  # tables built without the column
            return record_at(self, i, kind, hex_digests(self.digests, i))
        return record_at(self, i, kind, (None, None, None))

    def __iter__(self) -> Iterator[FileRecord]:
        return (self[i] for i in range(len(self)))

    def append(self, rec: FileRecord, digests: bytes | None) -> None:
        """Add one record; `digests` is md5+sha1+sha256 raw bytes for files, else None."""
        self.paths.append(rec.path)
        self.types.append(TYPE_BYTES[rec.type])
        self.modes.append(rec.mode)
        self.uids.append(rec.uid)
        self.gids.append(rec.gid)
        self.sizes.append(rec.size)
        self.mtimes.append(rec.mtime)
        self.unames.append(rec.uname)
        self.gnames.append(rec.gname)
        self.links.append(rec.link)
        self.digests += digests if digests is not None else bytes(DIGEST_LEN)
        self.xattrs.append(rec.xattrs)
        self.sparse.append(rec.type == "file" and digests is None)


class Whiteout(NamedTuple):
    """A `.wh.` marker. `path` is what it hides: the removed path, or for an
    opaque marker the directory whose lower contents are hidden."""

    path: str
    opaque: bool


class SecretHit(NamedTuple):
    """A confirmed rule match. `line` is 1-based. `masked` never holds the full value.
    `allowed_by` names the allow rule (scan/allow.py) that calls it an example, not a secret."""

    rule: str
    path: str
    line: int
    masked: str
    allowed_by: str = ""


class Marker(NamedTuple):
    """A literal looked for in executables (see EXECUTABLE_MAGICS): each of its first
    MARK_MAX_HITS occurrences in a file gives a Mark of `window` bytes from it on.

    With a `probe`, the literal is a zlib stream's first byte (compressed data has no fixed
    bytes of its own to look for; one literal, as Vectorscan 5.4 misses some matches of
    several two-byte literals in stream mode) and only occurrences whose first MARK_PROBE
    bytes inflate to text starting with the probe count: the scan drops the others as it
    goes, so the byte's chance hits in big binaries cost no memory."""

    literal: bytes
    window: int  # at least len(literal)
    probe: bytes = b""  # at most 64 bytes


class Mark(NamedTuple):
    """Where a marker occurs in a file, and the file's bytes from there (the marker's window,
    fewer at the end of the file)."""

    marker: int  # index into ScanOptions.markers
    offset: int
    window: bytes


# A regular file is an executable (and searched for markers) when its first MARK_HEAD bytes
# are one of these: ELF; Mach-O 32/64-bit, either byte order, and universal; PE (MZ stub).
EXECUTABLE_MAGICS = (
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xce\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"MZ",
)


def find_marks(content: bytes, markers: Sequence[Marker]) -> tuple[Mark, ...]:
    """The marks of one file's content, in (offset, marker) order: the definition both engines follow."""
    if len(content) < MARK_HEAD or not content.startswith(EXECUTABLE_MAGICS):
        return ()
    out: list[Mark] = []
    for i, (literal, window, probe) in enumerate(markers):
        at, hits = content.find(literal), 0
        while at >= 0 and hits < MARK_MAX_HITS:
            if not probe or inflates_to(content[at : at + min(window, MARK_PROBE)], probe):
                out.append(Mark(i, at, content[at : at + window]))
                hits += 1
            at = content.find(literal, at + 1)
    return tuple(sorted(out))


def inflates_to(data: bytes, prefix: bytes) -> bool:
    """Whether the zlib stream `data` starts with inflates to text starting with `prefix` (as marks.c probes)."""
    try:
        return zlib.decompressobj().decompress(data, len(prefix)) == prefix
    except zlib.error:
        return False


class ScanStats(NamedTuple):
    bytes_in: int  # compressed bytes consumed
    bytes_out: int  # uncompressed tar bytes produced
    entries: int  # tar entries, whiteouts included
    seconds: float
    sparse: int = 0  # GNU sparse entries seen (reported as files without digests)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds against hostile layers; exceeding one raises LimitExceeded."""

    max_total_bytes: int = 64 << 30  # uncompressed tar bytes per layer
    max_entries: int = 2_000_000
    max_path_bytes: int = 4096
    max_ext_header_bytes: int = 1 << 20  # one PAX or GNU long-name header


@dataclasses.dataclass(frozen=True)
class ScanOptions:
    """What a scan looks for besides records and digests."""

    rules: Sequence[Rule] = ()
    secret_max_file_size: int = 10_000_000  # files larger are not searched for secrets
    secret_skip_binary: bool = True  # a NUL in the first 8000 bytes marks a file binary
    capture_globs: tuple[str, ...] = ()  # files whose content comes back whole
    capture_max_bytes: int = 64 << 20  # per captured file; larger ones are reported, not captured
    # (glob, limit): capture globs with their own limit instead of capture_max_bytes; a file
    # matching several globs gets the largest of their limits.
    capture_limits: tuple[tuple[str, int], ...] = ()
    # A capture larger than this goes to the layer's spill file instead of memory (unless the
    # secret search holds it in memory anyway); it changes where content is kept, never what.
    capture_spill_bytes: int = 8 << 20
    markers: tuple[Marker, ...] = ()  # looked for in executables of any size: LayerResult.marks
    compute_diff_id: bool = False  # sha256 of the uncompressed stream: one more hash pass
    limits: Limits = Limits()

    def capture_groups(self) -> list[tuple[tuple[str, ...], int]]:
        """The capture globs grouped by their size limit, largest limit first."""
        own = dict(self.capture_limits)
        groups: dict[int, list[str]] = {}
        for g in self.capture_globs:
            groups.setdefault(own.get(g, self.capture_max_bytes), []).append(g)
        return [(tuple(globs), limit) for limit, globs in sorted(groups.items(), reverse=True)]


class SpillFile:
    """One layer's spill file: unlinked when made, so it is gone once the last Spill
    reading it is (its descriptor closes then), whatever way the process ends."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        weakref.finalize(self, os.close, fd)

    @classmethod
    def create(cls) -> SpillFile:
        fd, name = tempfile.mkstemp(prefix="layerscan-spill-")
        os.unlink(name)
        return cls(fd)


class _SpillReader(io.RawIOBase):
    """A raw reader over one spilled capture; pread keeps readers of one file independent."""

    def __init__(self, spill: Spill) -> None:
        self._spill, self._pos = spill, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._spill.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(b), self._spill.size - self._pos))
        data = os.pread(self._spill.file.fd, n, self._spill.offset + self._pos) if n else b""
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclasses.dataclass(frozen=True, eq=False)
class Spill:
    """A captured file's content in its layer's spill file, not in memory."""

    file: SpillFile
    offset: int
    size: int

    def open(self) -> BinaryIO:
        return io.BufferedReader(_SpillReader(self), 1 << 16)

    def read(self) -> bytes:
        with self.open() as f:
            return f.read()

    def __eq__(self, other: object) -> bool:
        """By content, as two bytes captures compare."""
        return isinstance(other, Spill) and self.size == other.size and self.read() == other.read()

    __hash__ = None  # type: ignore[assignment]


Captured = bytes | Spill  # a captured file's content, in memory or spilled


def captured_bytes(content: Captured) -> bytes:
    return content if isinstance(content, bytes) else content.read()


@dataclasses.dataclass
class LayerResult:
    """Everything one scan of one layer learned."""

    entries: EntryTable
    whiteouts: list[Whiteout]
    secrets: list[SecretHit]
    captured: Mapping[str, Captured]  # path -> whole content, for files matching capture_globs
    too_big_to_capture: list[str]  # matched a capture glob but exceeded capture_max_bytes
    stats: ScanStats
    diff_id: str | None  # "sha256:<hex>" of the tar stream, when ScanOptions.compute_diff_id
    digest: str | None  # "sha256:<hex>" of the input as given, when scan_layer was told to verify it
    # Entry names (and hardlink targets) that were outside the root, read inside it: see outside_root_warnings.
    warnings: list[str] = dataclasses.field(default_factory=list)
    # path -> the marks of its last entry in the layer, for executables holding a marker
    marks: Mapping[str, tuple[Mark, ...]] = dataclasses.field(default_factory=dict)

    def spilled(self) -> bool:
        """Whether a capture is kept in the layer's spill file rather than in memory."""
        return any(isinstance(c, Spill) for c in self.captured.values())

    def to_json(self) -> dict:
        """The `scan-layer` JSON document."""
        return {
            "entries": [r.to_json() for r in self.entries],
            "whiteouts": [{"path": w.path, "opaque": w.opaque} for w in self.whiteouts],
            "secrets": [{"rule": s.rule, "path": s.path, "line": s.line, "match": s.masked} for s in self.secrets],
            "stats": self.stats._asdict(),
            "warnings": self.warnings,
        }
