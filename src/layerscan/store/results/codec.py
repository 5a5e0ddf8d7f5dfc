"""A LayerResult or an Analysis <-> bytes, for the result cache.

    encode(kind, subject, value) -> bytes          decode(kind, data) -> the value
    header(data) -> (kind, subject)                                (reads no more than the header)

A value is a header (magic, FORMAT, kind, the subject digest) and one zstd frame with a
checksum. Inside the frame, a list of parts: one JSON part per record holding its small
fields, then a binary part per column of its bulk fields (the EntryTable columns as raw
buffers, file tables column by column, file contents back to back).

Not pickle: a value read from a shared Redis must never be able to run code. Decoding is
driven by the type hints of the value types, so a field added to LayerResult or Analysis
is carried without a change here. Anything wrong with a value (truncated, corrupt, another
FORMAT, a shape that does not fit the types) raises CodecError, which the cache treats as
a miss.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import functools
import gc
import itertools
import json
import operator
import struct
import sys
import types
import typing
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyzstd

from ...analysis import Analysis
from ...scan.model import Captured, LayerResult

MAGIC = b"LSRC"
FORMAT = 1  # bump when the encoding changes; it is part of every cache key too
LAYER, IMAGE = "layer", "image"
_KINDS = {LAYER: 1, IMAGE: 2}
_TYPES: dict[str, type] = {LAYER: LayerResult, IMAGE: Analysis}
_HEADER = struct.Struct("<4sHBH")  # magic, FORMAT, kind, length of the subject
_ZSTD_OPTIONS = {int(pyzstd.CParameter.compressionLevel): 1, int(pyzstd.CParameter.checksumFlag): 1}

Hint = Any  # a type hint, as typing.get_type_hints returns it
Convert = Callable[[Any], Any]

# Captured contents are stored as their bytes: a spilled capture is never encoded (the
# cache does not store a layer result holding one; a Spill in a value is a TypeError).
_STORED_AS: dict[Hint, Hint] = {
    collections.abc.Mapping[str, Captured]: collections.abc.Mapping[str, bytes],
    dict[str, Captured]: dict[str, bytes],
}


class CodecError(Exception):
    """A value that cannot be decoded; the result cache counts it as a miss."""


# ---------------------------------------------------------------------------- the public calls


def encode(kind: str, subject: str, value: LayerResult | Analysis) -> bytes:
    w = _Writer()
    _put_record(w, _TYPES[kind], value)
    raw = subject.encode()
    # Compressed part by part: the payload (tens of MB for a big image) is never joined in memory.
    zstd = pyzstd.ZstdCompressor(_ZSTD_OPTIONS)
    out = [_HEADER.pack(MAGIC, FORMAT, _KINDS[kind], len(raw)), raw, zstd.compress(w.table())]
    out += [zstd.compress(part) for part in w.parts]
    out.append(zstd.flush())
    return b"".join(out)


def decode(kind: str, data: bytes) -> Any:
    """The LayerResult (kind LAYER) or Analysis (kind IMAGE) in `data`; CodecError if it is not one."""
    found, _, start = _parse_header(data)
    if found != kind:
        raise CodecError(f"a {found} entry where a {kind} entry was expected")
    try:
        payload = pyzstd.decompress(memoryview(data)[start:])
    except pyzstd.ZstdError as e:
        raise CodecError(f"zstd: {e}") from None
    try:
        with _gc_paused():
            r = _Reader(payload)
            value = _get_record(r, _TYPES[kind])
            r.finish()
    except CodecError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        struct.error,
        RecursionError,
    ) as e:
        raise CodecError(f"{type(e).__name__}: {e}") from None
    return value


def header(data: bytes) -> tuple[str, str]:
    """(kind, subject) of a value, from its first bytes only."""
    kind, subject, _ = _parse_header(data)
    return kind, subject


def _parse_header(data: bytes) -> tuple[str, str, int]:
    if len(data) < _HEADER.size:
        raise CodecError("shorter than its header")
    magic, version, kind_code, n = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CodecError("not a result cache value")
    if version != FORMAT:
        raise CodecError(f"format {version}, this layerscan reads {FORMAT}")
    kind = next((k for k, code in _KINDS.items() if code == kind_code), None)
    if kind is None:
        raise CodecError(f"unknown kind {kind_code}")
    start = _HEADER.size + n
    try:
        subject = bytes(data[_HEADER.size : start]).decode()
    except UnicodeDecodeError:
        raise CodecError("subject is not UTF-8") from None
    return kind, subject, start


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding makes hundreds of thousands of objects at once, all of which stay reachable:
    collecting them as they appear doubles the time and frees nothing. Afterwards they (and
    whatever else is young at that moment) go straight to the oldest generation, as freeze
    then unfreeze moves them without looking at each, instead of being walked by the next
    young collection; unless somebody else froze objects, whom an unfreeze would disturb."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if was:
            gc.enable()


# ---------------------------------------------------------------------------- framing


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes | bytearray | memoryview] = []

    def add(self, part: bytes | bytearray | memoryview) -> None:
        self.parts.append(part)

    def json(self, doc: Any) -> None:
        # ensure_ascii keeps lone surrogates (undecodable tar names) as \u escapes: valid UTF-8 either way.
        self.add(json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("ascii"))

    def table(self) -> bytes:
        """What the payload starts with: the number of parts and their sizes; the parts follow."""
        return struct.pack(f"<I{len(self.parts)}Q", len(self.parts), *(len(p) for p in self.parts))


class _Reader:
    def __init__(self, payload: bytes) -> None:
        view = memoryview(payload)
        if len(view) < 4:
            raise CodecError("no part table")
        (count,) = struct.unpack_from("<I", view)
        table = 4 + 8 * count
        if len(view) < table:
            raise CodecError("truncated part table")
        sizes = struct.unpack_from(f"<{count}Q", view, 4)
        if table + sum(sizes) != len(view):
            raise CodecError("parts do not add up to the payload")
        ends = list(itertools.accumulate(sizes, initial=table))
        self.parts = [view[a:b] for a, b in itertools.pairwise(ends)]
        self.next_part = 0

    def take(self) -> memoryview:
        if self.next_part >= len(self.parts):
            raise CodecError("fewer parts than the types need")
        part = self.parts[self.next_part]
        self.next_part += 1
        return part

    def json(self) -> Any:
        return json.loads(self.take().tobytes())

    def finish(self) -> None:
        if self.next_part != len(self.parts):
            raise CodecError("more parts than the types need")


# ---------------------------------------------------------------------------- records: small fields as JSON, bulk fields as parts


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Hint], ...]:
    hints = typing.get_type_hints(cls)
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls) if f.init]
    else:
        names = list(cls._fields)  # type: ignore[attr-defined]
    return tuple((name, _STORED_AS.get(h, h)) for name in names for h in [_literal_type(hints[name])])


def _split(hint: Hint) -> tuple[Any, tuple[Any, ...]]:
    """(origin, arguments) of a generic hint: (list, (str,)) for list[str]; (None, ()) for str."""
    return typing.get_origin(hint), typing.get_args(hint)


@functools.cache
def _maker(cls: type) -> Callable[..., Any]:
    """A function making a record from its field values, in field order."""
    if _is_namedtuple(cls) or not any(f.kw_only for f in dataclasses.fields(cls)):
        return cls
    names = [name for name, _ in _fields(cls)]
    return lambda *values: cls(**dict(zip(names, values, strict=True)))


def _literal_type(hint: Hint) -> Hint:
    """Literal["a", "b"] is stored as the type of its values."""
    origin, args = _split(hint)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        return kinds.pop() if len(kinds) == 1 else Any
    return hint


def _is_record(hint: Hint) -> bool:
    return isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_namedtuple(hint))


def _is_namedtuple(hint: Hint) -> bool:
    return isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields")


@functools.cache
def _is_bulk(hint: Hint) -> bool:
    """Fields stored as binary parts rather than inside the record's JSON."""
    origin, args = _split(hint)
    if hint in (bytearray, array):
        return True
    if origin is list:
        return _columnar(args[0])
    if origin in (dict, collections.abc.Mapping) and args and args[0] is str:
        return _columnar(args[1])
    return dataclasses.is_dataclass(hint) and isinstance(hint, type) and any(_is_bulk(h) for _, h in _fields(hint))


