"""Berkeley DB hash databases (rpm's `Packages` before 4.16): the values, in page order.

Page 0 is the hash metadata page (magic 0x061561, page size, last page number). Data
pages of type P_HASH/P_HASH_UNSORTED hold key/value index pairs; rpm's header blobs
are too big for a page and sit in chains of P_OVERFLOW pages. Both byte orders are
read; every page number, offset and length is checked, and a chain may not revisit
a page, so garbage ends in BdbError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

HASH_MAGIC = 0x061561
META_MIN = 72 + 4  # the generic DBMETA plus max_bucket
PAGE_HEADER = 26
P_HASH_UNSORTED, P_OVERFLOW, P_HASHMETA, P_HASH = 2, 7, 8, 13
H_OFFPAGE = 3
VALID_PAGE_SIZES = tuple(1 << n for n in range(9, 17))  # 512 B .. 64 KiB


class BdbError(ValueError):
    """The file is not a readable Berkeley DB hash database."""


def read_values(db: bytes) -> Iterator[bytes]:
    """Every off-page value (rpm keeps each header blob in one), in page order."""
    if len(db) < META_MIN:
        raise BdbError(f"{len(db)} bytes is too short for a Berkeley DB metadata page")
    order = _byte_order(db)
    (pagesize,) = struct.unpack_from(order + "I", db, 20)
    if pagesize not in VALID_PAGE_SIZES:
        raise BdbError(f"page size {pagesize} is not a Berkeley DB page size")
    if db[25] != P_HASHMETA:
        raise BdbError(f"page 0 has type {db[25]}, not a hash metadata page")
    (last_pgno,) = struct.unpack_from(order + "I", db, 32)
    npages = len(db) // pagesize
    if last_pgno >= npages:
        raise BdbError(f"last page {last_pgno} is beyond the file ({npages} pages)")
    for pgno in range(1, last_pgno + 1):
        page = memoryview(db)[pgno * pagesize : (pgno + 1) * pagesize]
        if page[25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        (entries,) = struct.unpack_from(order + "H", page, 20)
        if PAGE_HEADER + 2 * entries > pagesize:
            raise BdbError(f"page {pgno}: {entries} index entries do not fit the page")
        offsets = struct.unpack_from(f"{order}{entries}H", page, PAGE_HEADER)
        for off in offsets[1::2]:  # key, value, key, value, …
            if off >= pagesize:
                raise BdbError(f"page {pgno}: item offset {off} beyond the page")
            if page[off] != H_OFFPAGE:
                continue
            if off + 12 > pagesize:
                raise BdbError(f"page {pgno}: off-page item at {off} crosses the page end")
            ov_pgno, length = struct.unpack_from(order + "II", page, off + 4)
            yield _overflow(db, order, pagesize, npages, ov_pgno, length)


def _byte_order(db: bytes) -> str:
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", db, 12)[0] == HASH_MAGIC:
            return order
    raise BdbError("no Berkeley DB hash magic")


def _overflow(db: bytes, order: str, pagesize: int, npages: int, pgno: int, length: int) -> bytes:
    if length > len(db):
        raise BdbError(f"overflow item of {length} bytes is larger than the file")
    out = bytearray()
    seen: set[int] = set()
    while len(out) < length:
        if not 0 < pgno < npages or pgno in seen:
            raise BdbError(f"overflow chain reaches bad or repeated page {pgno}")
        seen.add(pgno)
        base = pgno * pagesize
        if db[base + 25] != P_OVERFLOW:
            raise BdbError(f"page {pgno} in an overflow chain has type {db[base + 25]}")
        (next_pgno,) = struct.unpack_from(order + "I", db, base + 16)
        (used,) = struct.unpack_from(order + "H", db, base + 22)  # hf_offset: bytes of data on this page
        if used > pagesize - PAGE_HEADER:
            raise BdbError(f"overflow page {pgno} claims {used} bytes")
        out += db[base + PAGE_HEADER : base + PAGE_HEADER + used]
        if next_pgno == 0:
            break
        pgno = next_pgno
    if len(out) < length:
        raise BdbError(f"overflow chain holds {len(out)} of {length} bytes")
    return bytes(out[:length])
