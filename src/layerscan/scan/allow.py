"""Allow rules: which rule matches are documentation, tests, examples or placeholders, not secrets.

    allowed_by(rule, path, line, match, next_line, offset, docstrings) -> the id of the first
    allow rule that allows the match, or "" (a secret)

Learnt from the public facts of Trivy's built-in allow rules (test, example, vendor and
.dist-info paths; "example" in a match), gitleaks' allowlists and generic-rule entropy,
and detect-secrets' filters (templated, sequential, indirect values). Unlike Trivy, no
directory is skipped whole: a path allows a match only inside an installed package
(site-packages, node_modules, gems, vendor/...) and only where that package keeps its
docs, tests or examples, so a real key committed into a vendored dependency's code is
still found. In a package's code, a generic rule's match in a comment or a docstring is
the package documenting itself. The rest look at the value itself.

Only layerscan's own rules (`Rule.source` "builtin", and Anchore's five when they are the
defaults, not read from analyzer_config.yaml) are allowed: rules a user configured keep
their exact semantics. The scan computes the verdict for every hit (confirm() in rules.py,
one function for both engines); findings.py drops allowed hits unless `secrets_all`, and
counts them by allow rule.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

# Rules whose match is a key name next to any value: the value, not its format, says whether it is one.
GENERIC_RULES = frozenset({"generic-api-key", "generic-password", "basic-auth-url", "API_KEY", "AWS_SECRET_KEY"})
PRIVATE_KEY_RULES = frozenset({"private-key", "PRIV_KEY"})
ALLOWED_SOURCES = frozenset({"builtin", "default"})


class Hit(NamedTuple):
    """What an allow rule sees of one match."""

    rule: str
    path: str  # absolute
    line: bytes  # the whole line
    match: str  # the rule's match
    next_line: bytes  # the line after it (b"" at the end of the file)
    offset: int  # where the match starts in the file
    docstrings: Docstrings  # the file's, found only if a rule asks


# ---------------------------------------------------------------------------- paths


# An installed or vendored package, and the path within it: Python (site-packages, dist-packages),
# npm (node_modules, scoped or not), Ruby (gems/NAME-VERSION), Go and PHP (vendor/, pkg/mod/), Debian's docs.
_PACKAGE = re.compile(
    r"/(?:(?:site|dist)-packages/(?:[^/]+\.(?:dist|egg)-info/)?|node_modules/(?:@[^/]+/)?[^/]+/|bower_components/[^/]+/"
    r"|gems/[^/]+/|vendor/(?:bundle/)?|pkg/mod/)"
)
_DOC_DIRS = frozenset({"doc", "docs", "documentation", "man", "manual", "guide", "guides", "site-docs"})
_DOC_FILE = re.compile(
    r"(?i)(?:^(?:readme|changelog|changes|history|news|authors|contributing|license|copying|notice|metadata|pkg-info)"
    r"(?:\.[a-z0-9]+)?$|\.(?:md|markdown|mdx|rst|txt|adoc|asciidoc|html?|ipynb|[1-9])$)"
)
_TEST_DIRS = frozenset(
    {"test", "tests", "testing", "_testing", "__tests__", "__mocks__", "testdata", "test_data", "test-data", "fixtures",
     "__fixtures__", "spec", "specs", "e2e", "testsuite", "test_utils", "tests_utils", "benchmarks"}
)  # fmt: skip
# Tests, and the modules that support them: fixtures, test clients, helpers (transformers'
# testing_utils.py, click's testing.py, test-utils.js).
_TEST_FILE = re.compile(
    r"(?i)^(?:test_.*\.py|.*_tests?\.(?:py|go|rb)|conftest\.py|.*[._-](?:test|spec)s?\.[cm]?[jt]sx?|.*_spec\.rb"
    r"|_?testing(?:[-_]?(?:utils?|helpers?|support))?\.py|tests?[-_]?(?:utils?|helpers?|support)\.(?:py|[cm]?[jt]sx?))$"
)
_EXAMPLE_DIRS = frozenset(
    {"example", "examples", "sample", "samples", "demo", "demos", "tutorial", "tutorials", "cookbook"}
)
_OS_DOCS = re.compile(r"^/usr/(?:local/)?share/(?:doc|man|info|help|gtk-doc|devhelp)/")


def package_path(path: str) -> tuple[str, ...] | None:
    """The components of `path` within the innermost installed package holding it; None outside packages."""
    found = None
    for m in _PACKAGE.finditer(path):
        found = m
    if found is None:
        return None
    return tuple(path[found.end() :].split("/"))


def _package_docs(hit: Hit) -> bool:
    if _OS_DOCS.match(hit.path):
        return True
    within = package_path(hit.path)
    if within is None:
        return False
    if re.search(r"\.(?:dist|egg)-info/", hit.path):  # Python metadata: METADATA is the package's README
        return True
    return any(c.lower() in _DOC_DIRS for c in within[:-1]) or _DOC_FILE.search(within[-1]) is not None


def _package_tests(hit: Hit) -> bool:
    within = package_path(hit.path)
    if within is None:
        return False
    return any(c.lower() in _TEST_DIRS for c in within[:-1]) or _TEST_FILE.match(within[-1]) is not None


def _package_examples(hit: Hit) -> bool:
    within = package_path(hit.path)
    if within is None:
        return False
    # botocore/data/<service>/<version>/examples-1.json, config.example, sample_config.py
    return (
        any(c.lower() in _EXAMPLE_DIRS for c in within[:-1]) or re.search(r"(?i)example|sample", within[-1]) is not None
    )


# ---------------------------------------------------------------------------- values


_EXAMPLE_WORDS = re.compile(r"(?i)example|sample|dummy|fake|placeholder|redacted|insert|replace|changeme|change_me")
# AWS's documentation key pair (the id holds EXAMPLE, the secret only "EXAMPLEKEY"), and the
# example credentials of the OAuth RFCs (5849, 6749, 6750) that libraries quote in their docs.
_KNOWN_EXAMPLES = (
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "2YotnFZFEjr1zCsicMWpAA",
    "tGzv3JOkF0XG5Qx2TlKWIA",
    "SplxlOBeZQQYbYS6WxSbIA",
    "mF_9.B5f-4.1JqM",
    "ad180jjd733klru7",
    "0685bd9184jfhq22",
    "kd94hf93k423kf44",
    "pfkkdhi9sl3r4s00",
    "hh5s93j4hdidpola",
    "dpf43f3p2l4k3l03",
    "nnch734d00sl2jdk",
    "hdk48Djdsa",
    "wIjqoS",
    "xyz4992k83j47x0b",
)


def _known_example(hit: Hit) -> bool:
    """The match holds a documented example value or says it is one (Trivy's "example" allow regex)."""
    return _EXAMPLE_WORDS.search(hit.match) is not None or any(k in hit.match for k in _KNOWN_EXAMPLES)


def _runs(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]{8,}", text)


def patterned(run: str) -> bool:
    """An alphabet, digits in order, or one character repeated (ghp_ABCDEF…, 0123456789, xxxxxxxx,
    AAAA…): few ascending-or-equal stretches for its length, where a random token has one per character."""
    stretches = 1 + sum(1 for a, b in zip(run, run[1:], strict=False) if ord(b) - ord(a) not in (0, 1))
    return stretches * 6 <= len(run)


def _patterned_value(hit: Hit) -> bool:
    """detect-secrets' sequential-string filter: the token after its prefix (ghp_, sk_live_…) is patterned."""
    value = _value(hit)
    runs = _runs(value)
    return bool(runs) and patterned(max(runs, key=len))


_TEMPLATE = re.compile(
    r"\$\{[^}]*\}|\{\{.*?\}\}|<[A-Za-z_ -]{1,40}>|%\([A-Za-z_]+\)s|^\$[A-Za-z_][A-Za-z0-9_]*$|^%[A-Z_]+%$|\[[A-Z_ -]+\]"
)
_PLACEHOLDER_WORDS = re.compile(
    r"(?i)^(?:(?:your|my|the|some|a|an|enter|put|set)[-_ ]?)?(?:api[-_ ]?)?"
    r"(?:password|passwd|pass|pwd|secret|token|key|apikey|access[-_ ]?key|auth|credentials?|value|string|here)"
    r"(?:[-_ ]?(?:here|goes[-_ ]here|1|123|\d))?$"
    r"|^[x*._#-]{3,}$|x{4,}|\*{3,}|\.{3}|(?i:^(?:null|none|undefined|true|false|todo|tbd|n/a)$)"
)


def _placeholder(hit: Hit) -> bool:
    """A templated or placeholder value: ${VAR}, {{ var }}, <password>, %(pw)s, $VAR, xxxx, ****, your_api_key."""
    value = _value(hit)
    return _TEMPLATE.search(value) is not None or _PLACEHOLDER_WORDS.search(value) is not None


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _weak_generic(hit: Hit) -> bool:
    """A generic rule's value that cannot be a credential: low entropy (gitleaks' generic rule
    wants 3.5 bits; a word-like value scores less), one character class, or code (a call,
    an attribute, a variable) rather than a literal (detect-secrets' indirect reference)."""
    if hit.rule not in GENERIC_RULES or hit.rule == "basic-auth-url":
        return False
    value = _value(hit)
    if re.search(r"[()\[\]]|^\w+\.\w+(?:\.\w+)*$|^(?:self|this|os|process|config|settings|env)\b", value):
        return True
    if re.match(r"^(?:/|~/|\./|\.\./|[a-z][a-z0-9+.-]*://)", value):  # a path or a URL, not a credential
        return True
    if re.fullmatch(r"[A-Za-z_.-]+", value) and re.search(r"(?i)passw|secret|token|api_?key", value):
        return True  # a name that holds the key word: challengePassword, AWS_CONTAINER_AUTHORIZATION_TOKEN
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    threshold = 3.0 if hit.rule == "generic-password" else 3.5
    return classes < 2 or entropy(value) < threshold


_URL = re.compile(r"://(?P<user>[^:/\s@\"'<>]*):(?P<password>[^@/\s\"'$<>]*)@(?P<host>[A-Za-z0-9.-]*)")
_URL_WORDS = frozenset(
    {"user", "username", "usr", "login", "name", "pass", "password", "passwd", "pwd", "secret", "token", "foo",
     "bar", "baz", "qux", "scott", "tiger", "me", "you", "someone", "somebody", "johndoe", "john", "jane", "alice",
     "bob", "guest", "test", "tester", "demo", "apikey", "api_key", "key", "auth", "myuser", "mypassword",
     "mypass", "dbuser", "dbpass", "xxx", "xxxx", "xxxxx", "secretpassword", "pa55word", "hunter2", "letmein",
     "userinfo", "user1", "user2", "pass1", "pass2", "u", "p"}
)  # fmt: skip
# Names reserved for documentation (RFC 2606, RFC 6761), and stand-ins for a host.
_EXAMPLE_HOST = re.compile(
    r"(?i)^(?:(?:.+\.)?example(?:\.(?:com|org|net|edu))?|.+\.(?:test|example|invalid)|host|hostname|"
    r"myhost|server|domain|domain\.(?:com|tld)|host\.com|yourdomain\.com|mydomain\.com|site\.com|foo\.(?:com|bar)"
    r"|[a-z]+\.tld)$"
)


def _url_placeholder(hit: Hit) -> bool:
    """basic-auth-url with a stand-in password (user:pass@, username:password@, scott:tiger@, the
    user's name again, ${VAR}-like names) or a documentation host (example.com, host, *.test). A
    stand-in user name alone is not enough: user:<a real password>@ is a credential."""
    if hit.rule != "basic-auth-url":
        return False
    m = _URL.search(hit.match)
    if m is None:
        return False
    user, password, host = (m.group(k) for k in ("user", "password", "host"))
    words = re.split(r"[^a-z0-9]", password.lower())
    return (
        re.search(r"[\[\]{}()%*]", user + password) is not None  # [[username]:[password]], {user}, %(pw)s
        or re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+", password) is not None  # SAS_POLICY_NAME:SAS_KEY
        or password.lower() in _URL_WORDS
        or all(w in _URL_WORDS or not w for w in words)
        or (user.lower() in _URL_WORDS and any(w in _URL_WORDS for w in words))  # scott:tiger^5HHH@
        or password == user
        or _EXAMPLE_HOST.match(host) is not None
        or (len(password) >= 8 and patterned(password))
    )


# A key's next line: base64 (64 characters a line in PEM; 16 tell it from a word of code), maybe
# inside a string, or the headers of an encrypted key.
_PEM_BODY = re.compile(rb"^\s*[\"'`]?(?:[A-Za-z0-9+/=]{16,}|Proc-Type:|DEK-Info:|Comment:)")


_COMMENT = re.compile(rb"^\s*(?:#|//|/\*|\*|<!--|--|;|>>>|\.\.\.|\.\. |rem\b)")


def _package_comment(hit: Hit) -> bool:
    """A generic rule's match in a comment or doctest of an installed package's code (e.g.
    `# sqla+mysql://root:masterkey@localhost/`): the package documenting itself."""
    return hit.rule in GENERIC_RULES and package_path(hit.path) is not None and _COMMENT.match(hit.line) is not None


# Where pip and Debian install Python packages: their code, not an app's (vendor/ is left out).
_PYTHON_PACKAGE = re.compile(r"/(?:site|dist)-packages/.+\.pyi?$")
# What may hold a quote in Python, found in order from where the last one ended, so that a quote
# inside a comment or another string opens nothing: a comment, a triple quote, a one-line string
# (which a backslash may continue onto the next line).
_PY_QUOTING = re.compile(rb"#[^\n]*|(?P<triple>\"{3}|'{3})|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", re.S)


class Docstrings:
    """The docstrings of one Python file: triple-quoted strings that stand alone as statements
    (module, class, function and attribute docs), not those assigned, passed or operated on.
    Found by one pass over the quotes and comments, made on the first question and stopped at
    the furthest offset asked about, so a file no rule asks about costs nothing."""

    def __init__(self, text: bytes) -> None:
        self._text = text
        self._scanned = 0  # the pass has looked at everything before this offset
        self._starts: list[int] = []
        self._ends: list[int] = []

    def covers(self, offset: int) -> bool:
        """Whether the byte at `offset` lies inside a docstring."""
        text = self._text
        while self._scanned <= offset:
            m = _PY_QUOTING.search(text, self._scanned)
            if m is None:
                self._scanned = len(text) + 1
                break
            self._scanned = m.end()
            if m.group("triple") is not None:
                self._scanned = self._close(m.group("triple"), m.end())
                if self._standalone(m.start(), self._scanned):
                    self._starts.append(m.start())
                    self._ends.append(self._scanned)
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset < self._ends[i]

    def _close(self, quote: bytes, start: int) -> int:
        """Just after the quote that closes a string opened before `start` (an odd run of
        backslashes escapes the first quote), or the end of the file."""
        text = self._text
        at = start
        while (j := text.find(quote, at)) >= 0:
            k = j
            while k > start and text[k - 1] == 0x5C:
                k -= 1
            if (j - k) % 2 == 0:
                return j + len(quote)
            at = j + 1
        return len(text)

    def _standalone(self, start: int, end: int) -> bool:
        """Only indentation (and an r or u prefix) before the string on its line, nothing but a comment after."""
        before = self._text[self._text.rfind(b"\n", 0, start) + 1 : start].strip()
        eol = self._text.find(b"\n", end)
        after = self._text[end : eol if eol >= 0 else len(self._text)].strip()
        return before in (b"", b"r", b"R", b"u", b"U") and (not after or after.startswith(b"#"))


def _package_docstring(hit: Hit) -> bool:
    """A generic rule's match in a docstring of an installed Python package's code (pydantic's
    `Model(password='IAmSensitive')`, fsspec's `github://org:repo@sha/...`): the package
    documenting itself. A token of a specific format there is still reported."""
    return (
        hit.rule in GENERIC_RULES and _PYTHON_PACKAGE.search(hit.path) is not None and hit.docstrings.covers(hit.offset)
    )


def _pem_without_body(hit: Hit) -> bool:
    """A private-key header with no key after it: the header alone in code (a constant, a parser,
    a docstring). A key has base64 on its next line (or PEM headers), or on the same line."""
    if hit.rule not in PRIVATE_KEY_RULES:
        return False
    after = hit.line.split(b"PRIVATE KEY", 1)[-1].lstrip(b"-")
    if re.search(rb"^[\s-]*(?:\\n)?[A-Za-z0-9+/=]{16,}", after):  # a key on the header's line ("...-----\nMIIE...")
        return False
    return _PEM_BODY.match(hit.next_line) is None


# ---------------------------------------------------------------------------- the rules


def _value(hit: Hit) -> str:
    """The value of a match: after its last assignment (`key = "value"`, `"key": "value"`), unquoted."""
    text = hit.match.strip()
    element = re.fullmatch(r"<([\w.-]+)>\s*(.*?)\s*</\1>", text)  # Maven's <password>value</password>
    if element is not None:
        return element.group(2)
    m = re.search(r"(?:=>|[:=])\s*[\"']?([^\"']*)[\"']?\s*[,;]?$", text)
    if m is not None and hit.rule in GENERIC_RULES:
        text = m.group(1)
    return text.strip().strip("\"'`,;")


class AllowRule(NamedTuple):
    id: str
    description: str
    allows: Callable[[Hit], bool]


# In order: a hit is credited to the first rule that allows it.
ALLOW_RULES: tuple[AllowRule, ...] = (
    AllowRule("known-example", "a documented example value (AKIAIOSFODNN7EXAMPLE) or one that says so", _known_example),
    AllowRule(
        "patterned-value", "an alphabet, digits in order or one repeated character (ghp_ABCD…)", _patterned_value
    ),
    AllowRule("placeholder", "a templated or placeholder value (${VAR}, {{ var }}, <password>, xxxx)", _placeholder),
    AllowRule(
        "url-placeholder", "stand-in credentials or a documentation host in a URL (user:pass@)", _url_placeholder
    ),
    AllowRule(
        "weak-generic-value", "a generic rule's value with low entropy, one character class, or code", _weak_generic
    ),
    AllowRule("pem-without-body", "a private-key header with no key after it", _pem_without_body),
    AllowRule(
        "package-docs", "documentation and metadata of an installed package (README, docs/, *.md)", _package_docs
    ),
    AllowRule(
        "package-tests",
        "tests of an installed package and their support (tests/, test_*.py, *.test.js, testing_utils.py)",
        _package_tests,
    ),
    AllowRule("package-examples", "examples of an installed package (examples/, examples-1.json)", _package_examples),
    AllowRule(
        "package-comment", "a generic rule's match in a comment or doctest of a package's code", _package_comment
    ),
    AllowRule(
        "package-docstring",
        "a generic rule's match in a docstring of an installed Python package's code",
        _package_docstring,
    ),
)
# Credited by confirm(), which sees every rule's match on a line, when nothing above allows a hit: a
# generic rule of ours matched a line that a specific rule of ours reports; the line is reported by it.
# Anchore's five are never covered: an Anchore policy's secret_scans gate names them
# (content_regex_name), so they stay in the export beside ours.
COVERED = "covered-by-specific-rule"
ALLOW_RULE_IDS = (*(r.id for r in ALLOW_RULES), COVERED)


def coverable(rule_id: str, source: str) -> bool:
    """Whether a hit of this rule is left out where a specific rule reports its line."""
    return source == "builtin" and rule_id in GENERIC_RULES


def specific(rule_id: str, source: str) -> bool:
    return source == "builtin" and rule_id not in GENERIC_RULES


def allowed_by(
    rule: str, path: str, line: bytes, match: bytes, next_line: bytes, offset: int, docstrings: Docstrings
) -> str:
    """The id of the first allow rule that allows this match of `rule` (at `offset` in a file
    whose docstrings are `docstrings`), or "" when none does."""
    hit = Hit(rule, path, line, match.decode("utf-8", "replace"), next_line, offset, docstrings)
    for allow in ALLOW_RULES:
        if allow.allows(hit):
            return allow.id
    return ""
