"""Secret and content rules, and the line-by-line confirmation both engines share.

Matching is per line, as in Anchore (`re.match(regex, line)` over the bytes lines of
`readlines()`): a rule either matches a line or does not, and a hit is (rule, line).
The native engine uses Hyperscan only as a prefilter: it names the files and rules
that may match, and `confirm()` below decides with Python `re` on each line. So both
engines agree by construction, and look-around works wherever Python allows it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Iterator, Sequence

from ..errors import RuleError
from .model import SecretHit


@dataclasses.dataclass(frozen=True)
class Rule:
    """One named regex. `anchored` rules use `re.match` (Anchore's form), others `re.search`."""

    id: str
    pattern: str
    anchored: bool = False
    kind: str = "secret"  # or "content" (Anchore's content_search)
    source: str = "builtin"  # or "anchore", "config"

    @property
    def regex(self) -> re.Pattern[bytes]:
        return _compile(self.pattern)

    def matches(self, line: bytes) -> re.Match[bytes] | None:
        return (self.regex.match if self.anchored else self.regex.search)(line)


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
    rule.regex  # compile now, so a bad rule fails at load time
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
    return [parse_anchore_rule(s) for s in ANCHORE_DEFAULT_SPECS]


# Written by us from the public token formats. Ids are kebab-case, like gitleaks' and trivy's.
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule("aws-access-key-id", r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
    Rule(
        "aws-secret-access-key",
        r"(?i)aws_?(?:secret)?_?(?:access)?_?key(?:_id)?[\"']?\s*(?::|=>|=)\s*[\"']?"
        r"(?-i:(?<![A-Za-z0-9/+])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=]))",
    ),
    Rule("private-key", r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"),
    Rule("github-pat", r"(?<![A-Za-z0-9_])ghp_[0-9A-Za-z]{36}(?![0-9A-Za-z])"),
    Rule("github-oauth", r"(?<![A-Za-z0-9_])gho_[0-9A-Za-z]{36}(?![0-9A-Za-z])"),
    Rule("github-app-token", r"(?<![A-Za-z0-9_])(?:ghu|ghs)_[0-9A-Za-z]{36}(?![0-9A-Za-z])"),
    Rule("github-refresh-token", r"(?<![A-Za-z0-9_])ghr_[0-9A-Za-z]{76}(?![0-9A-Za-z])"),
    Rule("github-fine-grained-pat", r"github_pat_[0-9A-Za-z_]{82}(?![0-9A-Za-z_])"),
    Rule("gitlab-pat", r"glpat-[0-9A-Za-z_-]{20}(?![0-9A-Za-z_-])"),
    Rule("slack-token", r"xox[baprs]-(?:[0-9A-Za-z]{10,48}-?){2,}"),
    Rule("slack-webhook-url", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{43,56}"),
    Rule("stripe-secret-key", r"(?<![A-Za-z0-9])(?:sk|rk)_(?:test|live|prod)_[0-9A-Za-z]{10,99}(?![0-9A-Za-z])"),
    Rule("google-api-key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    Rule("npm-access-token", r"(?<![A-Za-z0-9_])npm_[0-9A-Za-z]{36}(?![0-9A-Za-z])"),
    Rule("docker-config-auth", r"\"auth\"\s*:\s*\"[A-Za-z0-9+/]{8,}={0,2}\""),
    Rule(
        "generic-api-key",
        r"(?i)(?:api|access|auth|secret)[_-]?(?:key|token)[\"']?\s*(?::|=>|=)\s*[\"']"
        r"[0-9A-Za-z_\-+/=.]{16,}[\"']",
    ),
    Rule(
        "generic-password",
        r"(?i)(?<![A-Za-z0-9_])(?:password|passwd|pwd)[\"']?\s*(?::|=>|=)\s*[\"'][^\"'\s]{6,}[\"']",
    ),
)


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


def split_lines(content: bytes) -> Iterator[bytes]:
    """Lines as `readlines()` gives them: split on b'\\n' only, each keeping its newline."""
    start = 0
    n = len(content)
    while start < n:
        end = content.find(b"\n", start)
        if end < 0:
            yield content[start:]
            return
        yield content[start : end + 1]
        start = end + 1


def mask(value: bytes) -> str:
    """Enough of a value to recognise it, never enough to use it."""
    text = value.decode("utf-8", "replace").strip()
    if len(text) <= 8:
        return "*" * len(text)
    keep = min(4, len(text) // 5)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[len(text) - keep :]


def confirm(path: str, content: bytes, rules: Iterable[Rule]) -> list[SecretHit]:
    """Every (rule, line) where the rule matches a line of `content`, in line order."""
    rules = list(rules)
    hits: list[SecretHit] = []
    for lineno, line in enumerate(split_lines(content), 1):
        for rule in rules:
            m = rule.matches(line)
            if m is not None:
                hits.append(SecretHit(rule.id, path, lineno, mask(m.group(0))))
    return hits


def is_binary(head: bytes) -> bool:
    """A NUL in the first 8000 bytes marks a file binary, as git and grep decide."""
    return b"\0" in head[:8000]
