"""Secret and content rules, and the line-by-line confirmation both engines share.

Matching is per line, as in Anchore (`re.match(regex, line)` over the bytes lines of
`readlines()`): a rule either matches a line or does not, and a hit is (rule, line).
The native engine uses Hyperscan only as a prefilter: it names the files and rules
that may match, and `confirm()` below decides with Python `re` on each line. So both
engines agree by construction, and look-around works wherever Python allows it.
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib.resources
import itertools
import re
import re._constants as sre
import re._parser as sre_parse
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import RuleError
from .allow import ALLOWED_SOURCES, COVERED, Docstrings, allowed_by, coverable, specific
from .model import SecretHit


@dataclasses.dataclass(frozen=True)
class Rule:
    """One named regex. `anchored` rules use `re.match` (Anchore's form), others `re.search`."""

    id: str
    pattern: str
    anchored: bool = False
    kind: str = "secret"  # or "content" (Anchore's content_search)
    # "builtin", "default" (Anchore's five when no analyzer_config.yaml names rules), "anchore" (read
    # from analyzer_config.yaml), "config" (secret_rules); allow rules apply to builtin and default only.
    source: str = "builtin"

    @property
    def regex(self) -> re.Pattern[bytes]:
        return _compile(self.pattern)

    @property
    def matcher(self) -> Callable[[bytes], re.Match[bytes] | None]:
        """`re.match` or `re.search` of the regex: what decides whether the rule matches a line."""
        return self.regex.match if self.anchored else self.regex.search

    def matches(self, line: bytes) -> re.Match[bytes] | None:
        return self.matcher(line)


_cache: dict[str, re.Pattern[bytes]] = {}


def _compile(pattern: str) -> re.Pattern[bytes]:
    rx = _cache.get(pattern)
    if rx is None:
        try:
            rx = _cache[pattern] = re.compile(pattern.encode())
        except re.error as e:
            raise RuleError(f"rule regex {pattern!r} does not compile: {e}") from None
    return rx


def parse_anchore_rule(spec: str, kind: str = "secret", source: str = "anchore") -> Rule:
    """`NAME=regex` as in Anchore's analyzer_config.yaml; the regex is all after the first '='."""
    name, sep, pattern = spec.partition("=")
    if not sep or not name:
        raise RuleError(f"rule {spec!r} is not of the form NAME=regex")
    rule = Rule(id=name, pattern=pattern, anchored=True, kind=kind, source=source)
    _ = rule.regex  # compile now, so a bad rule fails at load time
    return rule


# Anchore Engine's five defaults (conf/analyzer_config.yaml), kept verbatim.
ANCHORE_DEFAULT_SPECS: tuple[str, ...] = (
    r"AWS_ACCESS_KEY=(?i).*aws_access_key_id( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]).*",
    r"AWS_SECRET_KEY=(?i).*aws_secret_access_key( *=+ *).*(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=]).*",
    r"PRIV_KEY=(?i)-+BEGIN(.*)PRIVATE KEY-+",
    r'DOCKER_AUTH=(?i).*"auth": *".+"',
    r"API_KEY=(?i).*api(-|_)key( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20,60}(?![A-Z0-9]).*",
)


def anchore_default_rules() -> list[Rule]:
    """Anchore's five as layerscan's defaults (source "default": allow rules apply to them;
    read from analyzer_config.yaml they are source "anchore" and keep Anchore's semantics)."""
    return [parse_anchore_rule(s, source="default") for s in ANCHORE_DEFAULT_SPECS]


def _read_builtin_rules() -> tuple[Rule, ...]:
    """Ours, from builtin_rules.toml beside this module (a table of id and pattern, as gitleaks keeps its own)."""
    with importlib.resources.files(__package__).joinpath("builtin_rules.toml").open("rb") as f:
        return tuple(Rule(r["id"], r["pattern"]) for r in tomllib.load(f)["rule"])


BUILTIN_RULES = _read_builtin_rules()


def builtin_rules() -> list[Rule]:
    return list(BUILTIN_RULES)


def default_rules() -> list[Rule]:
    """Ours first, then Anchore's five for compatibility."""
    return builtin_rules() + anchore_default_rules()


def check_unique(rules: Sequence[Rule]) -> None:
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RuleError(f"two rules share the id {r.id!r}")
        seen.add(r.id)


def split_lines(content: bytes) -> list[bytes]:
    """Lines as `readlines()` gives them: split on b'\\n' only, each keeping its newline."""
    parts = content.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# A factor: literals one of which every match holds, each with whether it is compared ignoring
# (ASCII) case. None: no such literal is known, every line is tried.
Factor = tuple[tuple[bytes, bool], ...]
_factors: dict[str, Factor | None] = {}


def required_factor(pattern: str) -> Factor | None:
    """Literals of which any match of `pattern` holds one (sound, not complete): a file
    holding none of them has no line the rule matches, so confirm() skips it at C speed."""
    if pattern not in _factors:
        parsed = sre_parse.parse(pattern.encode())
        flags = parsed.state.flags
        _factors[pattern] = None if flags & sre.SRE_FLAG_LOCALE else _seq_factor(parsed, flags)
    return _factors[pattern]


def _better(a: Factor | None, b: Factor | None) -> Factor | None:
    """The more selective factor: longer shortest literal, then fewer alternatives."""
    if a is None or b is None:
        return a or b
    return max(a, b, key=lambda f: (min(len(lit) for lit, _ in f), -len(f)))


def _seq_factor(seq: Any, flags: int) -> Factor | None:
    """The best factor of a parsed sequence (items of re._parser: (opcode, argument))."""
    best: Factor | None = None
    run = bytearray()
    icase = bool(flags & sre.SRE_FLAG_IGNORECASE)
    for op, av in [*seq, (None, None)]:
        if op is sre.LITERAL:
            run.append(av)
            continue
        if run:
            best = _better(best, ((bytes(run).lower() if icase else bytes(run), icase),))
            run.clear()
        inner: Factor | None = None
        if op is sre.SUBPATTERN:
            _, add, remove, sub = av
            inner = _seq_factor(sub, (flags | add) & ~remove)
        elif op is sre.ATOMIC_GROUP:
            inner = _seq_factor(av, flags)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            inner = _seq_factor(av[2], flags)
        elif op is sre.BRANCH:
            alts = [_seq_factor(alt, flags) for alt in av[1]]
            if all(alt is not None for alt in alts):
                inner = tuple(dict.fromkeys(lit for alt in alts if alt is not None for lit in alt))
        best = _better(best, inner)
    return best


def _lines_holding(text: bytes, literal: bytes, starts: list[int]) -> Iterator[int]:
    """The indices of the lines of `text` where `literal` starts, each once."""
    at = text.find(literal)
    while at >= 0:
        i = bisect.bisect_right(starts, at) - 1
        yield i
        at = text.find(literal, starts[i + 1])


def confirm(path: str, content: bytes, rules: Iterable[Rule]) -> list[SecretHit]:
    """Every (rule, line) where the rule matches a line of `content`, in line order, each with the
    allow rule that calls it an example (layerscan's own rules only; see allow.py)."""
    rules = list(rules)
    lines = split_lines(content)
    starts = list(itertools.accumulate(map(len, lines), initial=0))  # line i is content[starts[i]:starts[i + 1]]
    lowered = b""  # content in ASCII lower case, for literals compared ignoring case
    matched: set[int] = set()  # indices of lines some rule matches
    for rule in rules:
        factor = required_factor(rule.pattern)
        tried: Iterable[int] = range(len(lines))
        if factor is not None:
            if not lowered and any(icase for _, icase in factor):
                lowered = content.lower()
            # Only lines holding one of the literals can match: the others are never tried.
            tried = sorted(
                {i for lit, icase in factor for i in _lines_holding(lowered if icase else content, lit, starts)}
            )
        matched.update(i for i, m in zip(tried, map(rule.matcher, map(lines.__getitem__, tried)), strict=True) if m)
    hits: list[SecretHit] = []
    docstrings = Docstrings(content)
    for i in sorted(matched):
        line = lines[i]
        next_line = lines[i + 1] if i + 1 < len(lines) else b""
        found: list[tuple[Rule, SecretHit]] = []
        for rule in rules:
            m = rule.matches(line)
            if m is not None:
                allowed = ""
                if rule.source in ALLOWED_SOURCES:
                    allowed = allowed_by(rule.id, path, line, m.group(0), next_line, starts[i] + m.start(), docstrings)
                found.append((rule, SecretHit(rule.id, path, i + 1, mask(m.group(0)), allowed)))
        if len(found) > 1 and any(specific(r.id, r.source) and not h.allowed_by for r, h in found):
            found = [
                (r, h._replace(allowed_by=COVERED))
                if not h.allowed_by and r.source in ALLOWED_SOURCES and coverable(r.id, r.source)
                else (r, h)
                for r, h in found
            ]
        hits.extend(h for _, h in found)
    return hits


def mask(value: bytes) -> str:
    """Enough of a value to recognise it, never enough to use it."""
    text = value.decode("utf-8", "replace").strip()
    if len(text) <= 8:
        return "*" * len(text)
    keep = min(4, len(text) // 5)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[len(text) - keep :]


def is_binary(head: bytes) -> bool:
    """A NUL in the first 8000 bytes marks a file binary, as git and grep decide."""
    return b"\0" in head[:8000]
