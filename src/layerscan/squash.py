"""Layers → the image's final file table, with OCI whiteout semantics as Anchore applies them.

    squash(results: Sequence[LayerResult | None]) -> ImageFiles

Per layer, in manifest order: first its whiteouts hide lower-layer paths (an entry of
the same layer survives a whiteout next to it), then its entries apply in tar order
(the last entry for a path wins). A non-directory replacing anything drops whatever
was below that path; a directory replacing a file simply takes its place.

The tree maps each path to a row number into the layers' EntryTables laid end to end
(a "global row"), so applying a layer makes no record per entry; the final table is then
gathered column by column from those rows.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

from .filetree import ImageFiles
from .scan.model import DIGEST_LEN, TYPE_BYTES, EntryTable, LayerResult

_DIR = TYPE_BYTES["dir"]
_FILE = TYPE_BYTES["file"]
_HARDLINK = TYPE_BYTES["hardlink"]
_IS_FILE = bytes(int(b == _FILE) for b in range(256))  # a translate table: type byte -> 1 for a regular file


class _Tree:
    """path -> global row, plus each path's children so that a subtree goes in O(its size).

    The children are indexed only once a layer removes something: until then, `ancestors`
    (every directory above a path, whether or not it has an entry) is all `_merge` needs."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}
        # A final hardlink -> the global row of the regular file whose content (size,
        # digests, captured bytes) it carries; hardlinks without one are not here.
        self.linked: dict[str, int] = {}
        self.ancestors: set[str] = set()
        self.indexed = False
        # Parents without an entry of their own ("a/b/c" with no "a/b") are still nodes here.
        self.children: dict[str, set[str]] = {}

    def index(self) -> None:
        """Index the children of every path, for the entry-by-entry rules from now on."""
        for path in self.files:
            self._link_up(path)
        self.indexed = True

    def put(self, path: str, row: int) -> None:
        self.files[path] = row
        self._link_up(path)

    def _link_up(self, path: str) -> None:
        children = self.children
        child = path
        while child != "/":
            cut = child.rfind("/")
            parent = child[:cut] if cut > 0 else "/"
            kids = children.get(parent)
            if kids is None:
                children[parent] = {child}
            elif child in kids:
                break
            else:
                kids.add(child)
            child = parent

    def remove(self, path: str) -> None:
        """Remove `path` and everything under it."""
        self.remove_below(path)
        self.files.pop(path, None)
        self.linked.pop(path, None)
        if path != "/":
            cut = path.rfind("/")
            self.children.get(path[:cut] if cut > 0 else "/", set()).discard(path)

    def remove_below(self, path: str) -> None:
        kids = self.children.pop(path, None)
        if not kids:
            return
        stack = list(kids)
        while stack:
            p = stack.pop()
            self.files.pop(p, None)
            self.linked.pop(p, None)
            stack.extend(self.children.pop(p, ()))


class _Rows:
    """The layers' EntryTables laid end to end: a global row is a layer's offset plus its row."""

    def __init__(self, results: Sequence[LayerResult | None]) -> None:
        self.layers = [i for i, r in enumerate(results) if r is not None]
        self.tables: list[EntryTable] = [r.entries for r in results if r is not None]
        self.offsets = [0]
        for t in self.tables:
            self.offsets.append(self.offsets[-1] + len(t))

    def locate(self, row: int) -> tuple[int, int]:
        """(position in self.tables, row in that table) of a global row."""
        k = bisect.bisect_right(self.offsets, row) - 1
        return k, row - self.offsets[k]

    def hashed(self, row: int) -> bool:
        """Whether a regular-file row has digests (a GNU sparse file has none)."""
        k, i = self.locate(row)
        t = self.tables[k]
        return t.types[i] == _FILE and not (i < len(t.sparse) and t.sparse[i])


def squash(results: Sequence[LayerResult | None]) -> ImageFiles:
    """The final file table of layers applied in order; None (a missing layer) is skipped."""
    tree = _Tree()
    rows = _Rows(results)
    for k, table in enumerate(rows.tables):
        result = results[rows.layers[k]]
        assert result is not None
        if not tree.indexed and not _merge(tree, rows, rows.offsets[k], table, result):
            tree.index()
        if tree.indexed:
            _apply(tree, rows, rows.offsets[k], table, result)
    return _gather(tree, rows, results)


