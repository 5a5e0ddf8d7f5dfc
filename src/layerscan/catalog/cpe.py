"""CPE 2.3 names for every package, generated the way Syft (v1.18) generates them.

    with_cpes(packages) -> the packages, each with `cpes` filled (applied once, after cataloging)
    generate(package)   -> its CPE 2.3 formatted strings, most specific first

A package whose ecosystem has a dictionary of known CPEs (npm, gems, PyPI, Go modules, Rust
crates, Composer, PECL, Jenkins plugins) and whose name is in it gets those CPEs with its
version. Every other package gets guesses: products from its name (and ecosystem: `python-x`,
Maven group ids), vendors from the products and from its own metadata (rpm vendor, apk URL,
npm homepage and repository, gem authors and homepage, Python author and email, Java group
ids and manifest vendors), each with `-`/`_` swapped, cut at separators, and with the known
additions and removals of Syft's tables applied. Rules are keyed by package type; a type
without rules of its own (a new ecosystem) gets the generic guesses from its name.

The tables and the dictionary are data from Syft (Apache-2.0) and the NVD in cpe_data.json;
its `_about` says where they come from.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from .metadata import ApkMetadata, GemMetadata, JavaMetadata, NpmMetadata, PythonMetadata, RpmMetadata
from .model import Package

_DATA_FILE = Path(__file__).with_name("cpe_data.json")

# Package type -> the ecosystem's name in the dictionary of known CPEs. Types beyond our first
# eight are named as Syft names them (go-module, rust-crate, php-composer, php-pecl).
_DICTIONARY = {
    "npm": "npm",
    "gem": "rubygems",
    "python": "pypi",
    "go-module": "go_modules",
    "rust-crate": "rust_crates",
    "php-composer": "php_composer",
    "php-pecl": "php_pecl",
    "jenkins-plugin": "jenkins_plugins",
}
_GO = "go-module"  # vendor and product come from the module path alone

# Syft prefers a vendor the NVD is known to use over every other guess.
_KNOWN_VENDORS = frozenset({"apache"})

# Escaped with a backslash in a formatted string; '-', '.' and '_' stay as they are (CPE 2.3 §6.2.2),
# and a space becomes '_'.
_QUOTE = str.maketrans({" ": "_", **{c: "\\" + c for c in "!\"#$%&'()+,/:;<=>@[]^`{|}~"}})
_UNQUOTED = re.compile(r"\\([._-])")

# The formatted-string production of the CPE 2.3 naming schema (cpe-naming_2.3.xsd), as Syft
# validates every generated name with it; a name it rejects is dropped.
_VALUE = r"""(((\?*|\*?)([a-zA-Z0-9\-\._]|(\\[\\\*\?!"#$%&'\(\)\+,/:;<=>@\[\]\^`\{\|}~]))+(\?*|\*?))|[\*\-])"""
_FS_RE = re.compile(
    r"cpe:2\.3:[aho\*\-](:" + _VALUE + r"){5}(:(([a-zA-Z]{2,3}(-([a-zA-Z]{2}|[0-9]{3}))?)|[\*\-]))"
    r"(:" + _VALUE + r"){4}\Z"
)

_URL_PREFIX_VENDORS = (
    ("https://www.gnu.org/", "gnu"),
    ("https://developer.gnome.org/", "gnome"),
    ("https://www.ruby-lang.org/", "ruby-lang"),
    ("https://llvm.org/", "llvm"),
    ("https://www.isc.org/", "isc"),
    ("https://musl.libc.org/", "musl-libc"),
    ("https://www.mozilla.org/", "mozilla"),
    ("https://www.x.org/", "x.org"),
    ("https://w1.fi/", "w1.fi"),
)
_FORGE_URL = re.compile(r"^(?:https|http|git)://(?:github|gitlab)\.com/([\w\-]*?)/.*\Z", re.ASCII)
_APK_STREAM = re.compile(r"^([a-zA-Z][\w-]*?)(\-?\d[\d\.]*?)($|-([a-zA-Z][\w-]*?)?)\Z", re.ASCII)
_APK_PREFIX_TYPES = (("py-", "python"), ("ruby-", "gem"))

_TLDS = ("com", "org", "net", "io", "be")  # a value starting with one looks like a Java group id
_JAVA_PRIMARY_GROUP_FIELDS = (
    "Group-Id",
    "Bundle-SymbolicName",
    "Extension-Name",
    "Specification-Vendor",
    "Implementation-Vendor",
    "Implementation-Vendor-Id",
    "Implementation-Title",
    "Bundle-Activator",
)
_JAVA_SECONDARY_GROUP_FIELDS = ("Automatic-Module-Name", "Main-Class", "Package")
_JAVA_VENDOR_NAME_FIELDS = ("Specification-Vendor", "Implementation-Vendor")
_NOT_JAVA_PRODUCTS = frozenset({"plugin", "plugins", "client"})
_NOT_JAVA_VENDORS = frozenset({"plugin", "plugins"})


class _Data(NamedTuple):
    additions: dict[str, dict[str, dict[str, list[str]]]]  # type -> "name|vendor" -> products, vendors
    removals: dict[str, dict[str, dict[str, list[str]]]]
    java_group_ids: dict[str, str]  # artifactId -> groupId, for jars that do not say theirs
    dictionary: dict[str, dict[str, list[str]]]  # ecosystem -> package name -> CPEs


@functools.cache
def _data() -> _Data:
    raw = json.loads(_DATA_FILE.read_text(encoding="utf-8"))
    return _Data(raw["additions"], raw["removals"], raw["java_group_ids"], raw["dictionary"])


def with_cpes(packages: Iterable[Package]) -> list[Package]:
    return [dataclasses.replace(p, cpes=generate(p)) for p in packages]


def generate(p: Package) -> tuple[str, ...]:
    known = _from_dictionary(p)
    return known if known else _from_attributes(p)


# ---------------------------------------------------------------------------- the CPE value


class _Cpe(NamedTuple):
    """The attributes Syft fills; the others are ANY."""

    vendor: str
    product: str
    version: str
    target_sw: str = ""

    def formatted(self) -> str:
        return self._bound(*(_quote(f) for f in self))

    def sort_key(self) -> tuple[int, int, str]:
        # Syft's specificity order: more attributes given (weighted), then longer, then by text.
        score = 2 + (3 if self.vendor else 0) + (4 if self.product else 0)
        score += (1 if self.version else 0) + (1 if self.target_sw else 0)
        length = 1 + len(self.vendor) + len(self.product) + len(self.version) + len(self.target_sw)
        return (-score, -length, self._bound(*self))

    @staticmethod
    def _bound(vendor: str, product: str, version: str, target_sw: str) -> str:
        """part:vendor:product:version:update:edition:language:sw_edition:target_sw:target_hw:other"""
        return f"cpe:2.3:a:{_bind(vendor)}:{_bind(product)}:{_bind(version)}:*:*:*:*:{_bind(target_sw)}:*:*"


def _quote(value: str) -> str:
    return value.translate(_QUOTE)


def _bind(value: str) -> str:
    if value == "":
        return "*"
    return _UNQUOTED.sub(r"\1", value) if "\\" in value else value


def _parse(text: str) -> _Cpe | None:
    """A formatted string from the dictionary -> its attributes, unquoted (None if it is not one)."""
    parts = re.split(r"(?<!\\):", text)
    if len(parts) != 13 or parts[:2] != ["cpe", "2.3"]:
        return None
    vals = [re.sub(r"\\(.)", r"\1", v.replace(" ", "_")) for v in parts[2:]]
    vals = ["" if v == "*" else v for v in vals]
    return _Cpe(vals[1], vals[2], vals[3], vals[8])


def _sorted(cpes: dict[_Cpe, str]) -> tuple[str, ...]:
    """The formatted strings (the values), most specific CPE first."""
    return tuple(text for _, text in sorted(cpes.items(), key=lambda item: item[0].sort_key()))


# ---------------------------------------------------------------------------- the dictionary


def _syft_type(p: Package) -> str:
    """The type Syft's tables know the package by: Syft calls a jar from the Jenkins plugin
    groups, or a .hpi/.jpi archive, a jenkins-plugin."""
    if p.type == "java":
        outer = p.location.rsplit(":", 1)[-1].lower()
        if "io.jenkins.plugins" in p.purl or "org.jenkins-ci.plugins" in p.purl or outer.endswith((".hpi", ".jpi")):
            return "jenkins-plugin"
    return p.type


def _from_dictionary(p: Package) -> tuple[str, ...]:
    eco = _DICTIONARY.get(_syft_type(p))
    if eco is None:
        return ()
    found = [_parse(text) for text in _data().dictionary.get(eco, {}).get(p.name, ())]
    known = [c._replace(version=p.version) for c in found if c is not None]
    return _sorted({c: c.formatted() for c in known})


# ---------------------------------------------------------------------------- candidates


class _Candidate(NamedTuple):
    value: str
    no_sub_selections: bool = False
    no_delimiter_variations: bool = False


class _Candidates:
    """A set of field candidates; the same value may be held with different transforms allowed."""

    def __init__(self, *values: str) -> None:
        self.items: dict[_Candidate, None] = {}
        self.add_values(*values)

    def add(self, *candidates: _Candidate) -> None:
        for c in candidates:
            self.items[c._replace(value=_unquote(c.value))] = None

    def add_values(self, *values: str) -> None:
        self.add(*(_Candidate(v) for v in values))

    def union(self, other: _Candidates) -> None:
        self.add(*other.items)

    def remove_values(self, *values: str) -> None:
        drop = set(values)
        self.items = {c: None for c in self.items if c.value not in drop}

    def clear(self) -> None:
        self.items = {}

    def values(self) -> list[str]:
        return list(dict.fromkeys(c.value for c in self.items))


def _unquote(value: str) -> str:
    # Syft unquotes a value written as a Go string literal ("x" or `x`).
    if len(value) >= 2 and value[0] == value[-1] == "`" and "`" not in value[1:-1]:
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            out = json.loads(value)
        except ValueError:
            return value
        return out if isinstance(out, str) else value
    return value


def _add_delimiter_variations(c: _Candidates) -> None:
    for cand in list(c.items):
        if cand.no_delimiter_variations:
            continue
        if "-" in cand.value:
            c.add(cand._replace(value=cand.value.replace("-", "_")))
        if "_" in cand.value:
            c.add(cand._replace(value=cand.value.replace("_", "-")))


def _sub_selections(field: str) -> list[str]:
    """jenkins-ci-tools -> [jenkins, jenkins-ci, jenkins-ci-tools], each keeping its separator."""
    out: list[str] = []
    last = ""
    for raw in re.findall(r"[^-_]*[-_]|[^-_]+$", field):
        part = raw.strip("-_")
        if part:
            out.append(out[-1] + last + part if out else part)
        last = raw[-1]
    return out


def _add_sub_selections(c: _Candidates) -> None:
    for cand in list(c.items):
        if not cand.no_sub_selections:
            c.add_values(*_sub_selections(cand.value))


def _table(kind: str, ptype: str, name: str, vendor: str = "") -> dict[str, list[str]] | None:
    table = (_data().additions if kind == "add" else _data().removals).get(ptype, {})
    return table.get(f"{name}|{vendor}")


def _extra_vendors(ptype: str, name: str, vendor: str) -> list[str]:
    out: list[str] = []
    for n, v in ((name, vendor), (name, ""), ("", vendor)):
        entry = _table("add", ptype, n, v)
        if entry:
            out += entry["vendors"]
    return out


def _extra_products(ptype: str, name: str) -> list[str]:
    entry = _table("add", ptype, name)
    return entry["products"] if entry else []


def _vendors_to_remove(ptype: str, name: str) -> list[str]:
    entry = _table("remove", ptype, name)
    return entry["vendors"] if entry else []


def _products_to_remove(ptype: str, name: str) -> list[str]:
    entry = _table("remove", ptype, name)
    return entry["products"] if entry else []


# ---------------------------------------------------------------------------- per ecosystem


def _vendors_from_url(url: str) -> _Candidates:
    out = _Candidates()
    for prefix, vendor in _URL_PREFIX_VENDORS:
        if url.startswith(prefix):
            out.add(_Candidate(vendor, True, True))
            return out
    m = _FORGE_URL.match(url)
    if m:
        out.add(_Candidate(m.group(1), True, True))
    return out


def _person(name: str) -> str:
    name = name.strip().lower()
    for sep in ("-", " ", "."):
        name = name.replace(sep, "_")
    return name.removeprefix("the_")


def _python_project_vendors(vendor: str) -> list[str]:
    return [] if vendor.endswith("project") else [f"{vendor}project", f"{vendor}_project"]


def _python_vendors(m: PythonMetadata) -> _Candidates:
    out = _Candidates()
    if m.author:
        name = _person(m.author)
        out.add(_Candidate(name, True, True))
        out.add(*(_Candidate(v, True, True) for v in _python_project_vendors(name)))
    if m.author_email:
        name = _person(m.author_email.split("@")[0])
        out.add(_Candidate(name, True))
        out.add(*(_Candidate(v, True, True) for v in _python_project_vendors(name)))
    return out


def _gem_vendors(m: GemMetadata) -> _Candidates:
    out = _Candidates()
    for author in m.authors:  # a name or an email address
        out.add(_Candidate(_person(author.split("@")[0]), True))
    if m.homepage:
        out.union(_vendors_from_url(m.homepage))
    return out


def _npm_vendors(m: NpmMetadata) -> _Candidates:
    out = _Candidates()
    for url in (m.url, m.homepage):
        if url:
            out.union(_vendors_from_url(url))
    return out


def _rpm_vendors(m: RpmMetadata) -> _Candidates:
    out = _Candidates()
    if m.vendor:
        out.add(_Candidate(m.vendor.split(",")[0].strip().lower().replace(" ", ""), True))
    return out


def _apk_upstream(name: str) -> tuple[str, str] | None:
    """(upstream name, the type whose tables apply): py3.11-foo-doc -> foo-doc; py-x is python's x."""
    m = _APK_STREAM.match(name)
    if m and m.group(1):
        name = f"{m.group(1)}-{m.group(4)}" if m.group(4) else m.group(1)
    for prefix, ptype in _APK_PREFIX_TYPES:
        if name.startswith(prefix) and name[len(prefix) :]:
            return name[len(prefix) :], ptype
    return (name, "apk") if name else None


def _apk_vendors(p: Package, m: ApkMetadata) -> _Candidates:
    out = _Candidates()
    upstream = _apk_upstream(p.name)
    if upstream:
        name, ptype = upstream
        out.add_values(name, *_extra_vendors(ptype, name, name))
        out.remove_values(*_vendors_to_remove(ptype, name))
        if ptype == "python":
            for v in _python_project_vendors(name):
                out.add_values(v, *_extra_vendors(ptype, v, v))
                out.remove_values(*_vendors_to_remove(ptype, v))
    out.union(_vendors_from_url(m.url))
    return out


def _apk_products(p: Package) -> _Candidates:
    out = _Candidates()
    upstream = _apk_upstream(p.name)
    if upstream:
        name, ptype = upstream
        out.add_values(name, *_extra_products(ptype, name))
        out.remove_values(*_products_to_remove(ptype, name))
    return out


def _looks_like_group(value: str) -> bool:
    return value.startswith(_TLDS)


def _clean_group(value: str) -> str:
    return value.split(";")[0].split("#")[0].strip()  # OSGi directives, comments


def _java_artifact(m: JavaMetadata) -> str:
    if m.pom_properties is None:
        return ""
    artifact = m.pom_properties.artifact_id.strip()
    # an artifactId that is really a group id is not used as one
    return "" if "." in artifact and len(artifact.split(".")) > 1 else artifact


def _java_groups(p: Package, m: JavaMetadata) -> list[str]:
    groups: list[str] = []
    if m.pom_properties is not None:
        pom = m.pom_properties
        if _looks_like_group(pom.group_id):
            groups.append(_clean_group(pom.group_id))
        if _looks_like_group(pom.artifact_id) and len(pom.artifact_id.split(".")) > 1:
            groups.append(_clean_group(pom.artifact_id))
    known = _data().java_group_ids.get(p.name)
    if known:
        return [*groups, known]
    for fields in (_JAVA_PRIMARY_GROUP_FIELDS, _JAVA_SECONDARY_GROUP_FIELDS):
        found = sorted(_clean_group(v) for f in fields if _looks_like_group(v := m.manifest.get(f, "")))
        if found:
            return [*groups, *found]
    return groups


def _java_products(p: Package, m: JavaMetadata) -> list[str]:
    artifact = _java_artifact(m)
    out: dict[str, None] = {artifact: None} if artifact else {}
    for group in _java_groups(p, m):
        plugin = "plugin" in artifact or "plugin" in group
        for i, field in enumerate(group.split(".")):
            field = field.strip()
            if not field or field.lower() in _NOT_JAVA_PRODUCTS or i <= 1:
                continue
            # an umbrella project's name starts or ends its components' artifact ids
            if not artifact or (artifact.startswith(field) or artifact.endswith(field)) and not plugin:
                out[field] = None
    return list(out)


def _java_vendors(p: Package, m: JavaMetadata) -> _Candidates:
    out = _Candidates()
    for group in _java_groups(p, m):
        out.add(_Candidate(group, True, True))  # the whole group id: Grype's data has some
        for i, field in enumerate(group.split(".")):
            field = field.strip()
            if field and i > 0 and field.lower() not in _NOT_JAVA_VENDORS:
                out.add_values(field)
    for key in _JAVA_VENDOR_NAME_FIELDS:
        value = m.manifest.get(key)
        if value is not None and not _looks_like_group(value):
            out.add(_Candidate(_person(value), True))
    return out


def _go_parts(name: str) -> tuple[str, list[str]]:
    host, _, path = name.partition("/")
    clean = path.strip("/")
    return host, clean.split("/") if clean else [""]


def _go_product(name: str) -> str:
    host, parts = _go_parts(name)
    if host in ("golang.org", "gopkg.in"):
        return "/".join(parts)
    if host == "google.golang.org":
        return parts[0]
    return "/".join(parts[1:]) if len(parts) >= 2 else ""


def _go_vendor(name: str) -> str:
    host, parts = _go_parts(name)
    if host in ("google.golang.org", "golang.org", "gopkg.in"):
        return {"google.golang.org": "google", "golang.org": "golang"}.get(host, "")
    return parts[0] if len(parts) >= 2 else ""


def _products(p: Package) -> list[str]:
    name, ptype = p.name, _syft_type(p)
    out = _Candidates(name)
    if p.type == "python":
        if not name.startswith("python"):
            out.add_values("python-" + name)
    elif isinstance(p.metadata, JavaMetadata):
        out.add_values(*_java_products(p, p.metadata))
    elif ptype == _GO:
        out.clear()
        out.add_values(_go_product(name))
    if isinstance(p.metadata, ApkMetadata):
        out.union(_apk_products(p))
    out.remove_values("", "*")
    _add_delimiter_variations(out)
    out.add_values(*_extra_products(ptype, name))
    out.remove_values(*_products_to_remove(ptype, name))
    return out.values()


def _vendors(p: Package, products: list[str]) -> list[str]:
    # Where metadata names no vendor, projects are often their own vendor (rack, xstream).
    name, ptype = p.name, _syft_type(p)
    out = _Candidates(*products)
    if p.type == "npm" and name == "node.js":
        out.add_values("nodejs")
    elif p.type == "gem":
        out.add_values("ruby-lang")
    elif ptype == _GO:
        out.clear()
        out.add_values(_go_vendor(name))
    m: Any = p.metadata
    if isinstance(m, RpmMetadata):
        out.union(_rpm_vendors(m))
    elif isinstance(m, GemMetadata):
        out.union(_gem_vendors(m))
    elif isinstance(m, PythonMetadata):
        out.union(_python_vendors(m))
    elif isinstance(m, JavaMetadata):
        out.union(_java_vendors(p, m))
    elif isinstance(m, ApkMetadata):
        out.union(_apk_vendors(p, m))
    elif isinstance(m, NpmMetadata):
        out.union(_npm_vendors(m))
    out.remove_values("", "*")
    _add_delimiter_variations(out)
    _add_sub_selections(out)
    for vendor in out.values():
        out.add_values(*_extra_vendors(ptype, name, vendor))
    out.remove_values(*_vendors_to_remove(ptype, name))
    values = out.values()
    known = [v for v in values if v in _KNOWN_VENDORS]
    return known[:1] if known else values


def _rejected(c: _Cpe, p: Package) -> bool:
    """Syft's filters for names known to match the wrong product."""
    name = p.name.lower()
    if c.product == "jira" and "client" in name and c.vendor in ("", "jira", "atlassian"):
        return True  # a Jira client is not Jira
    if c.product == "jenkins" and _syft_type(p) == "jenkins-plugin":
        return True  # a plugin is not Jenkins
    return c.product == "jenkins" and "jenkins" not in name and c.vendor in ("", "jenkins", "cloudbees")


def _from_attributes(p: Package) -> tuple[str, ...]:
    products = _products(p)
    if not products:
        return ()
    vendors = _vendors(p, products)
    out: dict[_Cpe, str] = {}
    for product in products:
        for vendor in vendors:
            c = _Cpe(vendor, product, p.version)
            text = c.formatted()
            if not _rejected(c, p) and _FS_RE.search(text):
                out[c] = text
    return _sorted(out)
