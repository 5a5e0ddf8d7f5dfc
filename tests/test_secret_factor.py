"""required_factor(): the literals confirm() looks for before it tries a rule on a line.

A rule is tried only on lines holding one of its factor's literals, so a factor must be
sound: every line the rule matches holds one. Checked on each rule's example (test_secret_prefilter)
in every case, and on lines mixing examples, literals and separators at random.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerscan.scan.rules import default_rules, required_factor
from test_secret_prefilter import EXAMPLES

RULES = default_rules()


def holds_factor(pattern: str, line: bytes) -> bool:
    factor = required_factor(pattern)
    return factor is None or any(lit in (line.lower() if icase else line) for lit, icase in factor)


@pytest.mark.parametrize(
    ("pattern", "factor"),
    [
        ("abc", ((b"abc", False),)),
        ("(?i)AbC", ((b"abc", True),)),
        ("(?i)ab(?-i:XYZ)", ((b"XYZ", False),)),  # the longer literal, with its own case
        ("x(?:foo|barbaz)y", ((b"foo", False), (b"barbaz", False))),
        ("(?:foo|[0-9])bar", ((b"bar", False),)),  # an alternative without a literal: no factor there
        ("(?:foo|[0-9])", None),
        ("(?<![a-z])a(?=key)", ((b"a", False),)),  # look-arounds are not part of the match
        ("(?:token){0,2}x", ((b"x", False),)),  # an optional part is not required
        ("(?:token)+x", ((b"token", False),)),
        ("[a-z]+", None),
    ],
)
def test_factor_shapes(pattern: str, factor: tuple[tuple[bytes, bool], ...] | None) -> None:
    assert required_factor(pattern) == factor


def test_every_default_rule_has_a_factor() -> None:
    """Else every line of every file is tried with the rule: the slow path of issue 12."""
    assert [r.id for r in RULES if required_factor(r.pattern) is None] == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_factor_holds_where_the_rule_matches(rule) -> None:  # type: ignore[no-untyped-def]
    matched = 0
    for example in EXAMPLES.values():
        for text in (example, example.upper(), example.lower(), example.swapcase()):
            line = text.encode() + b"\n"
            if rule.matches(line):
                matched += 1
                assert holds_factor(rule.pattern, line), text
    assert matched  # its own example at least


FRAGMENTS = [
    *EXAMPLES.values(),
    *(lit.decode("latin-1") for r in RULES for lit, _ in required_factor(r.pattern) or ()),
    *" =:\"'_-./",
]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6),
    cut=st.integers(0, 40),
    case=st.sampled_from([str, str.upper, str.lower, str.swapcase]),
)
def test_factor_holds_on_mixed_lines(parts: list[str], cut: int, case) -> None:  # type: ignore[no-untyped-def]
    line = case("".join(parts)[cut:]).encode("latin-1", "replace") + b"\n"
    for rule in RULES:
        if rule.matches(line):
            assert holds_factor(rule.pattern, line), (rule.id, line)
