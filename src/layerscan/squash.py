"""Layers, in order, into the image's final file table (OCI whiteout semantics).

Within one layer the whiteouts go first: they hide what the *lower* layers had
(OCI: "files present in the same layer as a whiteout can only be hidden by
whiteouts in subsequent layers"), then the layer's entries apply in tar order, so
the same path twice in one layer ends as its last entry.
"""

from __future__ import annotations

from typing import Sequence

from .image import FinalFile, ImageFiles
from .scan.model import FileRecord, LayerResult


class _Tree:
    """The table plus a parent -> children index, so a subtree goes in time proportional to its size."""

    def __init__(self) -> None:
        self.files: dict[str, FinalFile] = {}
        self.children: dict[str, set[str]] = {}
        self.captured: dict[str, bytes] = {}
        self.too_big: set[str] = set()

    def put(self, path: str, entry: FinalFile) -> None:
        old = self.files.get(path)
        if old is not None and old.record.type == "dir" and entry.record.type != "dir":
            self.remove_children(path)  # a directory replaced by a non-directory loses its children
        if old is None:
            self.children.setdefault(_parent(path), set()).add(path)
        self.files[path] = entry
        self.captured.pop(path, None)
        self.too_big.discard(path)

    def remove(self, path: str) -> None:
        if self.files.pop(path, None) is None:
            return
        self.children.get(_parent(path), set()).discard(path)
        self.captured.pop(path, None)
        self.too_big.discard(path)
        self.remove_children(path)

    def remove_children(self, path: str) -> None:
        for child in self.children.pop(path, set()):
            self.remove(child)


def squash(results: Sequence[LayerResult | None]) -> ImageFiles:
    """`results[i]` is manifest layer i (None: missing, skipped). Each final entry
    records the index of the layer that last wrote it."""
    tree = _Tree()
    for index, result in enumerate(results):
        if result is None:
            continue
        for wh in result.whiteouts:
            if wh.opaque:
                tree.remove_children(wh.path)
            else:
                tree.remove(wh.path)
        captured, too_big = result.captured, set(result.too_big_to_capture)
        for rec in result.entries:
            if rec.path == "/":
                continue  # the root is implied, as in the ground truth and Anchore's file list
            if rec.type == "hardlink":
                rec = _hardlink(tree, rec)
            tree.put(rec.path, FinalFile(rec, index))
            # A hardlink reads as its target's content, as it was when the link was made.
            if rec.type == "file" and rec.path in captured:
                tree.captured[rec.path] = captured[rec.path]
            elif rec.type == "hardlink" and rec.link in tree.captured:
                tree.captured[rec.path] = tree.captured[rec.link]
            if rec.path in too_big or (rec.type == "hardlink" and rec.link in tree.too_big):
                tree.too_big.add(rec.path)
    return ImageFiles(tree.files, tree.captured, tree.too_big)


def _hardlink(tree: _Tree, rec: FileRecord) -> FileRecord:
    """A hardlink carries the size and digests of its target as the target is *now*.

    Tar hardlinks point at an earlier entry (usually of the same layer), so the target
    in the table at this moment is the content the link shares. When a later layer
    deletes or replaces the target, the link keeps this content: Anchore's squash
    writes such "deferred hardlinks" as copies of the target as of the link's layer,
    and the overlay filesystem keeps the link's inode. A dangling link keeps no digests.
    """
    target = tree.files.get(rec.link or "")
    if target is None or target.record.type not in ("file", "hardlink"):
        return rec
    t = target.record
    return rec._replace(size=t.size, md5=t.md5, sha1=t.sha1, sha256=t.sha256)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"