def _merge(tree: _Tree, rows: _Rows, offset: int, table: EntryTable, result: LayerResult) -> bool:
    """Apply a layer that removes nothing in bulk, as _apply would entry by entry; False,
    having changed nothing, when the layer has whiteouts or a non-directory at a path
    that has something below it (in the tree or in this layer)."""
    if result.whiteouts:
        return False
    paths, types = table.paths, table.types
    parents, before = _ancestors(paths), tree.ancestors
    if any(types[i] != _DIR and (p in parents or p in before) for i, p in enumerate(paths)):
        return False
    links = _hardlink_sources(tree, rows, offset, table)
    files = tree.files
    files.update(zip(paths, range(offset, offset + len(paths)), strict=True))
    files.pop("/", None)  # the root is not an entry of the table (nor of Anchore's squashed tar)
    for path in [p for p in tree.linked if files[p] >= offset]:  # written again by this layer
        del tree.linked[path]
    for path, (row, source) in links.items():
        if files.get(path) == row and source is not None:  # the link is the layer's last word on its path
            tree.linked[path] = source
    before |= parents
    return True


def _ancestors(paths: list[str]) -> set[str]:
    """Every directory above the paths ("/a/b/c" -> "/a/b", "/a", "/")."""
    found = {p[: p.rfind("/")] or "/" for p in paths}
    todo = list(found)
    while todo:
        up = {d[: d.rfind("/")] or "/" for d in todo if d != "/"} - found
        found |= up
        todo = list(up)
    return found


def _hardlink_sources(tree: _Tree, rows: _Rows, offset: int, table: EntryTable) -> dict[str, tuple[int, int | None]]:
    """A layer's hardlinks: path -> (global row, the source row it carries or None), each
    resolved against its target as of the link, as _apply does; for a layer that removes nothing."""
    types, paths, links = table.types, table.paths, table.links
    at = [i for i in _positions(types, _HARDLINK) if paths[i] != "/"]
    if not at:
        return {}
    targets = {links[i] or "" for i in at}
    # The source a link to a target would carry, as this layer's entries rewrite the targets.
    now: dict[str, int | None] = {}
    out: dict[str, tuple[int, int | None]] = {}
    for i in sorted({*at, *(i for i, p in enumerate(paths) if p in targets)}):
        path, row = paths[i], offset + i
        if types[i] == _HARDLINK:
            target = links[i] or ""
            source = now[target] if target in now else _link_source(tree, rows, target)
            out[path] = (row, source)
        else:
            source = row if rows.hashed(row) else None
        if path in targets:
            now[path] = source
    return out


def _positions(column: bytearray, code: int) -> list[int]:
    """Where `code` is in the column (bytearray.find, in C: hardlinks are few)."""
    out, i = [], column.find(code)
    while i >= 0:
        out.append(i)
        i = column.find(code, i + 1)
    return out


def _apply(tree: _Tree, rows: _Rows, offset: int, table: EntryTable, result: LayerResult) -> None:
    for w in result.whiteouts:
        if w.opaque:
            tree.remove_below(w.path)
        else:
            tree.remove(w.path)
    types, links, linked = table.types, table.links, tree.linked
    for i, path in enumerate(table.paths):
        if path == "/":  # the root is not an entry of the table (nor of Anchore's squashed tar)
            continue
        kind = types[i]
        if kind != _DIR:
            tree.remove_below(path)
        if kind == _HARDLINK:
            source = _link_source(tree, rows, links[i] or "")
            if source is None:
                linked.pop(path, None)
            else:
                linked[path] = source
        elif linked:
            linked.pop(path, None)
        tree.put(path, offset + i)


def _link_source(tree: _Tree, rows: _Rows, target: str) -> int | None:
    """The regular-file row whose content a hardlink to `target` carries, from now on.

    A tar hardlink names an entry written before it: in the same layer or, after
    squashing, in a lower one. Anchore's squash writes a link whose target is in
    another layer as a regular-file copy of the target's content ("deferred
    hardlinks"), so the link keeps that content even when a later layer deletes or
    replaces the target. We do the same, keeping type "hardlink" and the target path:
    the content is the target's as of the moment the link is applied, and it is
    resolved now, not at the end. A link to a target that does not exist (or is not a
    file) keeps no digests, like the ground truth.
    """
    row = tree.files.get(target)
    if row is None:
        return None
    if target in tree.linked:
        return tree.linked[target]
    return row if rows.hashed(row) else None


