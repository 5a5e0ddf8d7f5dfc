"""Write one JSON document piece by piece, so a 100k-file report never exists as one string.

A report is described as nested `Obj`/`Arr` nodes whose items are produced while
writing (generators are fine); any other value is encoded whole with `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO, TypeAlias


class Obj:
    """A JSON object whose (key, value) pairs are produced lazily."""

    def __init__(self, items: Iterable[tuple[str, Json]]) -> None:
        self.items = items


class Arr:
    """A JSON array whose values are produced lazily; each value goes on its own line."""

    def __init__(self, values: Iterable[Json]) -> None:
        self.values = values


# A value a writer hands to dump: JSON built whole, or lazily through Obj and Arr.
# Mapping and Sequence (not dict and list) so that a dict[str, str] is one too.
Json: TypeAlias = "str | int | float | bool | None | Sequence[Json] | Mapping[str, Json] | Obj | Arr"


def dump(value: Json, out: TextIO) -> None:
    if isinstance(value, Obj):
        out.write("{")
        sep = ""
        for key, item in value.items:
            out.write(sep)
            out.write(json.dumps(key))
            out.write(": ")
            dump(item, out)
            sep = ", "
        out.write("}")
    elif isinstance(value, Arr):
        out.write("[")
        sep = "\n"
        for item in value.values:
            out.write(sep)
            dump(item, out)
            sep = ",\n"
        out.write("\n]" if sep != "\n" else "]")
    else:
        out.write(json.dumps(value))
