"""Layers → the image's final file table, with OCI whiteout semantics as Anchore applies them.

    squash(results: Sequence[LayerResult | None]) -> ImageFiles

Per layer, in manifest order: first its whiteouts hide lower-layer paths (an entry of
the same layer survives a whiteout next to it), then its entries apply in tar order
(the last entry for a path wins). A non-directory replacing anything drops whatever
was below that path; a directory replacing a file simply takes its place.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import NamedTuple

from .filetree import FinalFile, ImageFiles
from .scan.model import TYPE_BYTES, Captured, FileRecord, LayerResult

_DIR = TYPE_BYTES["dir"]
_CONTENT_TYPES = ("file", "hardlink")


class _Content(NamedTuple):
    """Where a final file's bytes can be read: the layer scan and the path inside it."""

    layer: int
    path: str


class _Tree:
    """path -> FinalFile, plus each path's children so that a subtree goes in O(its size)."""

    def __init__(self) -> None:
        self.files: dict[str, FinalFile] = {}
        self.content: dict[str, _Content] = {}
        # Parents without an entry of their own ("a/b/c" with no "a/b") are still nodes here.
        self.children: dict[str, set[str]] = {}

    def put(self, path: str, entry: FinalFile, content: _Content | None) -> None:
        self.files[path] = entry
        if content is None:
            self.content.pop(path, None)
        else:
            self.content[path] = content
        child = path
        while child != "/":
            parent = posixpath.dirname(child)
            kids = self.children.setdefault(parent, set())
            if child in kids:
                break
            kids.add(child)
            child = parent

    def remove(self, path: str) -> None:
        """Remove `path` and everything under it."""
        self.remove_below(path)
        self.files.pop(path, None)
        self.content.pop(path, None)
        if path != "/":
            self.children.get(posixpath.dirname(path), set()).discard(path)

    def remove_below(self, path: str) -> None:
        stack = list(self.children.pop(path, ()))
        while stack:
            p = stack.pop()
            self.files.pop(p, None)
            self.content.pop(p, None)
            stack.extend(self.children.pop(p, ()))


def squash(results: Sequence[LayerResult | None]) -> ImageFiles:
    """The final file table of layers applied in order; None (a missing layer) is skipped."""
    tree = _Tree()
    for index, result in enumerate(results):
        if result is not None:
            _apply(tree, index, result)
    return _image_files(tree, results)


def _apply(tree: _Tree, index: int, result: LayerResult) -> None:
    for w in result.whiteouts:
        if w.opaque:
            tree.remove_below(w.path)
        else:
            tree.remove(w.path)
    table = result.entries
    for i, path in enumerate(table.paths):
        if path == "/":  # the root is not an entry of the table (nor of Anchore's squashed tar)
            continue
        if table.types[i] != _DIR:
            tree.remove_below(path)
        record = table[i]
        content: _Content | None = None
        if record.type == "file":
            content = _Content(index, path)
        elif record.type == "hardlink":
            record, content = _hardlink(tree, record)
        tree.put(path, FinalFile(record, index), content)


def _hardlink(tree: _Tree, record: FileRecord) -> tuple[FileRecord, _Content | None]:
    """A hardlink record carrying its target's size and digests, and where its bytes are.

    A tar hardlink names an entry written before it: in the same layer or, after
    squashing, in a lower one. Anchore's squash writes a link whose target is in
    another layer as a regular-file copy of the target's content ("deferred
    hardlinks"), so the link keeps that content even when a later layer deletes or
    replaces the target. We do the same, keeping type "hardlink" and the target path:
    the content is the target's as of the moment the link is applied, and it is
    resolved now, not at the end. A link to a target that does not exist (or is not a
    file) keeps no digests, like the ground truth.
    """
    target = tree.files.get(record.link or "")
    if target is None or target.record.type not in _CONTENT_TYPES or target.record.sha256 is None:
        return record, None
    t = target.record
    linked = record._replace(size=t.size, md5=t.md5, sha1=t.sha1, sha256=t.sha256)
    return linked, tree.content.get(record.link or "")


def _image_files(tree: _Tree, results: Sequence[LayerResult | None]) -> ImageFiles:
    captured: dict[str, Captured] = {}
    too_big: set[str] = set()
    big = [set(r.too_big_to_capture) if r is not None else set() for r in results]
    for path, (layer, src) in tree.content.items():
        result = results[layer]
        assert result is not None
        data = result.captured.get(src)
        if data is not None:
            captured[path] = data
        elif src in big[layer]:
            too_big.add(path)
    return ImageFiles(dict(sorted(tree.files.items())), captured, too_big)