def _gather(tree: _Tree, rows: _Rows, results: Sequence[LayerResult | None]) -> ImageFiles:
    paths = sorted(tree.files)
    picks = list(map(tree.files.__getitem__, paths))
    tables = rows.tables
    if len(tables) == 1:
        t = tables[0]
        types, digests, layer_of = t.types, t.digests, array("q", [rows.layers[0]]) * len(t)
        modes, uids, gids, sizes, mtimes = t.modes, t.uids, t.gids, t.sizes, t.mtimes
        unames, gnames, links, xattrs, sparse = t.unames, t.gnames, t.links, t.xattrs, t.sparse
    else:  # laid end to end; a copy of the columns, kept only while gathering
        types, digests, sparse = bytearray(), bytearray(), bytearray()
        modes, uids, gids, sizes, mtimes, layer_of = (array(c) for c in "lqqqqq")
        unames, gnames, links, xattrs = [], [], [], []
        for k, t in enumerate(tables):
            types += t.types
            digests += t.digests
            sparse += t.sparse + bytes(len(t) - len(t.sparse))
            modes += t.modes
            uids += t.uids
            gids += t.gids
            sizes += t.sizes
            mtimes += t.mtimes
            layer_of += array("q", [rows.layers[k]]) * len(t)
            unames += t.unames
            gnames += t.gnames
            links += t.links
            xattrs += t.xattrs
    out_types = bytearray(map(types.__getitem__, picks))
    if len(sparse) < len(types):  # tables built without the column
        sparse = sparse + bytes(len(types) - len(sparse))
    hashed = out_types.translate(_IS_FILE)
    for i in _positions(bytearray(map(sparse.__getitem__, picks)), 1):  # GNU sparse files have no digests
        hashed[i] = 0
    out_digests = bytearray().join([digests[r * DIGEST_LEN : (r + 1) * DIGEST_LEN] for r in picks])
    out_sizes = array("q", map(sizes.__getitem__, picks))
    files = ImageFiles(
        paths,
        out_types,
        array("l", map(modes.__getitem__, picks)),
        array("q", map(uids.__getitem__, picks)),
        array("q", map(gids.__getitem__, picks)),
        out_sizes,
        array("q", map(mtimes.__getitem__, picks)),
        list(map(unames.__getitem__, picks)),
        list(map(gnames.__getitem__, picks)),
        list(map(links.__getitem__, picks)),
        out_digests,
        hashed,
        array("q", map(layer_of.__getitem__, picks)),
        list(map(xattrs.__getitem__, picks)),
        {},
    )
    for path, source in tree.linked.items():  # hardlinks carry their target's size and digests
        row = files.row(path)
        assert row is not None
        out_sizes[row] = sizes[source]
        out_digests[row * DIGEST_LEN : (row + 1) * DIGEST_LEN] = digests[
            source * DIGEST_LEN : (source + 1) * DIGEST_LEN
        ]
        hashed[row] = 1
    _contents(files, tree, rows, results)
    return files


def _contents(files: ImageFiles, tree: _Tree, rows: _Rows, results: Sequence[LayerResult | None]) -> None:
    """The captured contents (and the too-big-to-capture names) and executables' marks of the
    final files: a regular file's from its own row, a hardlink's from its source's."""
    for layer in rows.layers:
        result = results[layer]
        assert result is not None
        for path, content in result.captured.items():
            if _final_file(files, path, layer):
                files.captured[path] = content
        for path in result.too_big_to_capture:
            if _final_file(files, path, layer):
                files.too_big_to_capture.add(path)
        for path, own in result.marks.items():
            if own and _final_file(files, path, layer):
                files.marks[path] = own
    for path, source in tree.linked.items():
        k, i = rows.locate(source)
        result = results[rows.layers[k]]
        assert result is not None
        src = rows.tables[k].paths[i]
        data = result.captured.get(src)
        if data is not None:
            files.captured[path] = data
        elif src in result.too_big_to_capture:
            files.too_big_to_capture.add(path)
        if found := result.marks.get(src):
            files.marks[path] = found


def _final_file(files: ImageFiles, path: str, layer: int) -> bool:
    """Whether `path` is a final regular file written by `layer`."""
    i = files.row(path)
    return i is not None and files.layers[i] == layer and files.types[i] == _FILE
