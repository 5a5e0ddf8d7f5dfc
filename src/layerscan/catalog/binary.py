"""Runtimes found by the version strings in their own executables (type "binary").

The classes, file names and version patterns are Syft's binary classifiers (its
`classifiers.go`), for the interpreters and runtimes: python (the `pythonX.Y` binary
and `libpythonX.Y*.so*`), go, node, java (OpenJDK), ruby, perl, php (CLI, FPM, the Apache module) and busybox. The
scan never keeps an executable: each pattern starts with a literal, a scan marker, and
the pattern is matched in the marker's window (scan.model.Mark). A python binary is
looked up by the "\\0X.Y." its own name gives; the go tool by the Go build info every
Go binary carries (golang.MAGIC), else its "goX.Y\\0" string, else a VERSION file
beside it or one level up, as Syft's supporting evidence.

One package per runtime and version, as Syft merges them: the first path in path order
is its location, all of them its files. Python's patchlevel.h is Anchore's "devel"
evidence (Anchore's binary analyzer); it adds no package of its own here, as in Syft.
Package.metadata is a BinaryMetadata.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterator

from ..filetree import ImageFiles, SymlinkLoop
from ..scan.model import Mark, Marker
from . import golang
from .files import REGULAR, read_optional
from .metadata import BinaryMetadata
from .model import CatalogError, Distro, Package
from .purl import purl

WINDOW = 96  # a version string and its neighbours
PYTHON_VERSIONS = [(2, 7)] + [(3, minor) for minor in range(20)]


@dataclasses.dataclass(frozen=True)
class Classifier:
    cls: str  # Syft's class
    package: str
    name: re.Pattern[str]  # the file's base name
    patterns: tuple[tuple[bytes, re.Pattern[bytes]], ...]  # (marker, pattern matched in its windows)
    purl_namespace: str = ""


def _p(marker: bytes, pattern: bytes) -> tuple[bytes, re.Pattern[bytes]]:
    return marker, re.compile(pattern)


NODE = Classifier(
    "nodejs-binary",
    "node",
    re.compile(r"node"),
    (
        _p(b"node.js/v", rb"node\.js/v(?P<version>[0-9]+\.[0-9]+\.[0-9]+)"),
        # [NUL]node v0.10.48[NUL], [NUL]v4.9.1[NUL]: node before 8
        *(
            _p(b"\0" + p, rb"\x00(node )?v(?P<version>(0|4|5|6)\.[0-9]+\.[0-9]+)\x00")
            for p in (b"node v", b"v0.", b"v4.", b"v5.", b"v6.")
        ),
    ),
)
OPENJDK = Classifier(
    "java-binary-openjdk",
    "openjdk",
    re.compile(r"java"),
    (
        _p(
            b"\0openjdk\0java\0",
            rb"\x00openjdk\x00java\x00(?P<release>[0-9]+[.0-9]*)\x00(?P<version>[0-9]+[^\x00]+)\x00",
        ),
        # Eclipse Temurin and others: [NUL]java[NUL]release[NUL]version[NUL]
        _p(b"\0java\0", rb"\x00java\x00+(?P<release>[0-9]+[.0-9]+)\x00+(?P<version>[0-9]+[-._a-zA-Z0-9+]+)\x00"),
    ),
    purl_namespace="oracle",
)
RUBY = Classifier(
    "ruby-binary",
    "ruby",
    re.compile(r"ruby|libruby\.so.*"),
    tuple(
        _p(b"ruby " + major, rb"ruby (?P<version>[0-9]+\.[0-9]+\.[0-9]+((p|preview|rc|dev)[0-9]*)?) ")
        for major in (b"1.", b"2.", b"3.", b"4.")
    ),
)
PERL = Classifier(
    "perl-binary",
    "perl",
    re.compile(r"perl"),
    (_p(b"/usr/local/lib/perl", rb"/usr/local/lib/perl\d/(?P<version>[0-9]+\.[0-9]+\.[0-9]+)"),),
)
PHP_VERSION = (
    _p(
        b"X-Powered-By: PHP/",
        rb"X-Powered-By: PHP/(?P<version>[0-9]+\.[0-9]+\.[0-9]+(beta[0-9]+|alpha[0-9]+|RC[0-9]+)?)",
    ),
)
# Syft's php interpreter classifiers: the CLI, FPM and Apache module, each its own package.
PHP_CLI = Classifier("php-cli-binary", "php-cli", re.compile(r"php(?!-fpm).*"), PHP_VERSION)
PHP_FPM = Classifier("php-fpm-binary", "php-fpm", re.compile(r"php-fpm.*"), PHP_VERSION)
LIBPHP = Classifier("php-apache-binary", "libphp", re.compile(r"libphp.*\.so"), PHP_VERSION)
BUSYBOX = Classifier(
    "busybox-binary",
    "busybox",
    re.compile(r"busybox"),
    (_p(b"BusyBox v", rb"BusyBox\s+v(?P<version>[0-9]+\.[0-9]+\.[0-9]+)"),),
)
CLASSIFIERS = (NODE, OPENJDK, RUBY, PERL, PHP_CLI, PHP_FPM, LIBPHP, BUSYBOX)

PYTHON_BIN = re.compile(r"python(?P<version>[0-9]+(?:\.[0-9]+)+)")
PYTHON_LIB = re.compile(r"libpython(?P<version>[0-9]+(?:\.[0-9]+)+)[a-z]?\.so.*")
PATCHLEVEL_H = "patchlevel.h"
PATCHLEVEL = re.compile(rb'#define +PY_VERSION +"*(?P<version>[0-9.\-_a-zA-Z]+)"*')
GO_NAME = re.compile(r"go|go\.exe")
GO_STRING = re.compile(rb"go(?P<version>[0-9]+\.[0-9]+(\.[0-9]+|beta[0-9]+|alpha[0-9]+|rc[0-9]+)?)\x00")
GO_VERSION_FILE = re.compile(rb"go(?P<version>[0-9]+\.[0-9]+(\.[0-9]+|beta[0-9]+|alpha[0-9]+|rc[0-9]+|-[_0-9a-z]+)?)")
GO_STRING_MARKER = b"go1."

# Any base name one of the above looks at (their union, named groups made plain): most
# files in an image are none, and one fullmatch of this settles that instead of eleven.
_NAMES = (PYTHON_BIN, PYTHON_LIB, re.compile(re.escape(PATCHLEVEL_H)), GO_NAME, *(c.name for c in CLASSIFIERS))
ANY_NAME = re.compile("|".join(re.sub(r"\(\?P<\w+>", "(?:", f"(?:{n.pattern})") for n in _NAMES))

MARKERS = (
    *dict.fromkeys(Marker(m, WINDOW) for c in CLASSIFIERS for m, _ in c.patterns),
    *(Marker(f"\0{major}.{minor}.".encode(), WINDOW) for major, minor in PYTHON_VERSIONS),
    Marker(GO_STRING_MARKER, 32),
)


@dataclasses.dataclass(frozen=True)
class Evidence:
    cls: str
    package: str
    version: str
    path: str
    evidence: bytes
    evidence_type: str = "binary"
    purl_namespace: str = ""


class BinaryCataloger:
    name = "binary-classifier"
    globs = ("/**/patchlevel.h", "/**/VERSION*")
    markers = (*MARKERS, *golang.GoBinaryCataloger.markers)

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        found: dict[tuple[str, str], list[Evidence]] = {}
        for ev in evidence(files):
            found.setdefault((ev.package, ev.version), []).append(ev)
        for (package, version), evs in found.items():
            evs.sort(key=lambda e: e.path)
            first = evs[0]
            yield Package(
                "binary",
                package,
                version,
                first.path,
                purl=purl("generic", first.purl_namespace, package, version),
                files=tuple(dict.fromkeys(e.path for e in evs)),
                metadata=BinaryMetadata(first.cls, first.evidence.decode("utf-8", "replace"), first.evidence_type),
            )


def evidence(files: ImageFiles) -> Iterator[Evidence]:
    """Every runtime version found, by file, in path order."""
    for path in files.paths:  # already in path order
        base = path.rpartition("/")[2]
        if not ANY_NAME.fullmatch(base):
            continue
        if (m := PYTHON_BIN.fullmatch(base)) or (m := PYTHON_LIB.fullmatch(base)):
            cls = "python-binary" if base.startswith("python") else "python-binary-lib"
            yield from _python(files, path, cls, m.group("version"))
        elif base == PATCHLEVEL_H:
            yield from _patchlevel(files, path)
        elif GO_NAME.fullmatch(base):
            yield from _go(files, path)
        for c in CLASSIFIERS:
            if c.name.fullmatch(base):
                yield from _classify(files, path, c)


def _marks(files: ImageFiles, path: str) -> tuple[Mark, ...]:
    """The marks of the executable at `path`, symlinks followed (busybox is often a link)."""
    try:
        real = files.resolve(path)
    except SymlinkLoop:
        return ()
    entry = files.get(real) if real else None
    if entry is None or entry.record.type not in REGULAR:
        return ()
    return files.marks.get(real or "", ())


def _first(marks: tuple[Mark, ...], marker: bytes, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
    """The pattern at the first of the marker's windows where it matches."""
    for mark in marks:
        if mark.window.startswith(marker) and (m := pattern.match(mark.window)):
            return m
    return None


