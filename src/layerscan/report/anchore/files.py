"""The export's file analyzers, from the final file table: file_list (files.all and
files.allinfo), file_checksums and file_suids."""

from __future__ import annotations

import json
import posixpath
import stat
from collections.abc import Iterator

from ...filetree import FinalFile, ImageFiles
from ...scan.model import FileRecord
from ..jsonstream import Json, Obj
from .kvfile import base, element

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


def file_list(files: ImageFiles) -> Obj:
    table, paths = files.files, sorted(files.files)
    names = othernames(files)
    return Obj(
        [
            ("files.all", base((p, oct(table[p].record.mode & 0o7777)) for p in paths)),
            ("files.allinfo", base((p, json.dumps(allinfo(table[p], names[p]))) for p in paths)),
        ]
    )


def file_checksums(files: ImageFiles) -> Obj:
    # Beyond Anchore: sha1sums for every distro, not only Alpine.
    table, paths = files.files, sorted(files.files)
    return Obj([(f"files.{algo}sums", base(_checksums(table, paths, algo))) for algo in ("sha256", "md5", "sha1")])


def file_suids(files: ImageFiles) -> Obj | None:
    """None when no file is setuid: Anchore leaves out an element with no entries."""
    table = files.files
    suids: list[tuple[str, Json]] = [
        (p, oct(table[p].record.mode & 0o7777)) for p in sorted(table) if table[p].record.mode & stat.S_ISUID
    ]
    return element("files.suids", suids) if suids else None


def allinfo(entry: FinalFile, othernames: dict[str, bool]) -> dict[str, Json]:
    """One `files.allinfo` value, with Anchore's quirks (get_files_from_squashtar)."""
    r = entry.record
    linkdst = linkdst_fullpath = None
    size = r.size
    if r.type == "symlink":
        linkdst = r.link or ""
        size = len(linkdst)
        linkdst_fullpath = _linkdst_fullpath(linkdst, r.path)
    return {
        "name": r.path,
        "fullpath": r.path,
        "size": size,
        "mode": _MODE_MASK.get(r.type, 0) | (r.mode & 0o7777),
        "uid": r.uid,
        "gid": r.gid,
        "linkdst": linkdst,
        "linkdst_fullpath": linkdst_fullpath,
        "type": _ALLINFO_TYPE.get(r.type, "UNKNOWN"),
        "othernames": othernames,
    }


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
    table = files.files
    order = sorted(table, key=lambda p: (table[p].layer, p))
    names = {p: _own_names(table[p].record) for p in order}
    by_name: dict[str, dict[str, bool]] = {}
    for path in order:
        own = names[path]
        by_name[path] = own
        for name in own:
            by_name[name] = own
    for name in list(by_name):
        merged = by_name[name]
        for other in list(merged):
            by_name[other].update(merged)
    return names


def _own_names(r: FileRecord) -> dict[str, bool]:
    out: dict[str, bool] = {r.path: True}
    if r.type == "symlink":
        linkdst = r.link or ""
        for name in (_linkdst_fullpath(linkdst, r.path), linkdst):
            if name:
                out[name] = True
    return out


def _linkdst_fullpath(linkdst: str, path: str) -> str:
    # Anchore quirk: a relative target is joined *before* the absolute link path, so
    # normpath gives the link's own path. The policy engine stores it as is.
    return linkdst if linkdst.startswith("/") else posixpath.normpath(posixpath.join(linkdst, path))


def _checksums(table: dict[str, FinalFile], paths: list[str], algo: str) -> Iterator[tuple[str, Json]]:
    for path in paths:
        r = table[path].record
        # Hardlinks carry their target's digests, as Anchore reads the target's content.
        value = getattr(r, algo)
        yield path, value if value and r.type in ("file", "hardlink") else NOT_A_FILE
