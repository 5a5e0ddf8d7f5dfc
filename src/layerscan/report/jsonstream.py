"""Write one JSON document piece by piece, so a 100k-file report never exists as one string.

A report is described as nested `Obj`/`Arr` nodes whose items are produced while
writing (generators are fine); any other value is encoded whole with `json.dumps`.
A table of 100k+ rows (a file list) comes as `EncodedObj`/`EncodedArr`: its members
already JSON text, made by the writer a column at a time and written in batches,
with the separators `json.dumps` uses, so the document is the same to the byte.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import TextIO, TypeAlias

# A str as JSON text, as json.dumps writes it (ASCII, escapes included): the C encoder itself.
string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_BATCH = 256  # members per write: few calls, and never more than ~100 KB at once


class Obj:
    """A JSON object whose (key, value) pairs are produced lazily."""

    def __init__(self, items: Iterable[tuple[str, Json]]) -> None:
        self.items = items


class Arr:
    """A JSON array whose values are produced lazily; each value goes on its own line."""

    def __init__(self, values: Iterable[Json]) -> None:
        self.values = values


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
    if isinstance(value, Obj):
        out.write("{")
        _members(value.items, out)
        out.write("}")
    elif isinstance(value, Arr):
        out.write("[")
        sep = "\n"
        for item in value.values:
            out.write(sep)
            dump(item, out)
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


def _members(items: Iterable[tuple[str, Json]], out: TextIO) -> None:
    """Write an Obj's members in batches. A lazy value is written in place: the pending
    batch goes first, ending with its key, then the value is dumped after it."""
    lead, batch = "", []
    for key, item in items:
        if isinstance(item, _LAZY):
            batch.append(f"{string(key)}: ")
            out.write(lead + ", ".join(batch))
            dump(item, out)
            lead, batch = ", ", []
        else:
            batch.append(f"{string(key)}: {_encode(item)}")
            if len(batch) >= _BATCH:
                out.write(lead + ", ".join(batch))
                lead, batch = ", ", []
    if batch:
        out.write(lead + ", ".join(batch))


def _batches(texts: Iterable[str], sep: str, out: TextIO, first: str = "") -> bool:
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
