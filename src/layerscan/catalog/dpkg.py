"""Debian packages: /var/lib/dpkg/status and distroless /var/lib/dpkg/status.d/*.

Files a package owns come from `info/<pkg>[:<arch>].list`, `.md5sums` (with their
md5 digests) and `.conffiles` plus the stanza's `Conffiles:`; licenses from the
machine-readable parts of /usr/share/doc/<pkg>/copyright. Package.metadata is a
`DpkgMetadata`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from ..filetree import ImageFiles
from .files import lines, parse_each, read_optional
from .metadata import DpkgFile, DpkgMetadata, FileDigest
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import os_purl

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d"
INFO = "/var/lib/dpkg/info"
DOC = "/usr/share/doc"

# The control files dpkg keeps next to a package's stanza; in status.d only the
# stanza file itself (named after the package, no suffix) is a package.
_CONTROL_SUFFIXES = (
    ".md5sums",
    ".list",
    ".conffiles",
    ".preinst",
    ".postinst",
    ".prerm",
    ".postrm",
    ".triggers",
    ".shlibs",
    ".symbols",
    ".templates",
    ".config",
    ".control",
)

_LICENSE = re.compile(r"^License: (\S*)")
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([0-9A-Za-z_.\-]+)")
_SOURCE = re.compile(r"^(\S+)(?:\s*\((\S+)\))?$")
_MD5 = re.compile(r"[0-9a-f]{32}")


class DpkgCataloger:
    name = "dpkg"
    globs = (
        STATUS,
        f"{STATUS_D}/*",
        f"{INFO}/*.list",
        f"{INFO}/*.md5sums",
        f"{INFO}/*.conffiles",
        f"{DOC}/*/copyright",
    )

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        def packages(content: bytes, path: str) -> Iterator[Package]:
            control_dir = INFO if path == STATUS else STATUS_D
            for stanza in parse_status(content, path):
                pkg = self._package(files, distro, path, control_dir, stanza)
                if pkg is not None:
                    yield pkg

        return parse_each(files, self.name, self._databases(files), packages)

    @staticmethod
    def _databases(files: ImageFiles) -> list[str]:
        found = [STATUS] if STATUS in files.files else []
        prefix = STATUS_D + "/"
        found += sorted(
            p
            for p in files
            if p.startswith(prefix)
            and "/" not in p[len(prefix) :]
            and files.files[p].record.type != "dir"
            and not p.endswith(_CONTROL_SUFFIXES)
        )
        return found

    def _package(
        self, files: ImageFiles, distro: Distro | None, location: str, control_dir: str, st: dict[str, str]
    ) -> Package | None:
        name = st.get("Package", "")
        if not name or not is_installed(st.get("Status", "")):
            return None
        version = st.get("Version", "")
        arch = st.get("Architecture", "")
        source, source_version = parse_source(st.get("Source", ""))
        records = owned_files(files, control_dir, name, arch, st.get("Conffiles", ""))
        listed = _control_lines(files, control_dir, name, arch, ".list")
        paths = {r.path for r in records}
        for p in listed:
            row = files.row(p)
            if p not in ("/", "/.") and (row is None or files.kind(row) != "dir"):
                paths.add(p)
        copyright_text = read_optional(files, f"{DOC}/{name}/copyright")
        upstream = source if not source_version or source_version == version else f"{source}@{source_version}"
        return Package(
            type="dpkg",
            name=name,
            version=version,
            location=location,
            purl=os_purl("deb", distro, name, version, arch, upstream if source else ""),
            licenses=parse_copyright(copyright_text) if copyright_text else (),
            source=source,
            source_version=source_version,
            arch=arch,
            files=tuple(sorted(paths)),
            metadata=DpkgMetadata(
                installed_size=_int(st.get("Installed-Size", "")),
                maintainer=st.get("Maintainer", ""),
                status=st.get("Status", ""),
                depends=_clauses(st.get("Depends", "")),
                pre_depends=_clauses(st.get("Pre-Depends", "")),
                provides=_clauses(st.get("Provides", "")),
                files=records,
            ),
        )


def parse_status(content: bytes, path: str) -> list[dict[str, str]]:
    """deb822 stanzas; a line that is neither `Field: value` nor a continuation is an error."""
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = ""
    for n, line in enumerate(content.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, ""
        elif line[0] in " \t":
            if not key:
                raise CatalogFileError(path, f"line {n}: continuation line outside a field")
            cur[key] += "\n" + line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            cur[key] = value.strip()
        else:
            raise CatalogFileError(path, f"line {n}: not a 'Field: value' line")
    if cur:
        stanzas.append(cur)
    return stanzas


def is_installed(status: str) -> bool:
    """'install ok installed' (or 'hold ok installed'); a missing Status counts as installed (distroless)."""
    words = status.split()
    return not words or words[-1] == "installed"


def parse_source(field: str) -> tuple[str, str]:
    """'pam' -> ('pam', ''); 'util-linux (2.38.1-5)' -> ('util-linux', '2.38.1-5')."""
    m = _SOURCE.match(field.strip())
    return (m.group(1), m.group(2) or "") if m else ("", "")


def parse_copyright(content: bytes) -> tuple[str, ...]:
    """Licenses named by `License:` fields and /usr/share/common-licenses/ references, sorted."""
    found: set[str] = set()
    for line in content.decode("utf-8", "replace").splitlines():
        for rx in (_LICENSE, _COMMON_LICENSE):
            m = rx.search(line)
            if m:
                value = m.group(1).strip().rstrip(".")
                if value and value.lower() != "none":  # DEP-5 "License: none" on generated data is no license
                    found.add(value)
    return tuple(sorted(found))


def owned_files(
    files: ImageFiles, control_dir: str, name: str, arch: str, conffiles_field: str
) -> tuple[DpkgFile, ...]:
    """The md5sums entries plus conffiles, each once, in path order."""
    out: dict[str, DpkgFile] = {}
    md5 = _MD5.fullmatch
    for line in _control_lines(files, control_dir, name, arch, ".md5sums"):  # a line per file: kept lean
        digest, _, rel = line.partition(" ")
        rel = rel.strip()
        if rel and md5(digest):
            p = "/" + rel.lstrip("/")
            out[p] = DpkgFile(p, FileDigest("md5", digest), False)
    for line in conffiles_field.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("/"):
            p = parts[0]
            known = out.get(p)
            given = FileDigest("md5", parts[1]) if len(parts) > 1 and _MD5.fullmatch(parts[1]) else None
            out[p] = DpkgFile(p, given or (known.digest if known else None), is_config_file=True)
    for p in _control_lines(files, control_dir, name, arch, ".conffiles"):
        if p.startswith("/"):
            known = out.get(p)
            out[p] = DpkgFile(p, known.digest if known else None, is_config_file=True)
    return tuple(out[p] for p in sorted(out))


def _control_lines(files: ImageFiles, control_dir: str, name: str, arch: str, suffix: str) -> list[str]:
    """Lines of the package's control file `suffix`, named `<pkg>` or `<pkg>:<arch>`."""
    for base in (name, f"{name}:{arch}"):
        content = read_optional(files, posixpath.join(control_dir, base + suffix))
        if content is not None:
            return lines(content)
    return []


def _clauses(field: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in field.replace("\n", " ").split(",") if c.strip())


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


CATALOGER = DpkgCataloger()
