"""The export's file analyzers, from the final file table: file_list (files.all and
files.allinfo), file_checksums and file_suids.

Each is a column loop that writes JSON text (see jsonstream's EncodedObj): an image of
300k files makes no per-file dict or record here."""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Iterator

from ...filetree import KIND_OF, ImageFiles
from ...scan.model import DIGEST_LEN, MD5_LEN, SHA1_LEN, TYPE_BYTES
from ..jsonstream import Obj, string
from .kvfile import element, encoded_base

NOT_A_FILE = "DIRECTORY_OR_OTHER"

# S_IFMT bits as Anchore ORs them onto the tar mode; hardlinks count as regular files.
_MODE_MASK = {
    "file": stat.S_IFREG,
    "hardlink": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "char": stat.S_IFCHR,
    "block": stat.S_IFBLK,
    "fifo": stat.S_IFIFO,
}
# tarfile.isdev() is true for char, block and fifo entries alike.
_ALLINFO_TYPE = {
    "file": "file",
    "hardlink": "file",
    "dir": "dir",
    "symlink": "slink",
    "char": "dev",
    "block": "dev",
    "fifo": "dev",
}
_SYMLINK = TYPE_BYTES["symlink"]
# Per type byte: the S_IFMT bits and the allinfo "type" as JSON text.
_MASK_OF = tuple(_MODE_MASK.get(KIND_OF[b], 0) for b in range(256))
_TYPE_TEXT = tuple(string(_ALLINFO_TYPE.get(KIND_OF[b], "UNKNOWN")) for b in range(256))
# Where each digest sits in a row's DIGEST_LEN bytes.
_DIGEST_AT = {"md5": (0, MD5_LEN), "sha1": (MD5_LEN, MD5_LEN + SHA1_LEN), "sha256": (MD5_LEN + SHA1_LEN, DIGEST_LEN)}
_NOT_A_FILE = string(NOT_A_FILE)
# files.all's value per permission bits: oct() as JSON text.
_PERMISSIONS = tuple(string(oct(bits)) for bits in range(0o10000))


def file_list(files: ImageFiles) -> Obj:
    names = othernames(files)
    quoted = _quoted_paths(files)
    return Obj(
        [
            (
                "files.all",
                encoded_base(f"{q}: {_PERMISSIONS[m & 0o7777]}" for q, m in zip(quoted, files.modes, strict=True)),
            ),
            (
                "files.allinfo",
                encoded_base(
                    f"{q}: {string(allinfo(files, i, names[p]))}"
                    for i, (p, q) in enumerate(zip(files.paths, quoted, strict=True))
                ),
            ),
        ]
    )


def file_checksums(files: ImageFiles) -> Obj:
    # Beyond Anchore: sha1sums for every distro, not only Alpine.
    quoted = _quoted_paths(files)
    return Obj(
        [(f"files.{algo}sums", encoded_base(_checksums(files, quoted, algo))) for algo in ("sha256", "md5", "sha1")]
    )


def _quoted_paths(files: ImageFiles) -> list[str]:
    """Every path as JSON text, once for the several elements that have a member per file."""
    return list(map(string, files.paths))


def file_suids(files: ImageFiles) -> Obj | None:
    """None when no file is setuid: Anchore leaves out an element with no entries."""
    suids = [(p, oct(m & 0o7777)) for p, m in zip(files.paths, files.modes, strict=True) if m & stat.S_ISUID]
    return element("files.suids", suids) if suids else None


def allinfo(files: ImageFiles, i: int, othernames: dict[str, bool]) -> str:
    """Row i's `files.allinfo` value (JSON text, as json.dumps writes the dict), with
    Anchore's quirks (get_files_from_squashtar); `othernames` is the row's (see othernames)."""
    path, kind, mode = files.paths[i], files.types[i], files.modes[i]
    name = string(path)
    size = files.sizes[i]
    linkdst = linkdst_fullpath = "null"
    if kind == _SYMLINK:
        target = files.links[i] or ""
        size = len(target)
        linkdst, linkdst_fullpath = string(target), string(_linkdst_fullpath(target, path))
    # Most files have no other name: their own path, first, is the only one.
    names = f"{name}: true" if len(othernames) == 1 else ", ".join(f"{string(n)}: true" for n in othernames)
    return (
        f'{{"name": {name}, "fullpath": {name}, "size": {size}, "mode": {_MASK_OF[kind] | (mode & 0o7777)}, '
        f'"uid": {files.uids[i]}, "gid": {files.gids[i]}, "linkdst": {linkdst}, "linkdst_fullpath": '
        f'{linkdst_fullpath}, "type": {_TYPE_TEXT[kind]}, "othernames": {{{names}}}}}'
    )


def othernames(files: ImageFiles) -> dict[str, dict[str, bool]]:
    """Every path's `othernames`, merged as Anchore merges them.

    Each file starts with its own names: its path and, for a symlink, its target as
    stored and its linkdst_fullpath. Anchore then maps every name to the names of the
    last file that has it, and makes one pass over that map in which each file's names
    are added, in place, to the names of every file its names map to: files reached
    through one target share names, but a chain of links is not closed. The result
    depends on the order of the squashed tar, layer by layer; within a layer it is
    taken to be path order, the order in which Docker, BuildKit and debootstrap write
    their tars (anchore-compat.md).
    """
    paths = files.paths
    order = sorted(range(len(paths)), key=files.layers.__getitem__)  # stable: path order within a layer
    names = {paths[i]: _own_names(files, i) for i in order}
    by_name: dict[str, dict[str, bool]] = {}
    for path, own in names.items():
        by_name[path] = own
        for name in own:
            by_name[name] = own
    for name in list(by_name):
        merged = by_name[name]
        if len(merged) > 1:  # it holds `name`: a single name would only be merged into itself
            for other in list(merged):
                by_name[other].update(merged)
    return names


def _own_names(files: ImageFiles, i: int) -> dict[str, bool]:
    path = files.paths[i]
    out: dict[str, bool] = {path: True}
    if files.types[i] == _SYMLINK:
        linkdst = files.links[i] or ""
        for name in (_linkdst_fullpath(linkdst, path), linkdst):
            if name:
                out[name] = True
    return out


def _linkdst_fullpath(linkdst: str, path: str) -> str:
    # Anchore quirk: a relative target is joined *before* the absolute link path, so
    # normpath gives the link's own path. The policy engine stores it as is.
    return linkdst if linkdst.startswith("/") else posixpath.normpath(posixpath.join(linkdst, path))


def _checksums(files: ImageFiles, quoted: list[str], algo: str) -> Iterator[str]:
    # Hardlinks carry their target's digests, as Anchore reads the target's content.
    start, end = _DIGEST_AT[algo]
    hexes = files.digests.hex()  # one conversion, sliced per row (two hex digits a byte)
    for q, hashed, at in zip(quoted, files.hashed, range(2 * start, len(hexes), 2 * DIGEST_LEN), strict=True):
        if hashed:
            yield f'{q}: "{hexes[at : at + 2 * (end - start)]}"'
        else:
            yield f"{q}: {_NOT_A_FILE}"