def _python(files: ImageFiles, path: str, cls: str, name_version: str) -> Iterator[Evidence]:
    # Syft: [NUL]<version from the name>...[NUL]; the marker is that prefix with its dot.
    pattern = re.compile(rb"\x00(?P<version>" + re.escape(name_version.encode()) + rb"[-._a-zA-Z0-9]*)\x00")
    marker = b"\0" + name_version.encode() + b"."
    m = _first(_marks(files, path), marker, pattern)
    if m:
        yield Evidence(cls, "python", m.group("version").decode(), path, m.group(0).strip(b"\0"))


def _patchlevel(files: ImageFiles, path: str) -> Iterator[Evidence]:
    content = read_optional(files, path)
    m = PATCHLEVEL.search(content or b"")
    if m:
        yield Evidence("python-devel", "python", m.group("version").decode(), path, m.group(0), "devel")


def _go(files: ImageFiles, path: str) -> Iterator[Evidence]:
    marks = _marks(files, path)
    info = None
    try:
        info = golang.build_info([m for m in marks if m.window.startswith(golang.MAGIC)], path)
    except golang.CatalogFileError:
        pass
    m = GO_STRING.match(info.go_version.encode() + b"\0") if info is not None else None
    m = m or _first(marks, GO_STRING_MARKER, GO_STRING)
    if m:
        yield Evidence("go-binary", "go", m.group("version").decode(), path, m.group(0).rstrip(b"\0"))
        return
    # Syft's supporting evidence: a VERSION* file beside the go binary, or one directory up.
    here = posixpath.dirname(path)
    for directory in (here, posixpath.dirname(here)):
        for candidate in sorted(p for p in files if posixpath.dirname(p) == directory):
            if posixpath.basename(candidate).startswith("VERSION"):
                m = GO_VERSION_FILE.search(read_optional(files, candidate) or b"")
                if m:
                    yield Evidence("go-binary-hint", "go", m.group("version").decode(), path, m.group(0), "devel")
                    return


def _classify(files: ImageFiles, path: str, c: Classifier) -> Iterator[Evidence]:
    marks = _marks(files, path)
    for marker, pattern in c.patterns:
        m = _first(marks, marker, pattern)
        if m:
            version = m.group("version").decode()
            yield Evidence(c.cls, c.package, version, path, m.group(0).strip(b"\0"), purl_namespace=c.purl_namespace)
            return


CATALOGER = BinaryCataloger()
