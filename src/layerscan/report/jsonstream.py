"""Write one JSON document piece by piece, so a 100k-file report never exists as one string.

A report is described as nested `Obj`/`Arr` nodes whose items are produced while
writing (generators are fine); any other value is encoded whole with `json.dumps`.
A table of 100k+ rows (a file list) comes as `EncodedObj`/`EncodedArr`: its members
already JSON text, made by the writer a column at a time and written in batches,
with the separators `json.dumps` uses, so the document is the same to the byte.
"""

from __future__ import annotations

import errno
import functools
import json
import json.encoder
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from types import TracebackType
from typing import TextIO, TypeAlias

from ..aside import Later, aside

# A str as JSON text, as json.dumps writes it (ASCII, escapes included): the C encoder itself.
string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_BATCH = 256  # members per write: few calls, and never more than ~100 KB at once


class Obj:
    """A JSON object whose (key, value) pairs are produced lazily."""

    def __init__(self, items: Iterable[tuple[str, Json] | Aside]) -> None:
        self.items = items


class Arr:
    """A JSON array whose values are produced lazily; each value goes on its own line."""

    def __init__(self, values: Iterable[Json]) -> None:
        self.values = values


class Aside:
    """Members of an Obj (in its items, where a (key, value) pair would be) that a forked child
    writes straight to the output while this process renders the rest of the document into
    memory, to write it after the child's part (see aside.py): for a big part that needs nothing
    from the rest; it holds at least one member. Where there is no child (no fork, or an output
    with no file descriptor to share) the members are written in place: the same bytes either way."""

    def __init__(self, items: Iterable[tuple[str, Json]]) -> None:
        self.items = items


class EncodedObj:
    """A JSON object whose members come as JSON text, '"key": value'."""

    def __init__(self, members: Iterable[str]) -> None:
        self.members = members


class EncodedArr:
    """A JSON array whose values come as JSON text; each value goes on its own line."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = values


# A value a writer hands to dump: JSON built whole, or lazily through Obj and Arr.
# Mapping and Sequence (not dict and list) so that a dict[str, str] is one too.
Json: TypeAlias = (
    "str | int | float | bool | None | Sequence[Json] | Mapping[str, Json] | Obj | Arr | EncodedObj | EncodedArr"
)


# json.dumps' own encoder (its defaults), without dumps' per-call argument handling.
_encode: Callable[[object], str] = json.JSONEncoder().encode
_LAZY = (Obj, Arr, EncodedObj, EncodedArr)


def dump(value: Json, out: TextIO) -> None:
    with _Output(out) as sink:
        _dump(value, sink)


def _dump(value: Json, out: _Output) -> None:
    if isinstance(value, Obj):
        out.write("{")
        _members(value.items, out)
        out.write("}")
    elif isinstance(value, Arr):
        out.write("[")
        sep = "\n"
        for item in value.values:
            out.write(sep)
            _dump(item, out)
            sep = ",\n"
        out.write("\n]" if sep != "\n" else "]")
    elif isinstance(value, EncodedObj):
        out.write("{")
        _batches(value.members, ", ", out)
        out.write("}")
    elif isinstance(value, EncodedArr):
        out.write("[")
        if _batches(value.values, ",\n", out, first="\n"):
            out.write("\n")
        out.write("]")
    else:
        out.write(_encode(value))


def _members(items: Iterable[tuple[str, Json] | Aside], out: _Output) -> None:
    """Write an Obj's members in batches. A lazy value is written in place: the pending
    batch goes first, ending with its key, then the value is dumped after it."""
    lead, batch = "", list[str]()
    for entry in items:
        if isinstance(entry, Aside):
            if batch:
                out.write(lead + ", ".join(batch))
                lead, batch = ", ", []
            out.aside(functools.partial(_members_of, entry, lead))
            lead = ", "
            continue
        key, item = entry
        if isinstance(item, _LAZY):
            batch.append(f"{string(key)}: ")
            out.write(lead + ", ".join(batch))
            _dump(item, out)
            lead, batch = ", ", []
        else:
            batch.append(f"{string(key)}: {_encode(item)}")
            if len(batch) >= _BATCH:
                out.write(lead + ", ".join(batch))
                lead, batch = ", ", []
    if batch:
        out.write(lead + ", ".join(batch))


def _members_of(aside: Aside, lead: str, out: _Output) -> None:
    for key, value in aside.items:
        out.write(f"{lead}{string(key)}: ")
        _dump(value, out)
        lead = ", "
    if not lead:  # the members after it would start with a separator
        raise ValueError("an Aside holds no member")


class _Output:
    """Where dump writes: the output itself, or, while a child writes an Aside's members to the
    output's file, an anonymous in-memory file (not this process's memory: a report's tail can
    be tens of MB), copied to the output by the kernel after the child's part. One child at a time."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.write: Callable[[str], object] = out.write
        self._child: Later[None] | None = None
        self._held: TextIO | None = None

    def aside(self, render: Callable[[_Output], None]) -> None:
        if self._child is not None or not _has_descriptor(self._out):
            render(self)
            return
        self._out.flush()  # the child continues the file where this process stopped

        def child() -> None:
            render(_Output(self._out))
            self._out.flush()

        later = aside(child)
        if not later.forked:  # no child here (aside.py says when): written in place, now
            later.result()
            return
        self._child = later
        self._held = open(os.memfd_create("layerscan-report"), "w+", encoding="utf-8")  # noqa: SIM115
        self.write = self._held.write

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: BaseException | TracebackType | None) -> None:
        child, held = self._child, self._held
        self._child = self._held = None
        if child is None:
            return
        with child:  # killed and reaped if it is not waited for here
            if held is None:  # the in-memory file could not be made
                return
            with held:
                if kind is None:
                    child.result()
                    held.flush()
                    _copy(held.fileno(), held.tell(), self._out.fileno())


def _copy(source: int, size: int, out: int) -> None:
    """Bytes 0..size of file `source` to the descriptor `out`, in the kernel where it can."""
    done = 0
    try:
        while done < size:
            done += os.sendfile(out, source, done, size - done)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS) or done:  # a real write error, or half sent
            raise
        while done < size:  # an output sendfile does not take
            chunk = os.pread(source, min(size - done, 1 << 20), done)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
            done += len(chunk)


def _has_descriptor(out: TextIO) -> bool:
    try:
        out.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both an OSError and a ValueError
        return False
    return True


def _batches(texts: Iterable[str], sep: str, out: _Output, first: str = "") -> bool:
    """Write texts joined by sep (after `first` when there is any); whether there was one.
    Batches are cut in C (islice): a table has a member per file."""
    texts = iter(texts)
    batch = list(islice(texts, _BATCH))
    if not batch:
        return False
    out.write(first + sep.join(batch))
    while batch := list(islice(texts, _BATCH)):
        out.write(sep + sep.join(batch))
    return True
