"""Capture globs: the one definition of their dialect, and the Python matcher.

A glob names files by their whole absolute path ("/var/lib/dpkg/status"); a glob
without a leading "/" gets one. Paths are matched as the str that decoding the tar's
bytes as UTF-8 with surrogateescape gives (an undecodable byte is one character).

    **/    zero or more whole directories: nothing, or any text that ends in "/"
    **     (not before "/") any text, "/" included
    *      any text without "/"
    ?      one character, not "/"
    [...]  one character, not "/", from the set: members and ranges ("a-z", by code
           point); "[!...]" or "[^...]" is the complement; a "]" right after "[" or "[!"
           is a member; a reversed range ("z-a") holds nothing; a "[" with no "]" after
           it is itself
    other  itself; there are no escapes ("\\" is a backslash)

`parse()` is the only reader of this syntax. It compiles a glob to the literal suffix
every match ends with, the literal prefix it starts with, and, for what lies between,
the ops of a Thompson NFA. `GlobSet` runs them here (reference engine, catalogers);
`native_program()` encodes them for ext/glob.c, which runs the same ops in the native
scanner. Neither matcher ever trusts a regex engine, so neither can miss a match the
other finds (Vectorscan 5.4.9 missed some, issue 8).
"""

from __future__ import annotations

import array
import dataclasses
import enum
import functools
from collections.abc import Iterable, Sequence


class Op(enum.IntEnum):
    """NFA ops; ext/glob.h has the same numbers (LS_OP_*)."""

    LIT = 0  # arg: the code point
    ANY = 1  # ?
    CLASS = 2  # arg: index into Glob.classes
    STAR = 3  # *: loops on any character but "/"
    ANYSTAR = 4  # **: loops on any character
    OPT = 5  # consumes nothing; continues at the next op or `arg` ops after it


SLASH = ord("/")
# `**/` is "nothing, or anything then /": skip the next two ops, or run them.
DIRS = ((Op.OPT, 2), (Op.ANYSTAR, 0), (Op.LIT, SLASH))
STEPS_KEPT = 1 << 14  # per glob; a path only ever meets a few state sets


@dataclasses.dataclass(frozen=True)
class CharClass:
    negated: bool
    ranges: tuple[tuple[int, int], ...]  # inclusive code point ranges; a member c is (c, c)

    def __contains__(self, cp: int) -> bool:
        return cp != SLASH and any(lo <= cp <= hi for lo, hi in self.ranges) != self.negated


@dataclasses.dataclass(frozen=True)
class Glob:
    """One compiled glob: a path matches when it is prefix + (text the ops accept) + suffix."""

    text: str
    prefix: str
    suffix: str
    ops: tuple[tuple[Op, int], ...]
    classes: tuple[CharClass, ...]

    @functools.cached_property
    def _eps(self) -> tuple[int, ...]:
        """For each op, the bit set of the ops it continues at without consuming."""
        eps = []
        for i, (op, arg) in enumerate(self.ops):
            if op in (Op.STAR, Op.ANYSTAR):
                eps.append(1 << (i + 1))
            elif op is Op.OPT:
                eps.append(1 << (i + 1) | 1 << (i + 1 + arg))
            else:
                eps.append(0)
        return tuple(eps)

    def matches(self, path: str) -> bool:
        p, s = len(self.prefix), len(self.suffix)
        if len(path) < p + s or not path.startswith(self.prefix) or not path.endswith(self.suffix):
            return False
        return self._accepts(path[p : len(path) - s])

    @functools.cached_property
    def _start(self) -> int:
        return self._close(1)

    @functools.cached_property
    def _steps(self) -> dict[tuple[int, str], int]:
        """(states, character) -> states after it: the NFA made a DFA lazily, as paths need it."""
        return {}

    def _close(self, states: int) -> int:
        """`states` with every op reachable from them without consuming."""
        todo, last = states, len(self.ops)
        while todo:
            low = todo & -todo
            todo ^= low
            i = low.bit_length() - 1
            if i < last:
                new = self._eps[i] & ~states
                states |= new
                todo |= new
        return states

    def _step(self, states: int, ch: str) -> int:
        """Thompson's simulation, one character: bit i of `states` is set when op i is next."""
        ops, last, cp, moved = self.ops, len(self.ops), ord(ch), 0
        while states:
            low = states & -states
            states ^= low
            i = low.bit_length() - 1
            if i == last:
                continue
            op, arg = ops[i]
            if op is Op.ANYSTAR or (op is Op.STAR and cp != SLASH):
                moved |= low
            elif (
                (op is Op.LIT and cp == arg)
                or (op is Op.ANY and cp != SLASH)
                or (op is Op.CLASS and cp in self.classes[arg])
            ):
                moved |= low << 1
        return self._close(moved)

    def _accepts(self, text: str) -> bool:
        steps, states = self._steps, self._start
        for ch in text:
            after = steps.get((states, ch))
            if after is None:
                if len(steps) > STEPS_KEPT:
                    steps.clear()
                after = steps[states, ch] = self._step(states, ch)
            if not after:
                return False
            states = after
        return bool(states >> len(self.ops) & 1)


