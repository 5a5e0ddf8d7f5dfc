"""Capture globs: both engines capture exactly the files a glob names (issue 8, finding 4).

Three matchers must agree on every glob and path: the C matcher of the native scanner
(ext/glob.c), the Python one (scan/globs.py, used by the reference engine and the
catalogers), and `oracle()` below, a direct regex translation of globs.py's docstring.
"""

from __future__ import annotations

import posixpath
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscan.scan import scan_layer
from layerscan.scan.globs import GlobSet, escape, native_program, parse
from layerscan.scan.model import ScanOptions
from scancheck import ENGINES, assert_same
from tarbuilder import Entry, build

# Debian's Vectorscan 5.4.9 finds no match of "^/(?:[^/]*/)*[a-c][^/]*\z" (the glob below,
# as Hyperscan took it) in these paths, each of whose file names starts with a, b or c.
VECTORSCAN_MISSES = (
    "/xzggyfx/dzyhgxfzhf/ggdegfxyg/dzxdhf/gefy/exdhdyxhfy/xxffz/yyfhzyxfxe/fdeghhgddydz/a",
    "/yxhz/gxgyfefez/fdxgd/egdfxhd/zxxexhfx/geh/ezzxgyggfgz/dgxggf/dhedxd/ehf/eyghyhdyyfz/c",
    "/yyeezhdze/fdzdgzd/zxzhzxfxxyh/dhz/hgydxyfffxe/dyzzyeddggex/xhexfdez/hxgfgfzzdxy/bzz",
    "/zyyd/gfydydfyzhyd/dyeeyxfehh/gdfyhex/fedezygz/dfdxy/yxyhfzyh/xgdyhef/gxhzxexddgx/cy",
    "/gxgh/dfghyh/dxggz/fdzyydheexyh/zzxydgdzz/hggefydf/gzyfhgzfyfy/zeg/yggfz/hzhxggyeyddf/a",
    "/ghhhzghfe/yhzfyyzhz/geyfhez/zhyzezyhf/hyzhzgfy/dzhydhyehdfh/dhx/gxdyxxxgy/fedxzxgf/cx",
)
CLASS_GLOB = "/**/[a-c]*"


def long_paths(count: int, seed: int) -> list[str]:
    """Paths of 80-120 characters; about a third have a file name starting with a, b or c."""
    rnd = random.Random(seed)
    out: set[str] = set()
    while len(out) < count:
        length = rnd.randint(80, 120)
        path = ""
        while len(path) < length - 12:
            path += "/" + "".join(rnd.choice("defghxyz") for _ in range(rnd.randint(3, 12)))
        name = rnd.choice("abcdxy") + "".join(rnd.choice("xyz.") for _ in range(length - len(path) - 2))
        out.add(f"{path}/{name}")
    return sorted(out)


@pytest.mark.parametrize("engine", ENGINES)
def test_class_glob_captures_long_paths(engine: str) -> None:
    paths = [*VECTORSCAN_MISSES, *long_paths(300, seed=8)]
    layer = build([Entry(p.lstrip("/"), data=p.encode()) for p in paths])
    result = scan_layer(layer, ScanOptions(capture_globs=(CLASS_GLOB,)), engine=engine)
    want = {p: p.encode() for p in paths if posixpath.basename(p)[0] in "abc"}
    assert len(want) > 100
    assert dict(result.captured) == want, sorted(set(want) - set(result.captured))[:5]


# ------------------------------------------------------------ the oracle

_CLASS = re.compile(r"\[([!^]?+)(.[^\]]*)\]", re.S)  # possessive: "[!]" is no class of "!"
_SLASH = ord("/")


def _class_regex(negated: bool, body: str) -> str:
    pieces = []
    for a, b, c in re.findall(r"(.)-(.)|(.)", body, re.S):
        lo, hi = (ord(a), ord(b)) if a else (ord(c), ord(c))
        for x, y in ((lo, min(hi, _SLASH - 1)), (max(lo, _SLASH + 1), hi)):  # never "/"
            if x <= y:
                pieces.append(f"{re.escape(chr(x))}-{re.escape(chr(y))}")
    if negated:
        return "[^/" + "".join(pieces) + "]"
    return "[" + "".join(pieces) + "]" if pieces else "(?!)"


WILDCARDS = (("**/", "(?:.*/)?"), ("**", ".*"), ("*", "[^/]*"), ("?", "[^/]"))