def _put_record(w: _Writer, cls: type, value: Any) -> None:
    small: list[Any] = []
    bulk: list[tuple[Hint, Any]] = []
    for name, hint in _fields(cls):
        v = getattr(value, name)
        if _is_bulk(hint):
            bulk.append((hint, v))
            small.append(None)
        else:
            small.append(_dumper(hint)(v))
    w.json(small)
    for hint, v in bulk:
        _put_bulk(w, hint, v)


def _get_record(r: _Reader, cls: type) -> Any:
    fields = _fields(cls)
    small = r.json()
    if not isinstance(small, list) or len(small) != len(fields):
        raise CodecError(f"{cls.__name__}: {len(fields)} fields expected")
    values = [
        _get_bulk(r, hint) if _is_bulk(hint) else _loader(hint)(v) for (_, hint), v in zip(fields, small, strict=True)
    ]
    return _maker(cls)(*values)


def _put_bulk(w: _Writer, hint: Hint, value: Any) -> None:
    origin, args = _split(hint)
    if hint in (bytearray, array) or origin is list:
        _put_column(w, hint, value)
    elif origin in (dict, collections.abc.Mapping):
        _put_column(w, list[str], list(value))
        _put_column(w, _list_of(args[1]), list(value.values()))
    else:
        _put_record(w, hint, value)