def _char_class(glob: str, i: int) -> tuple[CharClass, int] | None:
    """The class whose "[" is at glob[i], and the index after its "]"; None if it has no "]"."""
    start = i + 1
    negated = glob[start : start + 1] in ("!", "^")
    if negated:
        start += 1
    end = glob.find("]", start + 1)  # the first member may be "]"
    if end < 0:
        return None
    body, ranges, k = glob[start:end], [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            lo, hi = ord(body[k]), ord(body[k + 2])
            if lo <= hi:
                ranges.append((lo, hi))
            k += 3
        else:
            ranges.append((ord(body[k]), ord(body[k])))
            k += 1
    return CharClass(negated, tuple(ranges)), end + 1


def _plain(op: tuple[Op, int]) -> bool:
    """A literal that prefix and suffix may hold: not a surrogate, so its UTF-8 bytes
    match a path's bytes exactly where the character matches its characters."""
    return op[0] is Op.LIT and not 0xD800 <= op[1] <= 0xDFFF


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Glob:
    glob = text if text.startswith("/") else "/" + text
    ops: list[tuple[Op, int]] = []
    classes: list[CharClass] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            ops += DIRS
            i += 3
        elif glob.startswith("**", i):
            ops.append((Op.ANYSTAR, 0))
            i += 2
        elif glob[i] in "*?":
            ops.append((Op.STAR if glob[i] == "*" else Op.ANY, 0))
            i += 1
        elif glob[i] == "[" and (found := _char_class(glob, i)) is not None:
            ops.append((Op.CLASS, len(classes)))
            classes.append(found[0])
            i = found[1]
        else:
            ops.append((Op.LIT, ord(glob[i])))
            i += 1
    # Trailing literals first (they make the cheapest test), but none an OPT can skip.
    skippable = {i + d for i, (op, arg) in enumerate(ops) if op is Op.OPT for d in range(1, arg + 1)}
    s = len(ops)
    while s and _plain(ops[s - 1]) and s - 1 not in skippable:
        s -= 1
    p = 0
    while p < s and _plain(ops[p]):
        p += 1
    return Glob(
        text=text,
        prefix="".join(chr(arg) for _, arg in ops[:p]),
        suffix="".join(chr(arg) for _, arg in ops[s:]),
        ops=tuple(ops[p:s]),
        classes=tuple(classes),
    )


def escape(path: str) -> str:
    """The glob that matches this path and nothing else: each glob character in a class of its own."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


class GlobSet:
    """Does a path match any of the globs? Globs are bucketed by the last character of
    their suffix, so a path meets only the few that can end as it does."""

    def __init__(self, globs: Iterable[str]) -> None:
        self.globs = tuple(globs)
        self._by_last: dict[str, list[Glob]] = {}
        self._anywhere: list[Glob] = []
        for g in map(parse, self.globs):
            (self._by_last.setdefault(g.suffix[-1], []) if g.suffix else self._anywhere).append(g)

    def matches(self, path: str) -> bool:
        return any(g.matches(path) for g in self._by_last.get(path[-1:], ())) or any(
            g.matches(path) for g in self._anywhere
        )


@functools.lru_cache(maxsize=64)
def native_program(globs: Sequence[str]) -> bytes:
    """The globs as ext/glob.h's program: uint32 words in native byte order."""
    words = array.array("I", [len(globs)])
    for g in map(parse, globs):
        class_words: list[int] = []
        at: list[int] = []
        for c in g.classes:
            at.append(len(class_words))
            class_words += [int(c.negated), len(c.ranges), *(x for r in c.ranges for x in r)]
        prefix, suffix = g.prefix.encode(), g.suffix.encode()
        words.extend([len(g.ops), len(class_words), len(prefix), len(suffix)])
        words.extend(op | (at[arg] if op is Op.CLASS else arg) << 8 for op, arg in g.ops)
        words.extend(class_words)
        raw = prefix + suffix
        words.frombytes(raw + b"\0" * (-len(raw) % 4))
    return words.tobytes()
