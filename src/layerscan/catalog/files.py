"""Finding and reading the captured files a cataloger asked for: every cataloger reads here.

    regular_files(files, globs)   -> sorted paths of regular files (or hardlinks) matching any glob
    read(files, cataloger, path)  -> bytes, or a CatalogError saying why the content is missing
    missing(files, cataloger, path) -> that CatalogError (for readers that open files.open(path))
    read_optional(files, path)    -> bytes, or None: a companion file whose absence is normal
    read_lines(files, path)       -> its stripped non-empty lines ([] when absent)
    marked(files, literal)        -> (path, marks) of executables where the scan found a marker
    parse_each(files, cataloger, paths, parse) -> what `parse(content, path)` yields for each
                                  file, with a missing content or a CatalogFileError as a CatalogError

Every read follows symlinks, as the package managers do when they open these files.

Symlinks are left out on purpose: the file they point at is cataloged under its own
path, once, as Syft does when it resolves a link to its real path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..filetree import KIND_OF, ImageFiles
from ..scan import glob_filter
from ..scan.model import Mark
from .model import CatalogError, CatalogFileError, Package

REGULAR = ("file", "hardlink")


def regular_files(files: ImageFiles, globs: tuple[str, ...]) -> list[str]:
    kinds = files.types
    return [p for p in glob_filter(globs, files.paths) if KIND_OF[kinds[files.row(p) or 0]] in REGULAR]


def marked(files: ImageFiles, literal: bytes) -> Iterator[tuple[str, list[Mark]]]:
    """Executables (regular files) holding a marker, in path order, with its marks: a window
    starts with its marker, so a cataloger tells its own by the literal, whatever the index."""
    for path in sorted(files.marks):
        entry = files.get(path)
        if entry is None or entry.record.type not in REGULAR:
            continue
        mine = [m for m in files.marks[path] if m.window.startswith(literal)]
        if mine:
            yield path, mine


def read(files: ImageFiles, cataloger: str, path: str) -> bytes | CatalogError:
    content = files.read(path)
    return content if content is not None else missing(files, cataloger, path)


def missing(files: ImageFiles, cataloger: str, path: str) -> CatalogError:
    """Why the content of `path` is not there."""
    entry = files.get(path)
    target = entry.record.link if entry is not None and entry.record.type == "hardlink" else path
    if path in files.too_big_to_capture or target in files.too_big_to_capture:
        size = entry.record.size if entry is not None else 0
        return CatalogError(cataloger, path, f"too big to capture ({size} bytes over the scan's capture limit)")
    return CatalogError(cataloger, path, "content not captured by the scan")


def read_optional(files: ImageFiles, path: str) -> bytes | None:
    return files.read(path)


def read_lines(files: ImageFiles, path: str) -> list[str]:
    return lines(read_optional(files, path))


def lines(content: bytes | None) -> list[str]:
    """Stripped non-empty lines; bytes that are not UTF-8 stay as surrogates, as in the file table's paths."""
    if content is None:
        return []
    return [s for ln in content.decode("utf-8", "surrogateescape").splitlines() if (s := ln.strip())]


def parse_each(
    files: ImageFiles,
    cataloger: str,
    paths: Iterable[str],
    parse: Callable[[bytes, str], Iterable[Package | CatalogError]],
) -> Iterator[Package | CatalogError]:
    """The per-file loop every cataloger runs: one file's failure is that file's error."""
    for path in paths:
        content = read(files, cataloger, path)
        if isinstance(content, CatalogError):
            yield content
            continue
        try:
            yield from parse(content, path)
        except CatalogFileError as e:
            yield CatalogError(cataloger, e.path, e.reason)