def oracle(glob: str) -> str:
    """globs.py's docstring, read as a regex, token by token."""
    glob = glob if glob.startswith("/") else "/" + glob
    out, i = [], 0
    while i < len(glob):
        wildcard = next(((t, rx) for t, rx in WILDCARDS if glob.startswith(t, i)), None)
        m = _CLASS.match(glob, i)
        if wildcard:
            out.append(wildcard[1])
            i += len(wildcard[0])
        elif m:
            out.append(_class_regex(bool(m[1]), m[2]))
            i = m.end()
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def oracle_matches(globs: list[str], path: str) -> bool:
    return any(re.fullmatch(oracle(g), path, re.S) for g in globs)


def round_trips(path: str) -> bool:
    """A str a tar path can decode to (UTF-8 with surrogateescape)."""
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return raw.decode("utf-8", "surrogateescape") == path


def native_matches(globs: list[str], path: str) -> bool:
    from layerscan import _scan  # here: the module is absent where the extension is not built

    return _scan.GlobMatcher(native_program(tuple(globs))).matches(path.encode("utf-8", "surrogateescape"))


# ------------------------------------------------------------ examples

EXAMPLES = [
    # (glob, path, matches)
    ("/etc/os-release", "/etc/os-release", True),
    ("etc/os-release", "/etc/os-release", True),
    ("/etc/os-release", "/etc/os-release\n", False),
    ("/**/package.json", "/package.json", True),
    ("/**/package.json", "/a/b/package.json", True),
    ("/**/package.json", "/a/xpackage.json", False),
    ("/**/*.jar", "/opt/app/lib/x.jar", True),
    ("/**/*.jar", "/opt/app/lib/.jar", True),
    ("/etc/**", "/etc/", True),
    ("/etc/**", "/etc/a/b", True),
    ("/etc/**", "/etc", False),
    ("/a**b", "/a/x/b", True),
    ("/a**/b", "/a/b", True),
    ("/a**/b", "/ax/y/b", True),
    ("/a**/b", "/axb", False),
    ("/a***/b", "/a/b", True),
    ("/*", "/a/b", False),
    ("/a?c", "/a/c", False),
    ("/a?c", "/a\nc", True),
    ("/a?c", "/aéc", True),
    ("/a?c", "/a\udcffc", True),  # an undecodable byte is one character
    ("/[a-c]", "/b", True),
    ("/[!a-c]", "/d", True),
    ("/[^a-c]", "/b", False),
    ("/x[!a]y", "/x/y", False),  # no class matches "/"
    ("/x[+-0]y", "/x/y", False),
    ("/[]a]", "/]", True),
    ("/[!]a]", "/]", False),
    ("/[!]a]", "/b", True),
    ("/[z-a]", "/z", False),  # a reversed range holds nothing
    ("/[!z-a]", "/z", True),
    ("/[a-c-e]", "/-", True),
    ("/[a-c-e]", "/d", False),
    ("/[ab", "/[ab", True),  # no "]": "[" is itself
    ("/[!]", "/[!]", True),
    ("/a\\*", "/a\\xyz", True),  # no escapes
    ("/日本/*.txt", "/日本/a.txt", True),
    ("/\udce2\udc82*", "/€", False),  # characters, not bytes: "€" is E2 82 AC
    # ext/glob.c's filters: the bytes a final class can end a path with, the literal text every match holds
    ("/**/*.[jJ][aA][rR]", "/opt/x.JaR", True),
    ("/**/*.[jJ][aA][rR]", "/opt/x.jaz", False),
    ("/**/[ab]", "/x/\udce1", False),
    ("/**/[aé]", "/x/é", True),
    ("/**/VERSION*", "/usr/VERSION.txt", True),
    ("/**/VERSION*", "/usr/VERSIO", False),
    ("/**/VERSION*", "/usr/aVERSION", False),
]


@pytest.mark.parametrize("glob,path,want", EXAMPLES)
def test_examples(glob: str, path: str, want: bool) -> None:
    assert GlobSet([glob]).matches(path) is want
    assert bool(re.fullmatch(oracle(glob), path, re.S)) is want


@pytest.mark.parametrize("glob,path,want", EXAMPLES)
def test_examples_native(glob: str, path: str, want: bool) -> None:
    assert native_matches([glob], path) is want


def test_parse_splits_literal_ends() -> None:
    g = parse("/**/*.jar")
    assert (g.prefix, g.suffix) == ("/", ".jar")
    g = parse("/etc/os-release")
    assert (g.prefix, g.suffix, g.ops) == ("", "/etc/os-release", ())
    g = parse("/a**/")  # the "/" after "**" may be skipped: it is no suffix
    assert (g.prefix, g.suffix) == ("/a", "")


# ------------------------------------------------------------ properties