def _get_bulk(r: _Reader, hint: Hint) -> Any:
    origin, args = _split(hint)
    if hint in (bytearray, array) or origin is list:
        return _get_column(r, hint)
    if origin in (dict, collections.abc.Mapping):
        keys = _get_column(r, list[str])
        values = _get_column(r, _list_of(args[1]))
        if len(keys) != len(values):
            raise CodecError("a mapping with more keys than values")
        return dict(zip(keys, values, strict=True))
    return _get_record(r, hint)


# ---------------------------------------------------------------------------- columns


@functools.cache
def _columnar(hint: Hint) -> bool:
    """Element types a list of which is stored column by column: scalars, records (a column
    per field), tuples of a columnar type, optional ones, and unions of records."""
    if hint in (str, int, float, bool, bytes) or _is_record(hint):
        return True
    origin, args = _split(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _columnar(args[0])
    members = _union_members(hint)
    if members is None:
        return False
    if len(members) == 1:
        return _columnar(members[0])
    return all(_is_record(m) for m in members)


_ARRAY_OF = {int: "q", bool: "B", float: "d"}


def _list_of(elem: Hint) -> Hint:
    return types.GenericAlias(list, (elem,))


_NONE = 255  # the tag of None in a union column


def _put_column(w: _Writer, hint: Hint, values: Any) -> None:
    """One column: a bytearray, an array, or a list[element] (see _columnar; anything else as JSON)."""
    if hint is bytearray:
        w.add(values)
        return
    if hint is array:
        w.add(values.typecode.encode() + _little_endian(values).tobytes())
        return
    (elem,) = typing.get_args(hint)
    origin, args = _split(elem)
    members = _union_members(elem)
    if elem is str:
        _put_strs(w, values)
    elif elem in _ARRAY_OF:
        w.add(_little_endian(array(_ARRAY_OF[elem], values)).tobytes())
    elif elem is bytes:
        w.add(_little_endian(array("Q", map(len, values))).tobytes())
        w.add(b"".join(values))
    elif not _columnar(elem):
        w.json([_dumper(elem)(v) for v in values])
    elif origin is tuple:  # the lengths, then every item in one column
        w.add(_little_endian(array("Q", map(len, values))).tobytes())
        _put_column(w, _list_of(args[0]), list(itertools.chain.from_iterable(values)))
    elif members is not None:  # a tag per value (which member, or None), then each member's column
        index = {m: i for i, m in enumerate(members)}
        w.add(bytes(_NONE if v is None else index[type(v)] if len(members) > 1 else 0 for v in values))
        for m in members:
            same = [v for v in values if v is not None and (len(members) == 1 or type(v) is m)]
            _put_column(w, _list_of(m), same)
    else:  # a record: one column per field
        fields = _fields(elem)
        if _is_namedtuple(elem):
            columns: list[Any] = list(zip(*values, strict=True)) if values else [()] * len(fields)
        else:
            columns = [list(map(operator.attrgetter(name), values)) for name, _ in fields]
        for (_, h), column in zip(fields, columns, strict=True):
            _put_column(w, _list_of(h), column)


def _get_column(r: _Reader, hint: Hint) -> Any:
    if hint is bytearray:
        return bytearray(r.take())
    if hint is array:
        part = r.take()
        if len(part) < 1:
            raise CodecError("an array without its type code")
        return _array(part[1:], chr(part[0]))
    (elem,) = typing.get_args(hint)
    origin, args = _split(elem)
    members = _union_members(elem)
    if elem is str:
        return _get_strs(r)
    if elem in _ARRAY_OF:
        column = _array(r.take(), _ARRAY_OF[elem]).tolist()
        return list(map(bool, column)) if elem is bool else column
    if elem is bytes:
        ends = list(itertools.accumulate(_array(r.take(), "Q"), initial=0))
        data = r.take()
        if ends[-1] != len(data):
            raise CodecError("a column of byte strings that does not add up")
        return [data[a:b].tobytes() for a, b in itertools.pairwise(ends)]
    if not _columnar(elem):
        return list(map(_loader(elem), r.json()))
    if origin is tuple:
        ends = list(itertools.accumulate(_array(r.take(), "Q"), initial=0))
        flat = _get_column(r, _list_of(args[0]))
        if ends[-1] != len(flat):
            raise CodecError("a column of tuples that does not add up")
        return [tuple(flat[a:b]) for a, b in itertools.pairwise(ends)]
    if members is not None:
        tags = r.take()
        by_member = [iter(_get_column(r, _list_of(m))) for m in members]
        try:
            out = [None if t == _NONE else next(by_member[t]) for t in tags]
        except (StopIteration, IndexError):
            raise CodecError("a union column whose tags and values disagree") from None
        if any(next(it, None) is not None for it in by_member):
            raise CodecError("a union column with values no tag names")
        return out
    fields = _fields(elem)
    columns = [_get_column(r, _list_of(h)) for _, h in fields]
    if len({len(c) for c in columns}) > 1:
        raise CodecError(f"{elem.__name__} columns of different lengths")
    return _make_many(elem, columns)


def _make_many(cls: type, columns: list[list[Any]]) -> list[Any]:
    """Records from their columns (a file table has 100k+ rows, a dpkg database as many package files)."""
    if _is_namedtuple(cls):  # tuple.__new__ over zip: no Python-level __new__ per row
        return list(map(functools.partial(tuple.__new__, cls), zip(*columns, strict=True)))
    return list(map(_maker(cls), *columns))


def _put_strs(w: _Writer, values: Sequence[str]) -> None:
    """Joined with NULs, which split back fastest; by lengths when a string holds a NUL itself."""
    text = "\0".join(values)
    split = text.count("\0") == max(len(values) - 1, 0)
    head = struct.pack("<QB", len(values), split)
    if split:
        w.add(head)
    else:
        w.add(head + _little_endian(array("Q", map(len, values))).tobytes())
        text = "".join(values)
    w.add(text.encode("utf-8", "surrogatepass"))  # tar names that are not UTF-8 keep their escapes


def _get_strs(r: _Reader) -> list[str]:
    head = r.take()
    if len(head) < 9:
        raise CodecError("a string column without its count")
    count, split = struct.unpack_from("<QB", head)
    text = str(r.take(), "utf-8", "surrogatepass")
    if split:
        out = text.split("\0") if count else []
    else:
        ends = list(itertools.accumulate(_array(head[9:], "Q"), initial=0))
        if ends[-1] != len(text):
            raise CodecError("a string column that does not add up")
        out = [text[a:b] for a, b in itertools.pairwise(ends)]
    if len(out) != count:
        raise CodecError(f"a column of {count} strings holds {len(out)}")
    return out


def _array(part: memoryview, typecode: str) -> array:
    if typecode not in "bBhHiIlLqQfd":
        raise CodecError(f"array type code {typecode!r}")
    a = array(typecode)
    if len(part) % a.itemsize:
        raise CodecError(f"an array of {a.itemsize}-byte items with {len(part)} bytes")
    a.frombytes(part)
    return _little_endian(a)


def _little_endian(a: array) -> array:
    """Columns are little-endian on disk, so that hosts sharing a Redis agree (a no-op on x86 and arm64)."""
    if sys.byteorder == "big":
        a = array(a.typecode, a)
        a.byteswap()
    return a


# ---------------------------------------------------------------------------- small values <-> JSON, by type hint


def _identity(v: Any) -> Any:
    return v


def _optional(inner: Convert) -> Convert:
    def convert(v: Any) -> Any:
        return None if v is None else inner(v)

    return convert


def _union_members(hint: Hint) -> list[Hint] | None:
    origin: Any = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return None


def _dumper(hint: Hint) -> Convert:
    """A function turning a value of type `hint` into JSON-ready data."""
    return _json_form(hint)[0]


def _loader(hint: Hint) -> Convert:
    """The inverse of _dumper(hint)."""
    return _json_form(hint)[1]


@functools.cache
def _json_form(hint: Hint) -> tuple[Convert, Convert]:
    """(dump, load) for values of type `hint`: records as lists of their fields, unions of
    records tagged with the record's name, tuples and sets as lists."""
    origin, args = _split(hint)
    members = _union_members(hint)
    if members is not None:
        if len(members) == 1:
            dump, load = _json_form(members[0])
            return _optional(dump), _optional(load)
        if not all(_is_record(m) for m in members):
            return _identity, _identity  # scalars: JSON tells them apart
        by_type = {m: (m.__name__, _dumper(m)) for m in members}
        by_name = {m.__name__: _loader(m) for m in members}

        def tag(v: Any) -> Any:
            name, dump_member = by_type[type(v)]
            return [name, dump_member(v)]

        return _optional(tag), _optional(lambda v: by_name[v[0]](v[1]))
    if origin in (tuple, list, set, frozenset, collections.abc.Sequence, collections.abc.Set):
        make: Callable[[Any], Any] = {list: list, set: set, frozenset: frozenset}.get(origin, tuple)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            forms = [_json_form(a) for a in args]
            return (
                lambda v: [d(x) for (d, _), x in zip(forms, v, strict=True)],
                lambda v: tuple(ld(x) for (_, ld), x in zip(forms, v, strict=True)),
            )
        dump, load = _json_form(args[0]) if args else (_identity, _identity)
        return (
            list if dump is _identity else (lambda v: [dump(x) for x in v]),
            make if load is _identity else (lambda v: make(map(load, v))),
        )
    if origin in (dict, collections.abc.Mapping):
        if args[0] is not str:
            raise TypeError(f"no JSON form for {hint!r}: keys must be strings")
        dump, load = _json_form(args[1])
        return (
            dict if dump is _identity else (lambda v: {k: dump(x) for k, x in v.items()}),
            dict if load is _identity else (lambda v: {k: load(x) for k, x in v.items()}),
        )
    if _is_record(hint):
        fields = [(name, *_json_form(h)) for name, h in _fields(hint)]
        make = _maker(hint)

        def record(v: Any) -> Any:
            if len(v) != len(fields):
                raise CodecError(f"{hint.__name__}: {len(fields)} fields expected, {len(v)} found")
            return make(*(ld(x) for (_, _, ld), x in zip(fields, v, strict=True)))

        return (lambda v: [d(getattr(v, name)) for name, d, _ in fields]), record
    if hint in (str, int, float, bool, type(None), dict, list, Any, object):
        return _identity, _identity
    raise TypeError(f"no JSON form for {hint!r}")
