"""CPE generation (catalog/cpe.py): known packages against the CPEs Syft's own tests expect
for them, and the corpus images against the CPEs Syft 1.18 wrote for the same packages."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from analyzed import analysis
from conftest import IMAGES
from layerscan.catalog import cpe
from layerscan.catalog.metadata import (
    ApkMetadata,
    DpkgMetadata,
    GemMetadata,
    JavaMetadata,
    NpmMetadata,
    PackageMetadata,
    PomProperties,
    PythonMetadata,
    RpmMetadata,
)
from layerscan.catalog.model import Package
from layerscan.store import results

log = logging.getLogger(__name__)


def pkg(ptype: Any, name: str, version: str, metadata: PackageMetadata, location: str = "/x", **kw: Any) -> Package:
    # ptype is Any: ecosystems another branch adds (go-module) are not in PackageType yet.
    return Package(type=ptype, name=name, version=version, location=location, metadata=metadata, **kw)


def cpes(*parts: str, version: str) -> set[str]:
    """'vendor:product' pairs -> CPE 2.3 strings of a version."""
    return {f"cpe:2.3:a:{p}:{version}:*:*:*:*:*:*:*" for p in parts}


def test_dpkg_package_is_its_own_vendor_and_the_epoch_colon_is_quoted() -> None:
    p = pkg("dpkg", "name", "1:3.2", DpkgMetadata(maintainer="Someone <a@b>"))
    assert cpe.generate(p) == ("cpe:2.3:a:name:name:1\\:3.2:*:*:*:*:*:*:*",)
    p = pkg("dpkg", "libc-bin", "2.36-9+deb12u4", DpkgMetadata())
    assert set(cpe.generate(p)) == cpes(
        *(f"{v}:{d}" for v in ("libc-bin", "libc_bin", "libc") for d in ("libc-bin", "libc_bin")),
        version="2.36-9\\+deb12u4",
    )


def test_rpm_vendor() -> None:
    p = pkg("rpm", "name", "3.2", RpmMetadata(vendor="some-vendor"))
    assert set(cpe.generate(p)) == cpes("name:name", "some-vendor:name", "some_vendor:name", version="3.2")


def test_npm_vendor_from_repository_url_not_from_author() -> None:
    p = pkg("npm", "name", "3.2", NpmMetadata(author="jon", url="https://github.com/bob/npm-name"))
    assert set(cpe.generate(p)) == cpes("name:name", "bob:name", version="3.2")


def test_npm_package_in_the_dictionary_takes_its_known_cpes() -> None:
    p = pkg("npm", "express", "4.22.3", NpmMetadata(author="TJ Holowaychuk <tj@vision-media.ca>"))
    assert cpe.generate(p) == ("cpe:2.3:a:openjsf:express:4.22.3:*:*:*:*:node.js:*:*",)


def test_python_dist_with_author_and_email() -> None:
    p = pkg("python", "name", "3.2", PythonMetadata(author="alex goodman", author_email="william.goodman@anchore.com"))
    vendors = ("name", "python-name", "python", "python_name", "alex_goodman", "william-goodman", "william_goodman")
    vendors += ("alex_goodman_project", "alex_goodmanproject", "william_goodman_project", "william_goodmanproject")
    products = ("name", "python-name", "python_name")
    assert set(cpe.generate(p)) == cpes(*(f"{v}:{d}" for v in vendors for d in products), version="3.2")


def test_python_redis_is_not_the_redis_server() -> None:
    got = set(cpe.generate(pkg("python", "redis", "2.1.4", PythonMetadata())))
    vendors, products = ("python-redis", "python", "python_redis"), ("python-redis", "python_redis", "redis")
    assert got == cpes(*(f"{v}:{d}" for v in vendors for d in products), version="2.1.4")


def test_python_dist_with_homepage() -> None:
    # Syft takes no vendor from a Python homepage; a name in the dictionary takes its known CPEs.
    home = PythonMetadata(name="Blinker", author="Jason Kirtland", home_page="https://github.com/pallets-eco/blinker")
    got = set(cpe.generate(pkg("python", "blinker", "1.9.0", home)))
    assert not any("pallets" in c for c in got) and "cpe:2.3:a:jason_kirtland:blinker:1.9.0:*:*:*:*:*:*:*" in got
    p = pkg("python", "certifi", "2024.2.2", PythonMetadata(home_page="https://github.com/certifi/python-certifi"))
    assert cpe.generate(p) == ("cpe:2.3:a:kennethreitz:certifi:2024.2.2:*:*:*:*:python:*:*",)


def test_java_jar_with_group_id() -> None:
    m = JavaMetadata(group_id="org.sonatype.nexus", pom_properties=PomProperties("org.sonatype.nexus", "", "3.2"))
    got = set(cpe.generate(pkg("java", "name", "3.2", m)))
    vendors = ("name", "nexus", "sonatype", "org.sonatype.nexus")
    assert got == cpes(*(f"{v}:{d}" for v in vendors for d in ("name", "nexus")), version="3.2")


def test_java_apache_group_keeps_only_the_apache_vendor() -> None:
    manifest = {"Automatic-Module-Name": "org.apache.cxf.binding.xml", "Implementation-Vendor-Id": "org.apache"}
    manifest |= {"Implementation-Vendor": "The Apache Software Foundation", "Bundle-SymbolicName": "org.apache.cxf.x"}
    m = JavaMetadata(manifest=manifest, pom_properties=PomProperties("org.apache.cxf", "cxf-rt-bindings-xml", "3.3.10"))
    got = cpe.generate(pkg("java", "cxf-rt-bindings-xml", "3.3.10", m))
    assert set(got) == cpes("apache:cxf-rt-bindings-xml", "apache:cxf_rt_bindings_xml", "apache:cxf", version="3.3.10")
    assert got[0] == "cpe:2.3:a:apache:cxf-rt-bindings-xml:3.3.10:*:*:*:*:*:*:*"  # most specific: the longest


def test_java_manifest_vendor_and_known_additions() -> None:
    manifest = {
        "Implementation-Vendor": "woodstox.codehaus.org",
        "Specification-Vendor": "http://jcp.org/en/jsr/detail?id=173",
    }
    got = set(cpe.generate(pkg("java", "wstx-asl", "3.2.7", JavaMetadata(manifest=manifest))))
    vendors = ("woodstox_codehaus_org", "woodstox-codehaus-org", "wstx-asl", "wstx_asl", "wstx")
    assert got == cpes(*(f"{v}:{d}" for v in vendors for d in ("wstx-asl", "wstx_asl")), version="3.2.7")
    m = JavaMetadata(pom_properties=PomProperties("org.jenkins-ci.ui", "handlebars", "3.0.8"))
    got = set(cpe.generate(pkg("java", "handlebars", "3.0.8", m)))
    assert "cpe:2.3:a:handlebarsjs:handlebars:3.0.8:*:*:*:*:*:*:*" in got  # Syft's table of additions


def test_jenkins_plugin_is_never_jenkins_itself() -> None:
    m = JavaMetadata(
        manifest={"Extension-Name": "active-directory", "Group-Id": "org.jenkins-ci.plugins"},
        pom_properties=PomProperties("org.jenkins-ci.plugins", "org.jenkins-ci.plugins", "2.25.1"),
    )
    p = pkg("java", "active-directory", "2.25.1", m, location="/a/active-directory.hpi")
    vendors = ("active-directory", "active", "active_directory", "jenkins-ci", "jenkins", "jenkins_ci")
    vendors += ("org.jenkins-ci.plugins",)
    products = ("active-directory", "active_directory")
    expected = cpes(*(f"{v}:{d}" for v in vendors for d in products), version="2.25.1")
    assert set(cpe._from_attributes(p)) == expected
    # The plugin is in the dictionary: its known CPE wins over the guesses.
    assert cpe.generate(p) == ("cpe:2.3:a:jenkins:active_directory:2.25.1:*:*:*:*:jenkins:*:*",)


def test_gem_authors_homepage_and_names_cpe_cannot_hold() -> None:
    m = GemMetadata(authors=("someones name", "someones.elses.name@gmail.com"), homepage="https://github.com/tom/x")
    vendors = ("name", "ruby-lang", "ruby", "ruby_lang", "someones-elses-name", "someones-name")
    vendors += ("someones_elses_name", "someones_name", "tom")
    assert set(cpe.generate(pkg("gem", "name", "3.2", m))) == cpes(*(f"{v}:name" for v in vendors), version="3.2")
    m = GemMetadata(authors=("jessica lynn suttles", "david rodríguez"))
    got = cpe.generate(pkg("gem", "bundlerx", "2.1.4", m))
    assert got and not any("rodr" in c for c in got)  # not a valid CPE value: dropped, as Syft drops it


def test_apk_subpackage_of_a_ruby_gem() -> None:
    p = pkg("apk", "ruby-rake", "2.7.6-r0", ApkMetadata(url="https://www.ruby-lang.org/"))
    vendors = ("ruby-lang", "rake", "ruby-rake", "ruby", "ruby_lang", "ruby_rake")
    products = ("rake", "ruby-rake", "ruby_rake")
    assert set(cpe.generate(p)) == cpes(*(f"{v}:{d}" for v in vendors for d in products), version="2.7.6-r0")


def test_go_rust_and_a_type_without_rules_of_its_own() -> None:
    go: Any = "go-module"  # another branch adds the go cataloger
    assert cpe.generate(pkg(go, "github.com/someone/something", "3.2", DpkgMetadata())) == (
        "cpe:2.3:a:someone:something:3.2:*:*:*:*:*:*:*",
    )
    assert cpe.generate(pkg(go, "github.com/someone/something/more", "3.2", DpkgMetadata())) == (
        "cpe:2.3:a:someone:something\\/more:3.2:*:*:*:*:*:*:*",
    )
    assert cpe.generate(pkg(go, "github.com/what", "3.2", DpkgMetadata())) == ()
    assert cpe.generate(pkg(go, "github.com/Masterminds/goutils", "1.1.1", DpkgMetadata())) == (
        "cpe:2.3:a:goutils_project:goutils:1.1.1:*:*:*:*:go:*:*",
    )
    crate: Any = "rust-crate"
    assert cpe.generate(pkg(crate, "abomonation", "0.7.3", DpkgMetadata())) == (
        "cpe:2.3:a:abomonation_project:abomonation:0.7.3:*:*:*:*:rust:*:*",
    )
    new: Any = "some-new-ecosystem"
    assert set(cpe.generate(pkg(new, "foo_bar", "1.0", DpkgMetadata()))) == cpes(
        *(f"{v}:{d}" for v in ("foo_bar", "foo-bar", "foo") for d in ("foo_bar", "foo-bar")), version="1.0"
    )


def test_sub_selections_keep_each_separator() -> None:
    assert cpe._sub_selections("jenkins-ci-tools") == ["jenkins", "jenkins-ci", "jenkins-ci-tools"]
    assert cpe._sub_selections("a__b-c") == ["a", "a_b", "a_b-c"]
    assert cpe._sub_selections("-x-") == ["x"]


# ---------------------------------------------------------------------------- against Syft on the corpus

SYFT_TYPES = {
    "deb": "dpkg",
    "rpm": "rpm",
    "apk": "apk",
    "npm": "npm",
    "gem": "gem",
    "java-archive": "java",
    "jenkins-plugin": "java",
    "python": "python",
    "dotnet": "nuget",
}
CORPUS = ("debian-minbase", "debian-apps", "rpm-sqlite")


def _key(ptype: str, name: str, version: str) -> tuple[str, str, str]:
    return (ptype, re.sub(r"[-_.]+", "-", name).lower() if ptype == "python" else name, version)


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS)
def test_syft_cpes_are_ours(name: str) -> None:
    """≥ 95% of the CPEs Syft gives each package are ours for the same package (by type,
    name and version), per image; the figures per ecosystem go to the log."""
    ours: dict[tuple[str, str, str], set[str]] = collections.defaultdict(set)
    for p in analysis(name).packages:
        ours[_key(p.type, p.name, p.version)].update(p.cpes)
    with gzip.open(IMAGES / f"{name}.syft.json.gz", "rt") as f:
        artifacts = json.load(f)["artifacts"]
    want: collections.Counter[str] = collections.Counter()
    have: collections.Counter[str] = collections.Counter()
    for a in artifacts:
        ptype = SYFT_TYPES.get(a["type"], a["type"])
        theirs = {c["cpe"] for c in a["cpes"]}
        want[ptype] += len(theirs)
        have[ptype] += len(theirs & ours.get(_key(ptype, a["name"], a["version"]), set()))
    for ptype in sorted(want):
        log.info("%s %s: %d of %d Syft CPEs", name, ptype, have[ptype], want[ptype])
    assert sum(want.values()) > 0
    assert sum(have.values()) / sum(want.values()) >= 0.95, {t: f"{have[t]}/{want[t]}" for t in want}


@pytest.mark.corpus
def test_most_specific_cpe_first_as_syft_orders_them() -> None:
    ours = {_key(p.type, p.name, p.version): list(p.cpes) for p in analysis("debian-apps").packages}
    with gzip.open(IMAGES / "debian-apps.syft.json.gz", "rt") as f:
        artifacts = json.load(f)["artifacts"]
    differ = [
        a["name"]
        for a in artifacts
        if ours.get(_key(SYFT_TYPES[a["type"]], a["name"], a["version"])) != [c["cpe"] for c in a["cpes"]]
    ]
    assert differ == []


# ---------------------------------------------------------------------------- the cache


def test_a_changed_cpe_table_changes_the_pipeline_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Image entries made with other CPE data are not served: the data file is in the image key."""
    package = Path(results.__file__).parents[2]
    copy = tmp_path / "layerscan"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    monkeypatch.setattr(results, "_PACKAGE", copy)
    before = results.pipeline_version.__wrapped__()
    data = copy / "catalog" / "cpe_data.json"
    data.write_text(data.read_text().replace('"apache-cassandra|"', '"apache-kassandra|"'))
    assert results.pipeline_version.__wrapped__() != before


def test_cpes_take_no_part_in_identity_but_in_equality() -> None:
    p = pkg("dpkg", "name", "1", DpkgMetadata())
    with_cpes = dataclasses.replace(p, cpes=cpe.generate(p))
    assert with_cpes.key() == p.key() and with_cpes != p
