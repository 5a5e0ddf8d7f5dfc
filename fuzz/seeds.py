"""Writes the fuzz target's seed inputs: small corpus layers and generated tars.

    python fuzz/seeds.py OUT_DIR [--corpus DIR] [--max-layer-bytes 65536]

Generated tars cover what the parser must get right and mutations should start
from: PAX (long names, xattrs, fractional mtime, global headers), GNU longname and
longlink, base-256 numbers, old-GNU sparse (with an extension block), PAX sparse
0.0, 0.1 and 1.0, whiteouts, secrets and names outside the root, each plain, gzip (one and several
members) and zstd (one and several frames, and a skippable frame). Every generated
seed must scan cleanly with the reference engine, so mutations start from valid
headers. The small corpus layers are added as stored and, when compressed, also
as their tar (cut after the members that fit in the same size). The corpus is
$LAYERSCAN_SHARED/corpus, or ../shared/corpus beside the repository.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyzstd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tar writers the scanner tests use

from layerscan.errors import LayerError  # noqa: E402
from layerscan.scan import scan_layer  # noqa: E402
from tarbuilder import (  # noqa: E402
    BLOCK,
    Entry,
    base256,
    build,
    checksum,
    compress,
    end_of_archive,
    header,
    headers,
    member,
    octal,
    opaque,
    padded,
    pax,
    pax_record,
    whiteout,
)

log = logging.getLogger("fuzz.seeds")

Chunks = Sequence[tuple[int, bytes]]  # (offset in the real file, data)
SPARSE_CHUNKS: Chunks = [(0, b"head" * 30), (4096, b"middle" * 100), (20000, b"x" * 700), (65536, b"tail")]
SPARSE_SIZE = 70000
LAYER_TYPES = ("application/vnd.oci.image.layer.v1.", "application/vnd.docker.image.rootfs.diff.tar")


def old_gnu_sparse_extended(name: bytes, chunks: Chunks, real_size: int) -> bytes:
    """An old-GNU sparse member ('S') with the first chunk in the header and the rest in one extension block."""
    data = b"".join(d for _, d in chunks)
    raw = bytearray(header(name, b"S", len(data), fields={"magic": b"ustar ", "version": b" \0"}))
    raw[386:398], raw[398:410] = octal(chunks[0][0], 12), octal(len(chunks[0][1]), 12)
    raw[482] = 1  # isextended: an extension block follows
    raw[483:495] = octal(real_size, 12)
    raw[148:156] = checksum(bytes(raw))
    ext = bytearray(BLOCK)
    for i, (off, d) in enumerate(chunks[1:]):
        ext[24 * i : 24 * i + 12], ext[24 * i + 12 : 24 * i + 24] = octal(off, 12), octal(len(d), 12)
    return bytes(raw) + bytes(ext) + padded(data)


def pax_sparse(version: str, name: str, chunks: Chunks, real_size: int) -> bytes:
    """A GNU sparse file in PAX form: 0.0 (offset/numbytes records), 0.1 (one map record) or 1.0 (map in the data)."""
    data = b"".join(d for _, d in chunks)
    flat = [str(n) for off, d in chunks for n in (off, len(d))]
    records: list[tuple[str, str]] = [("GNU.sparse.name", name)]
    if version == "0.0":
        records += [("GNU.sparse.size", str(real_size)), ("GNU.sparse.numblocks", str(len(chunks)))]
        records += [
            (k, v)
            for i in range(0, len(flat), 2)
            for k, v in zip(("GNU.sparse.offset", "GNU.sparse.numbytes"), flat[i : i + 2], strict=True)
        ]
    elif version == "0.1":
        records += [("GNU.sparse.size", str(real_size)), ("GNU.sparse.numblocks", str(len(chunks)))]
        records.append(("GNU.sparse.map", ",".join(flat)))
    else:
        records += [("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.realsize", str(real_size))]
        sparse_map = "".join(f"{n}\n" for n in [str(len(chunks)), *flat]).encode()
        data = sparse_map + bytes(-len(sparse_map) % BLOCK) + data
    return pax(b"".join(pax_record(k, v) for k, v in records)) + member(f"GNUSparseFile.0/{name}".encode(), data)


def generated_tars() -> Iterator[tuple[str, bytes]]:
    secrets = b"AWS_KEY=AKIAZ4QW7R2M9XK3T6BV\npassword = 'hunter2hunter2'\n-----BEGIN RSA PRIVATE KEY-----\n"
    yield (
        "pax",
        build(
            [
                Entry("etc/", "dir", mode=0o755),
                Entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", uname="root", gname="root"),
                Entry("app/.env", data=secrets, mtime=1.7e9 + 0.25, uid=1000, gid=1000),
                Entry(
                    "app/" + "long/" * 40 + "name.json", data=b'{"a": 1}\n', xattrs={"user.x": "y", "security.z": "w"}
                ),
                Entry("app/link", "symlink", link="../" * 30 + "target"),
                Entry("app/hard", "hardlink", link="etc/passwd"),
                Entry("dev/null", "char", devmajor=1, devminor=3),
                Entry("run/fifo", "fifo"),
                Entry("bin/tool", data=b"\x7fELF" + bytes(9000) + b"AKIAZ4QW7R2M9XK3T6BV"),
                Entry("\u00e9t\u00e9/caf\u00e9", data=b"unicode name\n"),
                whiteout("etc/motd"),
                opaque("app/config"),
            ],
            "pax",
        ),
    )
    global_header = pax(pax_record("uname", "global") + pax_record("comment", "seed"), b"g")
    yield "pax-global", global_header + build([Entry("g/file", data=b"under a global header\n")], "pax")
    yield (
        "gnu-long-base256",
        build(
            [
                Entry("usr/" + "x" * 120 + "/bin", data=b"#!/bin/sh\n", uid=2**33, gid=7, mtime=-12345),
                Entry("usr/lib/" + "y" * 110, "symlink", link="/" + "z" * 130),
                Entry("usr/lib/hard", "hardlink", link="usr/" + "x" * 120 + "/bin"),
                Entry("blk", "block", devmajor=8, devminor=2),
            ],
            "gnu",
        ),
    )
    yield (
        "ustar",
        build(
            [Entry("ustar/dir", "dir"), Entry("ustar/file", data=b"x" * 1025), Entry("./ustar/dot", data=b"1")], "ustar"
        ),
    )
    b256 = {"uid": base256(5, 8), "gid": base256(70000, 8), "mtime": base256(-1, 12), "mode": base256(0o755, 8)}
    data = b"base-256 everywhere\n"
    yield (
        "base256-fields",
        header(b"b256/file", b"0", base256(len(data), 12), fields=b256) + padded(data) + end_of_archive(),
    )
    yield "old-gnu-sparse", old_gnu_sparse_extended(b"sparse/old", SPARSE_CHUNKS, SPARSE_SIZE) + end_of_archive()
    yield (
        "outside-root",
        build(
            [
                Entry("../../etc/escape", data=b"read inside the root\n"),
                Entry("/abs/file", data=b"absolute\n"),
                Entry("a/../../b", "dir"),
                Entry("ok/hard", "hardlink", link="../../etc/escape"),
                Entry("ok/sym", "symlink", link="/../../x"),
            ],
            "pax",
        ),
    )
    for version in ("0.0", "0.1", "1.0"):
        yield (
            f"pax-sparse-{version}",
            pax_sparse(version, f"sparse/v{version}", SPARSE_CHUNKS, SPARSE_SIZE) + end_of_archive(),
        )


def zstd_frames(tar: bytes, frames: int) -> bytes:
    """`frames` concatenated zstd frames, a skippable frame (magic 0x184D2A50) between the first two."""
    step = -(-len(tar) // frames)
    parts = [pyzstd.compress(tar[i : i + step]) for i in range(0, len(tar), step)]
    skippable = struct.pack("<II", 0x184D2A50, 8) + b"metadata"
    return parts[0] + skippable + b"".join(parts[1:])


def encodings(tar: bytes) -> Iterator[tuple[str, bytes]]:
    yield "tar", tar
    yield "tar.gz", compress(tar, "gzip")
    yield "3.tar.gz", compress(tar, "gzip", members=3)
    yield "tar.zst", compress(tar, "zstd")
    yield "3.tar.zst", zstd_frames(tar, 3)


def corpus_layers(corpus: Path, max_bytes: int) -> Iterator[tuple[str, bytes]]:
    """Layers of the corpus images no larger than max_bytes, as stored and (when compressed) as their tar
    (its first members only, when the tar is larger than max_bytes)."""
    seen: set[str] = set()
    for index in sorted(corpus.glob("images/*/index.json")):
        blobs = index.parent / "blobs"
        for desc in json.loads(index.read_text())["manifests"]:
            manifest = json.loads((blobs / desc["digest"].replace(":", "/")).read_bytes())
            for layer in manifest["layers"]:
                if (
                    layer["size"] > max_bytes
                    or layer["digest"] in seen
                    or not layer["mediaType"].startswith(LAYER_TYPES)
                ):
                    continue
                seen.add(layer["digest"])
                blob = (blobs / layer["digest"].replace(":", "/")).read_bytes()
                name = f"corpus-{layer['digest'].split(':')[1][:12]}"
                yield name, blob
                if blob[:2] == b"\x1f\x8b":
                    yield f"{name}-tar", prefix(gzip.decompress(blob), max_bytes)
                elif blob[:4] == b"\x28\xb5\x2f\xfd":
                    yield f"{name}-tar", prefix(pyzstd.decompress(blob), max_bytes)


def prefix(tar: bytes, max_bytes: int) -> bytes:
    """The first members of `tar` that fit in max_bytes with an end-of-archive marker, or `tar` if it fits."""
    if len(tar) <= max_bytes:
        return tar
    cut = max(o for o in headers(tar) if o <= max_bytes - 2 * BLOCK)
    return tar[:cut] + end_of_archive()


def write_seeds(out: Path, corpus: Path, max_layer_bytes: int) -> int:
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for name, tar in generated_tars():
        try:
            scan_layer(tar, engine="reference")
        except LayerError as e:
            raise SystemExit(f"seeds.py: generated seed {name} is not a valid layer: {e}") from None
        for suffix, blob in encodings(tar):
            (out / f"gen-{name}.{suffix}").write_bytes(blob)
            n += 1
    if corpus.is_dir():
        for name, blob in corpus_layers(corpus, max_layer_bytes):
            (out / name).write_bytes(blob)
            n += 1
    else:
        log.warning("no corpus at %s: seeding with generated tars only", corpus)
    return n


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="directory to write the seeds to")
    shared = Path(os.environ.get("LAYERSCAN_SHARED") or ROOT.parent / "shared")  # as tests/conftest.py finds it
    ap.add_argument("--corpus", type=Path, default=shared / "corpus", help="the image corpus")
    ap.add_argument(
        "--max-layer-bytes",
        type=int,
        default=64 << 10,
        help="largest corpus layer taken (stored size), and largest tar written",
    )
    args = ap.parse_args(argv)
    log.info("%d seeds in %s", write_seeds(args.out, args.corpus, args.max_layer_bytes), args.out)


if __name__ == "__main__":
    main()
