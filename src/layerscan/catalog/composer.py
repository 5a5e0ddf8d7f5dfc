"""PHP Composer packages from `composer.lock` and `vendor/composer/installed.json`.

installed.json is what is installed: Composer 1 writes a list of packages, Composer 2
an object whose `packages` holds them (and `dev-package-names` names the dev ones).
composer.lock is what should be installed: its `packages`, not its `packages-dev`, as
Syft reports them. Syft matches any `installed.json`; one that is JSON but holds no
packages (another tool's) gives nothing, not an error. purls as Syft makes them:
pkg:composer/<vendor>/<name>, further "/" parts of the name joined with "-".
Package.metadata is a ComposerMetadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..filetree import ImageFiles
from .files import parse_each, regular_files
from .metadata import ComposerMetadata
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

LOCK = "/**/composer.lock"
INSTALLED = "/**/installed.json"


class ComposerCataloger:
    name = "php-composer"
    globs = (LOCK, INSTALLED)

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        return parse_each(files, self.name, regular_files(files, self.globs), parse)


def parse(content: bytes, path: str) -> list[Package]:
    try:
        doc = json.loads(content)
    except ValueError as e:
        raise CatalogFileError(path, f"not JSON: {e}") from None
    if path.endswith("/composer.lock"):
        entries = doc.get("packages") if isinstance(doc, dict) else None
        dev_names: set[str] = set()
    elif isinstance(doc, list):  # Composer 1
        entries, dev_names = doc, set()
    elif isinstance(doc, dict):
        entries = doc.get("packages")
        names = doc.get("dev-package-names")
        dev_names = {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()
    else:
        entries = None
    if not isinstance(entries, list):
        return []
    return [_package(e, path, dev_names) for e in entries if isinstance(e, dict) and _str(e.get("name"))]


def _package(e: dict[str, Any], path: str, dev_names: set[str]) -> Package:
    name, version = _str(e.get("name")), _str(e.get("version"))
    source, dist = _obj(e.get("source")), _obj(e.get("dist"))
    licenses = e.get("license")
    licenses = [licenses] if isinstance(licenses, str) else licenses if isinstance(licenses, list) else []
    listed = e.get("authors")
    authors: list[Any] = listed if isinstance(listed, list) else []
    require = _obj(e.get("require"))
    install_path = e.get("install-path")
    return Package(
        "php-composer",
        name,
        version,
        path,
        purl=composer_purl(name, version),
        licenses=tuple(x for x in licenses if isinstance(x, str)),
        metadata=ComposerMetadata(
            type=_str(e.get("type")),
            description=_str(e.get("description")),
            homepage=_str(e.get("homepage")),
            source_url=_str(source.get("url")),
            source_reference=_str(source.get("reference")),
            dist_url=_str(dist.get("url")),
            dist_shasum=_str(dist.get("shasum")),
            authors=tuple(_person(a) for a in authors if isinstance(a, dict) and _str(a.get("name"))),
            require=tuple(f"{k}: {v}" for k, v in require.items() if isinstance(v, str)),
            install_path=install_path if isinstance(install_path, str) else None,
            dev=name in dev_names,
        ),
    )


def composer_purl(name: str, version: str) -> str:
    vendor, _, rest = name.partition("/")
    if not rest:
        return purl("composer", "", name, version)
    return purl("composer", vendor, rest.replace("/", "-"), version)


def _person(a: dict[str, Any]) -> str:
    email = _str(a.get("email"))
    return _str(a.get("name")) + (f" <{email}>" if email else "")


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


CATALOGER = ComposerCataloger()
