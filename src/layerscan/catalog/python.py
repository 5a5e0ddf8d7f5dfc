"""Python distributions: `*dist-info/METADATA`, `*egg-info/PKG-INFO` (directory form, in any
letter case), `*.egg-info` (single-file form), unpacked `*.egg/EGG-INFO/PKG-INFO`, and zipped
`.egg` files. The interpreter's own egg-info (Name: Python) is not a package.

The files a distribution installed come from its RECORD (dist-info, or egg-info
written by pip) or installed-files.txt (setuptools egg-info). Names are normalized
as PEP 503 and Syft do ("Flask" -> "flask", "typing_extensions" -> "typing-extensions");
metadata.name keeps the declared one. Package.metadata is a `PythonMetadata`.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import posixpath
import re
import zipfile
from collections.abc import Iterator

from ..filetree import ImageFiles
from .files import lines, parse_each, read_optional, regular_files
from .metadata import DirectUrl, PythonMetadata
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

# The metadata directories in any letter case (pip writes "dist-info"; some tools "DIST-INFO").
_DIST_INFO = "[dD][iI][sS][tT]-[iI][nN][fF][oO]"
_EGG_INFO = "[eE][gG][gG]-[iI][nN][fF][oO]"
METADATA_GLOBS = (
    f"/**/*{_DIST_INFO}/METADATA",
    f"/**/*{_EGG_INFO}/PKG-INFO",  # also an unpacked egg's EGG-INFO/
    "/**/*.egg-info",
)
EGG_ZIPS = ("/**/*.egg",)
_SIBLINGS = ("RECORD", "installed-files.txt", "top_level.txt", "direct_url.json")
INTERPRETER = "Python"  # the interpreter's own egg-info (lib-dynload/Python-2.7.egg-info) is not a package
MAX_METADATA_BYTES = 4 << 20  # PKG-INFO inside a zipped egg; real ones are kilobytes
_NORMALIZE = re.compile(r"[-_.]+")


class PythonCataloger:
    name = "python"
    globs = (
        *METADATA_GLOBS,
        *EGG_ZIPS,
        *(f"/**/*{kind}/{sib}" for kind in (_DIST_INFO, _EGG_INFO) for sib in _SIBLINGS),
    )

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        return parse_each(
            files,
            self.name,
            regular_files(files, METADATA_GLOBS + EGG_ZIPS),
            lambda content, path: [
                p
                for p in [
                    self._egg_zip(content, path) if path.endswith(".egg") else self._installed(files, content, path)
                ]
                if not (isinstance(p.metadata, PythonMetadata) and p.metadata.name == INTERPRETER)  # as Syft, Trivy
            ],
        )

    def _installed(self, files: ImageFiles, content: bytes, path: str) -> Package:
        fields = parse_metadata(content, path)
        single_file = path.endswith(".egg-info")
        meta_dir = path if single_file else posixpath.dirname(path)
        site = (
            posixpath.dirname(posixpath.dirname(meta_dir))
            if posixpath.basename(meta_dir).upper() == "EGG-INFO"
            else posixpath.dirname(meta_dir)
        )
        owned: list[str] = []
        top_level: list[str] = []
        direct_url = None
        if not single_file:
            owned = _record_files(files, meta_dir, site)
            top_level = lines(read_optional(files, f"{meta_dir}/top_level.txt"))
            direct_url = _direct_url(read_optional(files, f"{meta_dir}/direct_url.json"))
        return to_package(fields, path, site, tuple(owned), top_level, direct_url)

    def _egg_zip(self, content: bytes, path: str) -> Package:
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as zf:
                info = zf.getinfo("EGG-INFO/PKG-INFO")
                if info.file_size > MAX_METADATA_BYTES:
                    raise CatalogFileError(path, f"EGG-INFO/PKG-INFO is {info.file_size} bytes")
                with zf.open(info) as f:
                    metadata = f.read(MAX_METADATA_BYTES + 1)
                top_level = (
                    lines(zf.read("EGG-INFO/top_level.txt")) if "EGG-INFO/top_level.txt" in zf.namelist() else []
                )
        except KeyError:
            raise CatalogFileError(path, "no EGG-INFO/PKG-INFO in the egg") from None
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
            raise CatalogFileError(path, f"unreadable egg: {e}") from None
        return to_package(parse_metadata(metadata, path), path, posixpath.dirname(path), (), top_level, None)


def parse_metadata(content: bytes, path: str) -> dict[str, list[str]]:
    """Core metadata headers (RFC 822 style) -> {field: [values]}; Name is required."""
    try:
        # Core metadata is UTF-8; parsed as bytes, a non-ASCII value would come back as a
        # Header of unknown-8bit characters ("Łukasz" as two replacement characters).
        text = content.decode("utf-8", errors="replace")
        msg = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)
    except Exception as e:  # the email parser is lenient; this is a last resort
        raise CatalogFileError(path, f"unreadable metadata: {e}") from None
    fields: dict[str, list[str]] = {}
    for key, value in msg.items():
        fields.setdefault(key.lower(), []).append(str(value).strip())
    if not fields.get("name", [""])[0]:
        raise CatalogFileError(path, "no Name field")
    return fields


def to_package(
    fields: dict[str, list[str]],
    path: str,
    site: str,
    owned: tuple[str, ...],
    top_level: list[str],
    direct_url: DirectUrl | None,
) -> Package:
    def one(key: str) -> str:
        return fields.get(key, [""])[0]

    declared, version = one("name"), one("version")
    name = normalize(declared)
    vcs = f"{direct_url.vcs}+{direct_url.url}@{direct_url.commit_id}" if direct_url else ""
    return Package(
        type="python",
        name=name,
        version=version,
        location=path,
        purl=purl("pypi", "", name, version, {"vcs_url": vcs}),
        licenses=licenses(fields),
        files=owned,
        metadata=PythonMetadata(
            name=declared,
            author=one("author"),
            author_email=one("author-email"),
            home_page=one("home-page"),
            summary=one("summary"),
            requires_python=one("requires-python"),
            site_packages=site,
            top_level=tuple(top_level),
            direct_url=direct_url,
        ),
    )


def normalize(name: str) -> str:
    return _NORMALIZE.sub("-", name).lower()


def licenses(fields: dict[str, list[str]]) -> tuple[str, ...]:
    """License-Expression, else a one-line License field, else the Trove license classifiers."""
    expr = fields.get("license-expression", [""])[0]
    if expr:
        return (expr,)
    lic = fields.get("license", [""])[0]
    if lic and "\n" not in lic and lic.upper() != "UNKNOWN":
        return (lic,)
    found = [c.rsplit("::", 1)[-1].strip() for c in fields.get("classifier", []) if c.startswith("License ::")]
    return tuple(dict.fromkeys(c for c in found if c and c != "OSI Approved"))


def _record_files(files: ImageFiles, meta_dir: str, site: str) -> list[str]:
    """Absolute paths from RECORD (relative to site-packages) or installed-files.txt (relative to the egg-info)."""
    record = read_optional(files, f"{meta_dir}/RECORD")
    if record is not None:
        rel = [line.split(",", 1)[0] for line in lines(record)]
        return sorted({posixpath.normpath(posixpath.join(site, r)) for r in rel if r})
    installed = read_optional(files, f"{meta_dir}/installed-files.txt")
    return sorted({posixpath.normpath(posixpath.join(meta_dir, r)) for r in lines(installed)})


def _direct_url(content: bytes | None) -> DirectUrl | None:
    if content is None:
        return None
    try:
        doc = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # an optional PEP 610 file: a bad one costs only the purl qualifier
    vcs = doc.get("vcs_info") if isinstance(doc, dict) else None
    if not isinstance(vcs, dict) or not all(
        isinstance(x, str) for x in (doc.get("url"), vcs.get("vcs"), vcs.get("commit_id"))
    ):
        return None
    return DirectUrl(doc["url"], vcs["vcs"], vcs["commit_id"])


CATALOGER = PythonCataloger()
