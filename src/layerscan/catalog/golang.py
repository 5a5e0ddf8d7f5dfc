"""Go modules from the build info that Go ≥ 1.18 embeds in every binary (ELF, Mach-O, PE).

The scan hands over a window of each executable at the build info's magic (a scan
marker, so a binary of any size is never kept whole). The header is 32 bytes: the
magic, the pointer size, and flags (bit 1: the version and module strings follow
inline, each with a uvarint length). Older binaries (pointer form) point into the data
segment instead; reading them needs the whole binary, and they are reported as a
CatalogError. The module text is runtime/debug's: `path`, `mod`, `dep`, `=>` (the
replacement of the line before) and `build` lines.

As Syft does: a replaced module is reported under its replacement's path (unless that
is a local directory) and version; a "(devel)" main module gets the version its
-ldflags give, else a pseudo-version from vcs.revision and vcs.time, else none; every
binary also gets a `stdlib` package of its Go version. Package.metadata is a GoMetadata.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterator

from ..filetree import ImageFiles
from ..scan.model import Mark, Marker
from .files import marked
from .metadata import GoMetadata
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

MAGIC = b"\xff Go buildinf:"
HEADER = 32
ALIGN = 16  # Go writes the build info 16-byte aligned, and so it is in the file
INLINE = 2  # header flag: strings inline
WINDOW = 128 << 10  # header and strings: module lists are tens of KB at most
DEVEL = "(devel)"
# runtime/debug's modinfo is wrapped in these 16 bytes either side.
_SENTINEL_LEN = 16
_LDFLAGS_VERSION = (
    re.compile(r"\.[a-zA-Z0-9]*([rR]elease)?([gG]it)?([bB]uild)?[vV]er(sion)?=(\S+/)*(?P<version>v?\d+.\d+.\d+[-\w]*)"),
    re.compile(r"\.[a-zA-Z0-9]*([tT]ag)=(\S+/)*(?P<version>v?\d+.\d+.\d+[-\w]*)"),
)
_STDLIB_VERSION = re.compile(r"go\d")  # a version Syft can make a CPE of; "devel go1.x-…" is not


@dataclasses.dataclass(frozen=True)
class Module:
    path: str
    version: str
    sum: str = ""
    replace: Module | None = None


@dataclasses.dataclass
class BuildInfo:
    go_version: str
    path: str = ""
    main: Module | None = None
    deps: list[Module] = dataclasses.field(default_factory=list)
    settings: dict[str, str] = dataclasses.field(default_factory=dict)


class GoBinaryCataloger:
    name = "go-module-binary"
    globs = ()
    markers = (Marker(MAGIC, WINDOW),)

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        for path, marks in marked(files, MAGIC):
            try:
                info = build_info(marks, path)
            except CatalogFileError as e:
                yield CatalogError(self.name, e.path, e.reason)
                continue
            if info is not None:
                yield from packages(info, path)


def build_info(marks: list[Mark], path: str) -> BuildInfo | None:
    """The build info of the first window that is one; None when none is (the magic
    elsewhere, e.g. as a string in a binary that reads build info)."""
    found: CatalogFileError | None = None
    for _, offset, window in marks:
        if offset % ALIGN or len(window) < HEADER:
            continue
        if not window[15] & INLINE:
            found = CatalogFileError(path, "Go build info in the pre-1.18 pointer form is not read")
            continue
        try:
            version, at = _string(window, HEADER, path)
            modinfo, _ = _string(window, at, path)
        except CatalogFileError as e:
            found = e
            continue
        return parse_modinfo(version, modinfo)
    if found is not None:
        raise found
    return None


def _string(window: bytes, at: int, path: str) -> tuple[str, int]:
    """The uvarint-prefixed string at `at`, and the offset after it."""
    n = shift = 0
    while True:
        if at >= len(window) or shift > 63:
            raise CatalogFileError(path, "Go build info truncated (larger than the scan's window?)")
        b = window[at]
        at += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    if at + n > len(window):
        raise CatalogFileError(path, "Go build info truncated (larger than the scan's window?)")
    return window[at : at + n].decode("utf-8", "replace"), at + n


def parse_modinfo(go_version: str, modinfo: str) -> BuildInfo:
    if len(modinfo) >= 2 * _SENTINEL_LEN + 1 and modinfo[-_SENTINEL_LEN - 1] == "\n":
        modinfo = modinfo[_SENTINEL_LEN:-_SENTINEL_LEN]
    info = BuildInfo(go_version)
    last: Module | None = None
    for line in modinfo.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "path":
            info.path = rest
        elif kind in ("mod", "dep") and len(fields) >= 2:
            last = Module(fields[0], fields[1], fields[2] if len(fields) > 2 else "")
            if kind == "mod":
                info.main = last
            else:
                info.deps.append(last)
        elif kind == "=>" and last is not None and len(fields) >= 2:
            replaced = dataclasses.replace(
                last, replace=Module(fields[0], fields[1], fields[2] if len(fields) > 2 else "")
            )
            if info.main is last:
                info.main = replaced
            else:
                info.deps[-1] = replaced
            last = None
        elif kind == "build":
            key, _, value = rest.partition("=")
            info.settings[key] = value
    return info


def packages(info: BuildInfo, location: str) -> Iterator[Package]:
    main = info.main
    if main is None and info.path:
        main = _main_from_deps(info)
    go_version, _, extra = info.go_version.partition(" ")
    # Syft's reading: experiments only when the suffix starts with "X:", and then from every chunk.
    experiments = (
        tuple(x for chunk in extra.split(" ") for x in chunk.removeprefix("X:").split(","))
        if extra.startswith("X:")
        else ()
    )
    main_path = main.path if main else ""
    arch = info.settings.get("GOARCH", "")

    def metadata(m: Module, settings: dict[str, str] | None = None) -> GoMetadata:
        real = m.replace or m
        return GoMetadata(go_version, real.sum, main_path, arch, settings, experiments)

    for dep in info.deps:
        if main is not None and dep == main:
            continue
        yield _package(dep, metadata(dep), location)
    if main is not None:
        version = main.version
        if version == DEVEL:
            version = _main_version(info.settings, main.path)
        yield _package(dataclasses.replace(main, version=version), metadata(main, dict(info.settings)), location)
    if _STDLIB_VERSION.match(go_version):
        yield Package(
            "go-module",
            "stdlib",
            go_version,
            location,
            purl=purl("golang", "", "stdlib", go_version.removeprefix("go")),
            licenses=("BSD-3-Clause",),
            metadata=GoMetadata(go_version),
        )


def _main_from_deps(info: BuildInfo) -> Module:
    """No `mod` line (a build of files, not a package): the one "(devel)" dependency, else the path."""
    devel = [i for i, d in enumerate(info.deps) if d.version == DEVEL]
    if len(devel) == 1:
        return info.deps.pop(devel[0])
    return Module(info.path, DEVEL)


def _package(m: Module, metadata: GoMetadata, location: str) -> Package:
    name, real = m.path, m
    if m.replace is not None:
        real = m.replace
        if not real.path.startswith((".", "/")):
            name = real.path
    version = "" if real.version == DEVEL else real.version
    namespace, _, last = name.rpartition("/")
    return Package(
        "go-module", name, version, location, purl=purl("golang", namespace, last, version), metadata=metadata
    )


def _main_version(settings: dict[str, str], main_path: str) -> str:
    """Syft's guess for a "(devel)" main module: a version -ldflags set, else a pseudo-version."""
    ldflags = settings.get("-ldflags", "")
    if ldflags:
        for pattern in _LDFLAGS_VERSION:
            m = re.search(rf"(main|{re.escape(main_path)}/\S*){pattern.pattern}", ldflags)
            if m:
                v = m.group("version")
                return v if v.startswith("v") else "v" + v
    revision, when = settings.get("vcs.revision"), settings.get("vcs.time")
    if revision and when:
        try:
            t = datetime.datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(datetime.UTC)
            stamp = t.strftime("%Y%m%d%H%M%S")
        except ValueError:
            stamp = "00010101000000"
        return f"v0.0.0-{stamp}-{revision[:12]}"
    return ""


CATALOGER = GoBinaryCataloger()