GLOB_CHARS = "ab/.-]!^é日\\\n\udcff\udcc3\ud800"
PATH_CHARS = "abcx/.-]!^[*?é日\\\n\x00\udcff\udcc3\udca9"  # x: in no glob, so every [!...] can match
glob_piece = st.one_of(
    st.sampled_from(GLOB_CHARS),
    st.sampled_from(["*", "**", "**/", "?", "/**/", "["]),
    st.builds(
        lambda neg, body: f"[{neg}{body}]",
        st.sampled_from(["", "", "!", "^"]),
        st.text(st.sampled_from("abc-]!^/é"), min_size=1, max_size=5),
    ),
)
globs_st = st.lists(st.lists(glob_piece, max_size=10).map("".join), min_size=1, max_size=4)


@st.composite
def glob_and_path(draw: st.DrawFn, long: bool = False) -> tuple[list[str], str]:
    globs = draw(globs_st)
    rx = oracle(draw(st.sampled_from(globs)))
    size = st.integers(80, 120) if long else st.integers(0, 30)
    n = draw(size)
    random_path = st.text(st.sampled_from(PATH_CHARS), min_size=n, max_size=n).map(lambda p: "/" + p)
    choices = [random_path]
    if "(?!)" not in rx:
        choices.append(st.from_regex(rx, fullmatch=True, alphabet=PATH_CHARS + GLOB_CHARS))
    path = draw(st.one_of(choices).filter(round_trips))
    return globs, path


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.one_of(glob_and_path(), glob_and_path(long=True)))
def test_matchers_agree(case: tuple[list[str], str]) -> None:
    """Half the paths are drawn to match a glob (from its oracle regex), half at random."""
    globs, path = case
    want = oracle_matches(globs, path)
    assert GlobSet(globs).matches(path) == want
    assert native_matches(globs, path) == want


# Byte sequences at UTF-8's edges: valid ones of each length and the largest and smallest,
# truncated ones, overlong forms, surrogates, past U+10FFFF, lone continuations.
UTF8_EDGES = (
    *(b"A", b"/", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x99\x82", b"\xe0\xa0\x80", b"\xef\xbf\xbf"),
    *(b"\xed\x9f\xbf", b"\xf4\x8f\xbf\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x99", b"\xc0\xaf", b"\xc1\xbf"),
    *(b"\xe0\x80\xaf", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80"),
    *(b"\xf5\x80\x80\x80", b"\x80", b"\xbf", b"\xff"),
)
utf8_edges = st.lists(st.sampled_from(UTF8_EDGES), max_size=12).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(utf8_edges | st.binary(max_size=60))
def test_native_matcher_decodes_bytes_as_python(raw: bytes) -> None:
    """The C decoder cuts any bytes into the characters Python's surrogateescape gives:
    a glob of one "?" per character matches, one more or one less does not."""
    text = "/" + raw.decode("utf-8", "surrogateescape")
    shape = "".join("/" if ch == "/" else "?" for ch in text)
    literal = "".join("?" if ch in "*?[" else ch for ch in text)
    assert native_matches([shape], text) and native_matches([literal], text)
    assert not native_matches([shape + "?"], text)
    assert not native_matches([shape[:-1]], text) or text.endswith("/")


component = st.text(st.sampled_from("ab-é日[]!^x\udcff"), min_size=1, max_size=8) | st.text(
    st.sampled_from("abc.xyz"), min_size=80, max_size=110
).filter(lambda c: c.strip("."))


@settings(max_examples=150, deadline=None)
@given(
    globs_st, st.lists(st.lists(component, min_size=1, max_size=5).map("/".join), min_size=1, max_size=20, unique=True)
)
def test_native_and_reference_capture_the_same(globs: list[str], names: list[str]) -> None:
    layer = build([Entry(n, data=n.encode("utf-8", "surrogateescape")) for n in names])
    options = ScanOptions(capture_globs=tuple(globs))
    native, reference = (scan_layer(layer, options, engine=e) for e in ("native", "reference"))
    assert_same(native, reference)
    assert set(reference.captured) == {p for p in reference.entries.paths if oracle_matches(globs, p)}


@given(st.text(st.sampled_from(PATH_CHARS), min_size=1, max_size=20), st.integers(0, 19), st.sampled_from(PATH_CHARS))
def test_escape_matches_the_path_alone(path: str, at: int, ch: str) -> None:
    """escape(path) matches the path, and no path one character away from it."""
    path = "/" + path
    other = path[: at % len(path)] + ch + path[at % len(path) + 1 :]
    assert GlobSet([escape(path)]).matches(path)
    assert GlobSet([escape(path)]).matches(other) == (other == path)
    if round_trips(path) and round_trips(other):
        assert native_matches([escape(path)], other) == (other == path)
