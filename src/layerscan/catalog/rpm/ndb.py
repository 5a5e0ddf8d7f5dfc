"""rpm's NDB `Packages.db` (SUSE): slot pages pointing at blobs in 16-byte blocks.

header (32 B, LE): magic "RpmP", version 0, generation, slot page count, 4 reserved
slots (16 B each, filling the slot pages after the header): magic "Slot", package index, block offset, block count
blob at block offset * 16: magic "BlbS", package index, checksum, length, then the header blob
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

HEADER_MAGIC = int.from_bytes(b"RpmP", "little")
SLOT_MAGIC = int.from_bytes(b"Slot", "little")
BLOB_MAGIC = int.from_bytes(b"BlbS", "little")
PAGE_SIZE = 4096
SLOT_SIZE = 16
BLOCK_SIZE = 16
BLOB_HEADER = 16
MAX_SLOT_PAGES = 2048  # as go-rpmdb: more is not a real database


class NdbError(ValueError):
    """The file is not a readable NDB package database."""


def read_blobs(db: bytes) -> Iterator[bytes]:
    if len(db) < 32:
        raise NdbError(f"{len(db)} bytes is too short for an NDB header")
    magic, version, _generation, slot_pages = struct.unpack_from("<IIII", db, 0)
    if magic != HEADER_MAGIC:
        raise NdbError("no NDB magic")
    if version != 0:
        raise NdbError(f"NDB version {version} is not supported")
    if not 0 < slot_pages <= MAX_SLOT_PAGES or slot_pages * PAGE_SIZE > len(db):
        raise NdbError(f"slot page count {slot_pages} out of range")
    nslots = slot_pages * PAGE_SIZE // SLOT_SIZE - 2  # the header takes the first two slots
    for i in range(nslots):
        smagic, pkg_index, blk_offset, blk_count = struct.unpack_from("<IIII", db, 32 + i * SLOT_SIZE)
        if smagic != SLOT_MAGIC:
            raise NdbError(f"slot {i}: bad magic")
        if pkg_index == 0:
            continue
        start = blk_offset * BLOCK_SIZE
        if start + BLOB_HEADER > len(db):
            raise NdbError(f"slot {i}: blob offset {start} beyond the file")
        bmagic, bindex, _cksum, blen = struct.unpack_from("<IIII", db, start)
        if bmagic != BLOB_MAGIC or bindex != pkg_index:
            raise NdbError(f"slot {i}: blob at {start} has a bad magic or package index")
        if blen > blk_count * BLOCK_SIZE - BLOB_HEADER or start + BLOB_HEADER + blen > len(db):
            raise NdbError(f"slot {i}: blob length {blen} overruns its blocks")
        yield db[start + BLOB_HEADER : start + BLOB_HEADER + blen]
