"""The nesting every analyzer output has in the export: {element: {"base": {key: value}}}.

Anchore writes each analyzer element as a kvfile whose entries land under "base".
"""

from __future__ import annotations

from collections.abc import Iterable

from ..jsonstream import Json, Obj


def base(items: Iterable[tuple[str, Json]]) -> Obj:
    return Obj([("base", Obj(items))])


def element(name: str, items: Iterable[tuple[str, Json]]) -> Obj:
    return Obj([(name, base(items))])
