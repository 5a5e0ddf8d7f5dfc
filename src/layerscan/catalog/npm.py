"""npm packages: every package.json that names a package (installed ones under
node_modules, nested to any depth, and the application's own manifest).

The installed tree is the truth: a package-lock.json (or npm's hidden
node_modules/.package-lock.json) only adds what it knows about an installed
package (resolved URL, integrity, dev); a package only in the lock is not reported.
Package.metadata is an `NpmMetadata`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from typing import Any

from ..filetree import ImageFiles
from .files import parse_each, read, regular_files
from .metadata import NpmMetadata
from .model import CatalogError, CatalogFileError, Distro, Package
from .purl import purl

LOCKS = ("package-lock.json", "node_modules/.package-lock.json")
_NODE_MODULES = "/node_modules/"
# npm's validate-npm-package-name: what encodeURIComponent leaves alone, optionally @scope/.
_PART = r"[A-Za-z0-9\-_.!~*'()]+"
_NAME = re.compile(rf"(?:@{_PART}/)?{_PART}")
_PEOPLE = ("author", "authors", "contributors", "maintainers")

JsonObject = dict[str, Any]  # a parsed JSON object: every value is checked before it is used


class NpmCataloger:
    name = "npm"
    globs = ("/**/package.json", *(f"/**/{lock}" for lock in LOCKS))

    def catalog(self, files: ImageFiles, distro: Distro | None) -> Iterator[Package | CatalogError]:
        locks: dict[str, dict[str, JsonObject] | CatalogError] = {}

        def package(content: bytes, path: str) -> Iterator[Package | CatalogError]:
            manifest = parse_package_json(content, path)
            if manifest is None:
                return
            lock_entry: JsonObject = {}
            if _NODE_MODULES in path:
                root, _, rel = path.partition(_NODE_MODULES)
                lock = locks.get(root)
                if lock is None:
                    lock = locks[root] = _lock_packages(files, root)
                    if isinstance(lock, CatalogError):
                        yield lock
                if not isinstance(lock, CatalogError):
                    lock_entry = lock.get("node_modules/" + posixpath.dirname(rel), {})
            yield to_package(manifest, path, lock_entry)

        return parse_each(files, self.name, regular_files(files, ("/**/package.json",)), package)


def parse_package_json(content: bytes, path: str) -> JsonObject | None:
    """The manifest as a dict; None for a package.json that names no package (a
    `{"type": "module"}` marker). Raises CatalogFileError on bad JSON or a bad name."""
    try:
        doc = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CatalogFileError(path, f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise CatalogFileError(path, "not a JSON object")
    name = doc.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > 214 or not _NAME.fullmatch(name):
        raise CatalogFileError(path, f"invalid package name {str(name)[:80]!r}")
    version = doc.get("version", "")
    if not isinstance(version, str):
        raise CatalogFileError(path, f"version is not a string: {str(version)[:80]!r}")
    return doc


def to_package(doc: JsonObject, path: str, lock_entry: JsonObject) -> Package:
    """`doc` as parse_package_json checked it; `lock_entry` the lock's entry ({} when none)."""
    name, version = str(doc["name"]), str(doc.get("version", ""))
    scope, _, bare = name.rpartition("/")
    resolved, integrity = lock_entry.get("resolved"), lock_entry.get("integrity")
    metadata = NpmMetadata(
        author=", ".join(p for field in _PEOPLE for p in _people(doc.get(field))),
        author_field=", ".join(_people(doc.get("author"))),
        homepage=_str(doc.get("homepage")),
        url=_repository(doc.get("repository")),
        description=_str(doc.get("description")),
        private=doc.get("private") is True,
        resolved=resolved if isinstance(resolved, str) else None,
        integrity=integrity if isinstance(integrity, str) else None,
        dev=lock_entry.get("dev") is True if lock_entry else None,
    )
    return Package(
        "npm", name, version, path, purl=purl("npm", scope, bare, version), licenses=licenses(doc), metadata=metadata
    )


def licenses(doc: JsonObject) -> tuple[str, ...]:
    """`license` as a string, a {type} object or a list of either; the legacy
    `licenses` list of {type} objects. Anything else (numbers, null, bare strings
    in `licenses`, objects without a type) declares nothing."""
    out: list[str] = []
    lic = doc.get("license")
    for item in lic if isinstance(lic, list) else [lic]:
        value = item.get("type") if isinstance(item, dict) else item
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
    legacy = doc.get("licenses")
    if isinstance(legacy, list):
        out += [
            i["type"].strip()
            for i in legacy
            if isinstance(i, dict) and isinstance(i.get("type"), str) and i["type"].strip()
        ]
    return tuple(dict.fromkeys(out))


def _people(field: object) -> list[str]:
    items = field if isinstance(field, list) else [field]
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            text = item["name"]
            if isinstance(item.get("email"), str) and item["email"]:
                text += f" <{item['email']}>"
            if isinstance(item.get("url"), str) and item["url"]:
                text += f" ({item['url']})"
            out.append(text)
    return out


def _repository(field: object) -> str:
    if isinstance(field, dict):
        return _str(field.get("url"))
    return _str(field)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _lock_packages(files: ImageFiles, root: str) -> dict[str, JsonObject] | CatalogError:
    """`packages` of the project's lock (lockfileVersion 2 and 3), keyed "node_modules/x"."""
    for name in LOCKS:
        path = posixpath.join(root or "/", name)
        if path not in files:
            continue
        content = read(files, NpmCataloger.name, path)
        if isinstance(content, CatalogError):
            return content
        try:
            doc = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return CatalogError(NpmCataloger.name, path, f"not valid JSON: {e}")
        packages = doc.get("packages") if isinstance(doc, dict) else None
        if isinstance(packages, dict):
            return {k: v for k, v in packages.items() if isinstance(v, dict)}
    return {}


CATALOGER = NpmCataloger()
