"""The nesting every analyzer output has in the export: {element: {"base": {key: value}}}.

Anchore writes each analyzer element as a kvfile whose entries land under "base".
"""

from __future__ import annotations

from collections.abc import Iterable

from ..jsonstream import EncodedObj, Json, Obj


def base(items: Iterable[tuple[str, Json]]) -> Obj:
    return Obj([("base", Obj(items))])


def encoded_base(members: Iterable[str]) -> Obj:
    """base() of entries that come as JSON text ('"key": value'): for elements of a row per file."""
    return Obj([("base", EncodedObj(members))])


def element(name: str, items: Iterable[tuple[str, Json]]) -> Obj:
    return Obj([(name, base(items))])
