"""The rpm header blob as rpmdb stores it: index entries, then the data store.

    il (u32 BE) | dl (u32 BE) | il x {tag, type, offset, count} (u32 BE each) | dl bytes of data

Every offset, count and string is checked against the blob: garbage gives a
HeaderError, never an IndexError, a hang or an allocation the blob does not justify.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import TypeVar

from ..metadata import FileDigest, RpmFile, RpmMetadata

T = TypeVar("T")

MAX_INDEX_ENTRIES = 0x10000  # rpm's own hard limit on il
MAX_DATA_BYTES = 256 << 20  # rpm's own hard limit on dl

# Tag numbers (rpmtag.h).
NAME, VERSION, RELEASE, EPOCH, SIZE, VENDOR, LICENSE, ARCH = 1000, 1001, 1002, 1003, 1009, 1011, 1014, 1022
FILESIZES, FILEMODES, FILEDIGESTS, FILEFLAGS, FILEUSERNAME, FILEGROUPNAME = 1028, 1030, 1035, 1037, 1039, 1040
SOURCERPM, PROVIDENAME, REQUIRENAME = 1044, 1047, 1049
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
OLDFILENAMES = 1027
LONGFILESIZES, LONGSIZE, FILEDIGESTALGO, MODULARITYLABEL = 5008, 5009, 5011, 5096

# Types (rpm's rpmTagType) and their item sizes.
CHAR, INT8, INT16, INT32, INT64, STRING, BIN, STRING_ARRAY, I18NSTRING = 1, 2, 3, 4, 5, 6, 7, 8, 9
_INT_FORMATS = {CHAR: "B", INT8: "B", INT16: "H", INT32: "I", INT64: "Q"}
_STRING_TYPES = (STRING, STRING_ARRAY, I18NSTRING)

DIGEST_ALGOS = {
    1: "md5",
    2: "sha1",
    3: "ripemd160",
    5: "md2",
    6: "tiger192",
    7: "haval-5-160",
    8: "sha256",
    9: "sha384",
    10: "sha512",
    11: "sha224",
}
DEFAULT_DIGEST_ALGO = 1  # headers without FILEDIGESTALGO are md5


class HeaderError(ValueError):
    """The blob is not a well-formed rpm header."""


@dataclasses.dataclass(frozen=True)
class RpmHeader:
    """The package-level tags; the rest, as the report carries them, in `metadata`."""

    name: str
    arch: str
    sourcerpm: str
    license: str
    metadata: RpmMetadata

    @property
    def version_release(self) -> str:
        m = self.metadata
        return f"{m.version}-{m.release}" if m.release else m.version

    @property
    def evr(self) -> str:
        """[epoch:]version-release, as rpm -q and Syft print it."""
        epoch = self.metadata.epoch
        return f"{epoch}:{self.version_release}" if epoch is not None else self.version_release


def parse_entries(blob: bytes) -> dict[int, tuple[int, int, int]]:
    """tag -> (type, offset into the data store, count), bounds-checked."""
    if len(blob) < 8:
        raise HeaderError(f"header of {len(blob)} bytes is shorter than its 8-byte preamble")
    il, dl = struct.unpack_from(">II", blob, 0)
    if not 0 < il <= MAX_INDEX_ENTRIES:
        raise HeaderError(f"index entry count {il} out of range")
    if dl > MAX_DATA_BYTES:
        raise HeaderError(f"data store length {dl} out of range")
    need = 8 + 16 * il + dl
    if need > len(blob):
        raise HeaderError(f"header declares {need} bytes but has {len(blob)}")
    entries: dict[int, tuple[int, int, int]] = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack_from(">IIII", blob, 8 + 16 * i)
        if off > dl:
            raise HeaderError(f"tag {tag}: offset {off} beyond the data store ({dl} bytes)")
        if typ in _INT_FORMATS and count * struct.calcsize(_INT_FORMATS[typ]) > dl - off:
            raise HeaderError(f"tag {tag}: {count} items overrun the data store")
        if typ in _STRING_TYPES and count > dl - off:  # each string takes at least its NUL
            raise HeaderError(f"tag {tag}: {count} strings overrun the data store")
        entries.setdefault(tag, (typ, off, count))
    return entries


class _Reader:
    def __init__(self, blob: bytes) -> None:
        self.entries = parse_entries(blob)
        il, dl = struct.unpack_from(">II", blob, 0)
        self.data = blob[8 + 16 * il : 8 + 16 * il + dl]

    def strings(self, tag: int) -> list[str]:
        e = self.entries.get(tag)
        if e is None:
            return []
        typ, off, count = e
        if typ not in _STRING_TYPES:
            raise HeaderError(f"tag {tag}: type {typ} where a string was expected")
        if typ != STRING_ARRAY:
            count = 1  # STRING has count 1; I18NSTRING: the first (C locale) translation
        out: list[str] = []
        pos = off
        for _ in range(count):
            end = self.data.find(b"\0", pos)
            if end < 0:
                raise HeaderError(f"tag {tag}: unterminated string")
            out.append(self.data[pos:end].decode("utf-8", "replace"))
            pos = end + 1
        return out

    def string(self, tag: int) -> str:
        values = self.strings(tag)
        return values[0] if values else ""

    def ints(self, tag: int) -> list[int]:
        e = self.entries.get(tag)
        if e is None:
            return []
        typ, off, count = e
        fmt = _INT_FORMATS.get(typ)
        if fmt is None:
            raise HeaderError(f"tag {tag}: type {typ} where an integer was expected")
        return list(struct.unpack_from(f">{count}{fmt}", self.data, off))

    def int(self, tag: int) -> int | None:
        values = self.ints(tag)
        return values[0] if values else None


def parse_header(blob: bytes, database: str) -> RpmHeader:
    """The header of a package read from a `database` ("bdb", "sqlite" or "ndb")."""
    r = _Reader(bytes(blob))
    name = r.string(NAME)
    if not name:
        raise HeaderError("no NAME tag")
    algo_num = r.int(FILEDIGESTALGO) or DEFAULT_DIGEST_ALGO
    digest_algo = DIGEST_ALGOS.get(algo_num, str(algo_num))
    return RpmHeader(
        name=name,
        arch=r.string(ARCH),
        sourcerpm=r.string(SOURCERPM),
        license=r.string(LICENSE),
        metadata=RpmMetadata(
            epoch=r.int(EPOCH),
            version=r.string(VERSION),
            release=r.string(RELEASE),
            vendor=r.string(VENDOR),
            modularity_label=r.string(MODULARITYLABEL),
            size=r.int(LONGSIZE) or r.int(SIZE) or 0,
            provides=tuple(r.strings(PROVIDENAME)),
            requires=tuple(r.strings(REQUIRENAME)),
            database=database,
            digest_algo=digest_algo,
            files=_files(r, digest_algo),
        ),
    )


def _files(r: _Reader, digest_algo: str) -> tuple[RpmFile, ...]:
    basenames = r.strings(BASENAMES)
    if basenames:
        dirnames = r.strings(DIRNAMES)
        dirindexes = r.ints(DIRINDEXES)
        if len(dirindexes) != len(basenames) or any(i >= len(dirnames) for i in dirindexes):
            raise HeaderError("DIRINDEXES do not match BASENAMES/DIRNAMES")
        paths = [dirnames[i] + b for i, b in zip(dirindexes, basenames, strict=False)]
    else:
        paths = r.strings(OLDFILENAMES)
    n = len(paths)
    modes = _column(r.ints(FILEMODES), n, 0)
    sizes = _column(r.ints(LONGFILESIZES) or r.ints(FILESIZES), n, 0)
    flags = _column(r.ints(FILEFLAGS), n, 0)
    digests = _column(r.strings(FILEDIGESTS), n, "")
    users = _column(r.strings(FILEUSERNAME), n, "")
    groups = _column(r.strings(FILEGROUPNAME), n, "")
    # No digest ("") for directories, links and ghosts.
    return tuple(
        RpmFile(
            paths[i],
            modes[i],
            sizes[i],
            FileDigest(digest_algo, digests[i]) if digests[i] else None,
            users[i],
            groups[i],
            flags[i],
        )
        for i in range(n)
    )


def _column(values: list[T], n: int, default: T) -> list[T]:
    """A per-file column; absent ones are defaults, ones of the wrong length are an error."""
    if not values:
        return [default] * n
    if len(values) != n:
        raise HeaderError(f"per-file column has {len(values)} values for {n} files")
    return values
