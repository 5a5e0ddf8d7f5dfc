"""OS packages: the distro, dpkg, apk and rpm catalogers against the corpus fixtures and images."""

from __future__ import annotations

import functools
import gzip
import json
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, IMAGES, answers, corpus_params
from fsview import image_files_from_dir, image_files_from_layer
from layerscan.catalog import (
    CatalogResult,
    capture_globs,
    capture_limits,
    catalog_image,
    catalogers,
    distro,
    dpkg,
    filter_owned,
)
from layerscan.catalog.apk import decode_checksum
from layerscan.catalog.metadata import DpkgMetadata, FileDigest, JavaMetadata, NpmMetadata, PythonMetadata, RpmMetadata
from layerscan.catalog.model import CatalogFileError, Distro, Package
from layerscan.catalog.rpm import bdb, header, ndb
from layerscan.report.anchore import distro as anchore_distro
from layerscan.report.anchore import os_packages as anchore
from layerscan.scan.globs import GlobSet

GLOBS = capture_globs()
LIMITS = capture_limits()


def cases(kind: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / kind).iterdir() if p.is_dir())


def expected(case: Path) -> dict:
    return json.loads((case / "expected.json").read_text())


def catalog_dir(root: Path) -> CatalogResult:
    return catalog_image(image_files_from_dir(root, GLOBS, capture_limits=LIMITS))


def by_name(result: CatalogResult, kind: str) -> dict[str, Package]:
    return {p.name: p for p in result.packages if p.type == kind}


def from_syft(exp: dict) -> bool:
    return "syft" in exp["source"]


# ---------------------------------------------------------------- the runner


def test_registry_declares_globs():
    names = [c.name for c in catalogers()]
    assert {"dpkg", "apk", "rpm"} <= set(names)
    for c in catalogers():
        assert c.globs or getattr(c, "markers", ())  # the Go cataloger reads marks of executables only
    matcher = GlobSet(GLOBS)
    for path in (
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/status.d/libc6",
        "/var/lib/dpkg/info/libc6:amd64.md5sums",
        "/lib/apk/db/installed",
        "/var/lib/rpm/Packages",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        "/usr/lib/os-release",
        "/etc/os-release",
        "/usr/share/doc/bash/copyright",
    ):
        assert matcher.matches(path), path
    assert dict(LIMITS)["/var/lib/rpm/Packages"] >= 512 << 20  # rpm databases of full distributions


def test_owned_package_filtering():
    owner = Package(
        "dpkg",
        "python3-yaml",
        "6.0-3",
        "/var/lib/dpkg/status",
        files=("/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",),
        metadata=DpkgMetadata(),
    )
    owned = Package(
        "python",
        "PyYAML",
        "6.0",
        "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
        metadata=PythonMetadata(),
    )
    free = Package(
        "python",
        "requests",
        "2.34.2",
        "/usr/local/lib/python3.11/site-packages/requests-2.34.2.dist-info/METADATA",
        metadata=PythonMetadata(),
    )
    not_filtered_type = Package(
        "java", "x", "1", "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA", metadata=JavaMetadata()
    )
    assert filter_owned([owner, owned, free, not_filtered_type]) == [owner, free, not_filtered_type]


def test_owned_package_filtering_by_file():
    owner = Package(
        "rpm",
        "nodejs-lodash",
        "4.17-1",
        "/var/lib/rpm/rpmdb.sqlite",
        files=("/usr/lib/node_modules/lodash/index.js",),
        metadata=RpmMetadata(),
    )
    npm = Package(
        "npm",
        "lodash",
        "4.17.21",
        "/usr/lib/node_modules/lodash/package.json",
        files=("/usr/lib/node_modules/lodash/index.js",),
        metadata=NpmMetadata(),
    )
    assert filter_owned([owner, npm]) == [owner]


# ---------------------------------------------------------------- distro


def _tree(tmp_path: Path, files: dict[str, str | bytes], links: dict[str, str] = None) -> Path:
    if links is None:
        links = {}
    for rel, content in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    for rel, target in links.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
    return tmp_path


def detect(root: Path) -> Distro | None:
    return distro.detect(image_files_from_dir(root, distro.GLOBS))


def test_distro_os_release_symlink_and_quirks(tmp_path):
    root = _tree(
        tmp_path,
        {"usr/lib/os-release": 'ID="centos"\nVERSION_ID="8"\nID_LIKE="rhel fedora"\nPRETTY_NAME="a=b"\n'},
        {"etc/os-release": "../usr/lib/os-release"},
    )
    d = detect(root)
    assert d == Distro("centos", "8", "rhel,fedora")
    assert anchore_distro.analyzer_meta(d) == {"DISTRO": "centos", "DISTROVERS": "8", "LIKEDISTRO": "rhel,fedora"}
    assert anchore_distro.flavor(d) == "RHEL"


def test_distro_order_and_fallbacks(tmp_path):
    cpe = _tree(
        tmp_path / "cpe",
        {
            "etc/system-release-cpe": "cpe:/o:redhat:enterprise_linux:7.9:ga:server\n",
            "etc/redhat-release": "CentOS Linux release 6.10 (Final)\n",
        },
    )
    assert detect(cpe) == Distro("rhel", "7.9")
    rh = _tree(tmp_path / "rh", {"etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)\n"})
    assert detect(rh) == Distro("centos", "9.2009")  # Anchore's greedy regex, kept for parity
    bb = _tree(tmp_path / "bb", {"bin/busybox": b"\x7fELF\0junk BusyBox v1.21.1 (2014-01-01) multi-call\0"})
    d = detect(bb)
    assert d == Distro("busybox", "v1.21.1")
    assert anchore_distro.analyzer_meta(d) == {"DISTRO": "busybox", "DISTROVERS": "v1.21.1", "LIKEDISTRO": "busybox"}
    assert anchore_distro.flavor(d) == "BUSYB"
    deb = _tree(tmp_path / "deb", {"etc/os-release": "ID=debian\nPRETTY_NAME=x\n", "etc/debian_version": "9.13\n"})
    assert detect(deb) == Distro("debian", "9")
    sid = _tree(tmp_path / "sid", {"etc/os-release": "ID=debian\n", "etc/debian_version": "bookworm/sid\n"})
    assert detect(sid) == Distro("debian", "unstable")
    none = _tree(tmp_path / "none", {"etc/hostname": "x\n"})
    assert detect(none) is None
    assert anchore_distro.analyzer_meta(None) == {"DISTRO": "Unknown", "DISTROVERS": "0", "LIKEDISTRO": "Unknown"}
    assert anchore_distro.flavor(Distro("rocky", "9.3", "rhel,centos,fedora")) == "RHEL"
    assert anchore_distro.flavor(Distro("wolfi", "1")) == "Unknown"


# ---------------------------------------------------------------- dpkg fixtures


@pytest.mark.corpus
@pytest.mark.parametrize("case", ["debian12-status", "ubuntu18.04-status"])
def test_dpkg_status_fixture(case):
    case_dir = FIXTURES / "dpkg" / case
    exp = expected(case_dir)
    result = catalog_dir(case_dir)
    got = by_name(result, "dpkg")
    assert not result.errors
    assert {(n, p.version) for n, p in got.items()} == {
        (e["name"], e.get("debVersion", e["version"])) for e in exp["packages"]
    }
    for e in exp["packages"]:
        p = got[e["name"]]
        assert p.arch == e["arch"]
        assert p.metadata.maintainer == e["maintainer"]
        if "srcName" in e:  # trivy fills the source from the package when the stanza has none
            assert (p.source or p.name) == e["srcName"]
            # trivy's srcVersion is the upstream part only: no epoch, no Debian revision
            upstream = (p.source_version or p.version).split(":", 1)[-1].rsplit("-", 1)[0]
            assert upstream == e["srcVersion"]


@pytest.mark.corpus
def test_dpkg_status_info_fixture():
    case_dir = FIXTURES / "dpkg" / "debian12-status-info"
    (e,) = expected(case_dir)["packages"]
    result = catalog_dir(case_dir)
    assert not result.errors
    (p,) = result.packages
    assert (p.name, p.version, p.purl) == (e["name"], e["version"], e["purl"])
    assert set(p.licenses) == set(e["licenses"])
    m = e["metadata"]
    assert (p.source, p.arch, p.metadata.maintainer, p.metadata.installed_size) == (
        m["Source"],
        m["Architecture"],
        m["Maintainer"],
        m["InstalledSize"],
    )
    assert list(p.metadata.depends) == m["Depends"]
    want = [(f["Path"], f["Digest"]["Value"], f.get("IsConfigFile", False)) for f in m["Files"]]
    got = [(f.path, f.digest.value, f.is_config_file) for f in p.metadata.files]
    assert sorted(got) == sorted(want)


@pytest.mark.corpus
def test_dpkg_distroless_fixture():
    case_dir = FIXTURES / "dpkg" / "distroless-statusd"
    (e,) = expected(case_dir)["packages"]
    result = catalog_dir(case_dir)
    assert not result.errors
    (p,) = result.packages
    assert (p.name, p.version, p.source, p.arch) == (e["name"], e["version"], e["metadata"]["Source"], "arm64")
    assert p.location == "/var/lib/dpkg/status.d/libsqlite3-0"
    assert set(p.licenses) == set(e["licenses"])
    want = {f["Path"]: f["Digest"]["Value"] for f in e["metadata"]["Files"]}
    assert {f.path: f.digest.value for f in p.metadata.files} == want


@pytest.mark.corpus
def test_dpkg_statusd_edge_cases():
    case_dir = FIXTURES / "dpkg" / "statusd-edge-cases"
    exp = expected(case_dir)
    result = catalog_dir(case_dir)
    assert not result.errors
    for rel, pkgs in exp["per_file"].items():
        got = {p.name: p for p in result.packages if p.location == "/" + rel}
        assert set(got) == {e["name"] for e in pkgs}, rel
        for e in pkgs:
            p = got[e["name"]]
            assert p.version == e.get("version", "")
            assert p.source == e.get("source", "")
            assert p.arch == e.get("arch", "")
            assert p.metadata.installed_size == e.get("installedSizeKiB", 0)
            assert list(p.metadata.provides) == e.get("provides", [])
            assert list(p.metadata.depends) == e.get("depends", [])
            assert list(p.metadata.pre_depends) == e.get("preDepends", [])
            assert [f.path for f in p.metadata.files if f.is_config_file] == sorted(e.get("conffiles", []))
    # corrupt/status is not at a dpkg path in the fixture: parse it on its own.
    with pytest.raises(CatalogFileError, match="line 5"):
        dpkg.parse_status((case_dir / "corrupt" / "status").read_bytes(), "corrupt/status")


@pytest.mark.corpus
def test_dpkg_corrupt_status_does_not_stop_status_d_or_other_catalogers(tmp_path):
    base = FIXTURES / "dpkg" / "statusd-edge-cases"
    root = tmp_path / "img"
    shutil.copytree(base / "var", root / "var")
    shutil.copy(base / "corrupt" / "status", root / "var/lib/dpkg/status")
    shutil.copytree(FIXTURES / "apk" / "alpine3.19-multiple" / "lib", root / "lib")
    result = catalog_dir(root)
    assert [(e.cataloger, e.path) for e in result.errors] == [("dpkg", "/var/lib/dpkg/status")]
    assert "line 5" in result.errors[0].reason
    assert {"apt", "tzdata", "util-linux"} <= set(by_name(result, "dpkg"))
    assert len(by_name(result, "apk")) == 4


# ---------------------------------------------------------------- apk fixtures


@pytest.mark.corpus
@pytest.mark.parametrize("case", corpus_params(lambda: [c.name for c in cases("apk") if c.name != "corrupt"]))
def test_apk_fixture(case):
    case_dir = FIXTURES / "apk" / case
    exp = expected(case_dir)
    result = catalog_dir(case_dir)
    assert not result.errors
    got = by_name(result, "apk")
    assert {(n, p.version) for n, p in got.items()} == {(e["name"], e["version"]) for e in exp["packages"]}
    for e in exp["packages"]:
        p = got[e["name"]]
        meta = e.get("metadata", {})
        assert p.source == e.get("origin", meta.get("OriginPackage", p.source))
        assert p.arch == e.get("arch", meta.get("Architecture", p.arch))
        assert p.metadata.maintainer == e.get("maintainer", meta.get("Maintainer", p.metadata.maintainer))
        if from_syft(exp) or "TestApkDBCataloger" in exp["source"]:
            # Syft's license rule (ours): an SPDX expression whole, a space list split. Trivy and
            # osv-scalibr normalize ("GPL2+" -> "GPL-2.0-or-later"), so their lists are not compared.
            assert list(p.licenses) == e["licenses"]
        if "digest" in e:  # trivy: the package C: checksum as sha1 hex
            assert "sha1:" + decode_checksum(p.metadata.checksum).value == e["digest"]
        if "installedFiles" in e:
            assert [f.lstrip("/") for f in p.files] == e["installedFiles"]
        if "InstalledSize" in meta:
            assert (p.metadata.size, p.metadata.installed_size) == (meta["Size"], meta["InstalledSize"])
            assert list(p.metadata.depends) == meta.get("Dependencies", [])
            assert list(p.metadata.provides) == meta.get("Provides", [])


@pytest.mark.corpus
def test_apk_file_digests_are_decoded():
    result = catalog_dir(FIXTURES / "apk" / "alpine3.4-with-invalid-entry")
    musl = by_name(result, "apk")["musl"]
    f = next(f for f in musl.metadata.files if f.path == "/lib/ld-musl-x86_64.so.1")
    assert f.digest == FileDigest("sha1", "294c2c1462c79ff7a7a4df7e408a4afc59a2c6d4")
    assert (f.uid, f.gid, f.mode) == (0, 0, 0o755)
    assert decode_checksum("Q1not-base64!") is None and decode_checksum("X1abc") is None


@pytest.mark.corpus
def test_apk_corrupt_gives_a_per_file_error():
    result = catalog_dir(FIXTURES / "apk" / "corrupt")
    assert [(e.cataloger, e.path) for e in result.errors] == [("apk", "/lib/apk/db/installed")]
    # The well-formed stanza after the garbage still stands, as in Syft 1.18.1.
    assert [p.name for p in result.packages] == ["alpine-baselayout-data"]


# ---------------------------------------------------------------- rpm fixtures


@pytest.mark.corpus
@pytest.mark.parametrize(
    "case", corpus_params(lambda: [c.name for c in cases("rpm") if not expected(c).get("expect_error")])
)
def test_rpm_fixture(case):
    case_dir = FIXTURES / "rpm" / case
    exp = expected(case_dir)
    result = catalog_dir(case_dir)
    assert not result.errors
    got = {(p.name, p.metadata.version, p.metadata.release, p.arch): p for p in result.packages}
    # gpg-pubkey has no ARCH tag (rpm -qa prints "(none)"; the expected list leaves it out).
    want = {(e["name"], e["version"], e["release"], e.get("arch", "")): e for e in exp["packages"]}
    assert set(got) == set(want)
    for key, e in want.items():
        p = got[key]
        m = p.metadata
        assert p.source == e["sourceRpm"]
        if "epoch" in e:
            assert m.epoch == e["epoch"]
        for field, ours in (("size", m.size), ("vendor", m.vendor), ("license", p.licenses[0])):
            if field in e:
                assert ours == e[field], field
        if "licenses" in e:
            assert list(p.licenses) == e["licenses"]
        if "provides" in e:
            assert list(m.provides) == e["provides"]
        if from_syft(exp) or "TestParseRpmDB" in exp["source"]:
            assert p.purl == e["purl"]
    for a in exp.get("upstream_assertions", []) if isinstance(exp.get("upstream_assertions"), list) else []:
        p = next(p for p in result.packages if p.name == a["Name"])
        assert (list(p.metadata.provides), list(p.metadata.requires)) == (a["Provides"], a["Requires"])
        assert p.metadata.digest_algo == a["DigestAlgorithm"].lower()


@pytest.mark.corpus
def test_rpm_epoch_in_version_and_purl():
    (p,) = catalog_dir(FIXTURES / "rpm" / "fedora32-bdb-epoch").packages
    assert p.version == "1:0.0.1-rls"
    assert "epoch=1" in p.purl and "@0.0.1-rls?" in p.purl


@pytest.mark.corpus
def test_rpm_corrupt_gives_a_per_file_error():
    result = catalog_dir(FIXTURES / "rpm" / "corrupt-bdb")
    assert result.packages == []
    assert [(e.cataloger, e.path) for e in result.errors] == [("rpm", "/var/lib/rpm/Packages")]


@pytest.mark.corpus
def test_rpm_sqlite_database_behind_a_link_is_read_once(tmp_path):
    src = FIXTURES / "rpm" / "fedora36-sqlite-tzdata" / "var/lib/rpm/rpmdb.sqlite"
    root = _tree(
        tmp_path, {"usr/lib/sysimage/rpm/rpmdb.sqlite": src.read_bytes()}, {"var/lib/rpm": "../../usr/lib/sysimage/rpm"}
    )
    result = catalog_dir(root)
    assert not result.errors
    assert [(p.name, p.location) for p in result.packages] == [("tzdata", "/var/lib/rpm/rpmdb.sqlite")]


# ---------------------------------------------------------------- the corpus images


def _layer_files(image: str, index: int):
    layout = IMAGES / image
    manifest_desc = json.loads((layout / "index.json").read_text())["manifests"][0]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_desc["digest"].split(":")[1]).read_text())
    blob = (layout / "blobs" / "sha256" / manifest["layers"][index]["digest"].split(":")[1]).read_bytes()
    return image_files_from_layer(blob, GLOBS, capture_limits=LIMITS)


@pytest.fixture(scope="module")
def minbase() -> CatalogResult:
    return catalog_image(_layer_files("debian-minbase", 0))


@pytest.fixture(scope="module")
def rpm_sqlite() -> CatalogResult:
    return catalog_image(_layer_files("rpm-sqlite", 0))


def syft_packages(image: str, syft_type: str) -> dict[str, dict]:
    doc = json.loads(gzip.decompress((IMAGES / f"{image}.syft.json.gz").read_bytes()))
    return {a["name"]: a for a in doc["artifacts"] if a["type"] == syft_type}


@pytest.mark.corpus
def test_debian_minbase_packages(minbase):
    ans = answers("debian-minbase")
    assert not minbase.errors
    assert minbase.distro == Distro("debian", "12")  # /etc/os-release is a link to ../usr/lib/os-release
    got = by_name(minbase, "dpkg")
    assert len(got) == 88
    assert {(p.name, p.version, p.arch, p.source or p.name) for p in got.values()} == {
        (d["name"], d["version"], d["architecture"], d["source"]) for d in ans["packages"]["dpkg"]
    }
    syft = syft_packages("debian-minbase", "deb")
    assert {(n, a["version"]) for n, a in syft.items()} == {(n, p.version) for n, p in got.items()}
    for name, a in syft.items():
        p = got[name]
        assert p.purl == a["purl"], name
        assert set(p.licenses) == {lic["value"] for lic in a["licenses"]}, name
        assert p.metadata.installed_size == a["metadata"]["installedSize"]
        syft_files = {f["path"]: f["digest"]["value"] for f in a["metadata"]["files"] if f.get("digest")}
        ours = {f.path: f.digest.value for f in p.metadata.files if f.digest}
        assert ours == syft_files, name


@pytest.mark.corpus
def test_debian_apps_os_packages_are_the_base_layers():
    """debian-apps' OS packages come from its layer 0, byte-identical to debian-minbase's only
    layer, and no later layer writes a file the OS catalogers or distro detection read for them
    (layer 3 adds copyright files of `dpkg -x` packages that dpkg never registered): checked
    here, so cataloging layer 0 is cataloging the squashed image for these catalogers."""
    apps, base = answers("debian-apps"), answers("debian-minbase")
    assert apps["layers"][0]["digest"] == base["layers"][0]["digest"]
    listing = json.loads(gzip.decompress((IMAGES / "debian-apps.files.json.gz").read_bytes()))
    registered = [f"/usr/share/doc/{d['name']}/copyright" for d in apps["packages"]["dpkg"]]
    os_globs = GlobSet(
        [g for c in catalogers() if c.name in ("dpkg", "apk", "rpm") for g in c.globs if "/usr/share/doc/" not in g]
        + list(distro.GLOBS)
        + registered
    )
    later = [
        f["path"] for f in listing["files"] if f["type"] != "dir" and f["layer"] > 0 and os_globs.matches(f["path"])
    ]
    assert later == []
    result = catalog_image(_layer_files("debian-apps", 0))
    syft = syft_packages("debian-apps", "deb")
    assert {(n, a["version"]) for n, a in syft.items()} == {(p.name, p.version) for p in result.packages}
    assert {(d["name"], d["version"]) for d in apps["packages"]["dpkg"]} == {
        (p.name, p.version) for p in result.packages
    }


@pytest.mark.corpus
def test_rpm_sqlite_image(rpm_sqlite):
    ans = answers("rpm-sqlite")
    assert not rpm_sqlite.errors
    assert rpm_sqlite.distro == Distro("rocky", "9.3", "rhel,centos,fedora")
    got = by_name(rpm_sqlite, "rpm")
    assert {
        (
            p.name,
            p.metadata.epoch,
            p.metadata.version,
            p.metadata.release,
            p.arch,
            p.licenses[0],
            p.metadata.vendor,
            p.source,
        )
        for p in got.values()
    } == {
        (r["name"], r["epoch"], r["version"], r["release"], r["arch"], r["license"], r["vendor"], r["sourcerpm"])
        for r in ans["packages"]["rpm"]
    }
    syft = syft_packages("rpm-sqlite", "rpm")
    assert {(n, a["version"], a["purl"]) for n, a in syft.items()} == {
        (p.name, p.version, p.purl) for p in got.values()
    }
    assert got["demo-scripts"].version == "2:3.0.0-1.el9"
    for name, a in syft.items():
        want = {
            f["path"]: (f["mode"], f["size"], (f.get("digest") or {}).get("value") or None, f["userName"])
            for f in a["metadata"]["files"]
        }
        ours = {
            f.path: (f.mode, f.size, f.digest.value if f.digest else None, f.username) for f in got[name].metadata.files
        }
        assert ours == want, name


# ---------------------------------------------------------------- Anchore elements


@pytest.mark.corpus
def test_anchore_os_elements_deb(minbase):
    out = anchore.os_package_list(minbase.packages, minbase.distro)
    assert len(out["pkgs.all"]) == 88
    assert out["pkgs.all"]["bash"] == by_name(minbase, "dpkg")["bash"].version
    info = out["pkgs.allinfo"]["adduser"]
    assert set(info) == {"arch", "cpes", "license", "origin", "release", "size", "sourcepkg", "type", "version"}
    assert info["origin"].endswith(" (maintainer)") and info["release"] == "N/A" and info["type"] == "dpkg"
    assert info["size"] == str(by_name(minbase, "dpkg")["adduser"].metadata.installed_size * 1000)
    assert out["pkgs_plus_source.all"]["util-linux"] == by_name(minbase, "dpkg")["util-linux"].version
    assert out["pkgfiles.all"]["/usr/sbin/adduser"] == "DPKGFILE"
    meta = json.loads(anchore.pkgfilemeta(minbase.packages)["/etc/adduser.conf"])
    assert meta == [
        {
            "conffile": True,
            "digest": "cc3493ecd2d09837ffdcc3e25fdfff18",
            "digestalgo": "md5",
            "group": None,
            "mode": None,
            "package": "adduser",
            "size": None,
            "user": None,
        }
    ]


@pytest.mark.corpus
def test_anchore_os_elements_rpm(rpm_sqlite):
    out = anchore.os_package_list(rpm_sqlite.packages, rpm_sqlite.distro)
    assert out["pkgs.all"]["demo-scripts"] == "2:3.0.0-1.el9"
    assert out["pkgs_plus_source.all"] == {}
    info = out["pkgs.allinfo"]["demo-scripts"]
    assert (info["version"], info["release"], info["arch"], info["origin"], info["type"]) == (
        "2:3.0.0",
        "1.el9",
        "noarch",
        "Example Corp",
        "rpm",
    )
    (meta,) = json.loads(anchore.pkgfilemeta(rpm_sqlite.packages)["/usr/bin/demo-hello"])
    assert (meta["package"], meta["mode"], meta["digestalgo"], meta["size"], meta["user"]) == (
        "demo-scripts",
        "100755",
        "sha256",
        "21",
        "root",
    )


@pytest.mark.corpus
def test_anchore_os_elements_apk_and_empty():
    result = catalog_dir(FIXTURES / "apk" / "alpine3.4-with-invalid-entry")
    out = anchore.os_package_list(result.packages, Distro("alpine", "3.4.6"))
    info = out["pkgs.allinfo"]["musl"]
    assert (info["version"], info["release"], info["type"], info["sourcepkg"]) == ("1.1.14", "r10", "APKG", "musl")
    assert out["pkgfiles.all"]["/lib/ld-musl-x86_64.so.1"] == "APKFILE"
    (meta,) = json.loads(anchore.pkgfilemeta(result.packages)["/lib/ld-musl-x86_64.so.1"])
    assert (meta["digest"], meta["digestalgo"], meta["mode"], meta["user"]) == (None, "sha1", "0755", "0")
    assert anchore.os_package_list([], None)["pkgs.all"] == {"Unknown": "0"}
    assert anchore.os_package_list([], Distro("busybox", "v1.36.1"))["pkgs.all"] == {"BusyBox": "v1.36.1"}


# ---------------------------------------------------------------- garbage in, clean error out

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _valid_headers() -> list[bytes]:
    return list(ndb.read_blobs((FIXTURES / "rpm/sle15-bci-ndb/usr/lib/sysimage/rpm/Packages.db").read_bytes()))[:3]


@functools.cache
def _bdb() -> bytes:
    return (FIXTURES / "rpm/rhel8-bdb-libuuid/var/lib/rpm/Packages").read_bytes()


def _parse_header_or_error(blob: bytes) -> None:
    try:
        header.parse_header(blob, "bdb")
    except header.HeaderError:
        pass


@FUZZ
@given(st.binary(max_size=4096))
def test_header_garbage(blob):
    _parse_header_or_error(blob)


@pytest.mark.corpus
@FUZZ
@given(
    st.integers(0, 2),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8),
)
def test_header_mutations(which, edits):
    headers = _valid_headers()
    blob = bytearray(headers[which % len(headers)])
    index_end = 8 + 16 * struct.unpack_from(">I", blob)[0]
    for pos, value in edits:  # mostly in the preamble and the index entries, where the structure is
        blob[pos % index_end if pos % 4 else pos % len(blob)] = value
    _parse_header_or_error(bytes(blob))


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=256))
def test_header_huge_counts(il, dl, rest):
    _parse_header_or_error(struct.pack(">II", il, dl) + rest)


def _bdb_or_error(db: bytes) -> None:
    try:
        for _ in bdb.read_values(db):
            pass
    except bdb.BdbError:
        pass


@FUZZ
@given(st.binary(max_size=8192))
def test_bdb_garbage(db):
    _bdb_or_error(db)


@pytest.mark.corpus
@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 1 << 16), st.integers(0, 96), st.integers(0, 255)),
        min_size=1,
        max_size=16,
    )
)
def test_bdb_mutations(edits):
    db = bytearray(_bdb())
    pages = len(db) // 4096
    for page, offset, value in edits:  # page headers, the metadata and the first index slots
        db[page % pages * 4096 + offset] = value
    _bdb_or_error(bytes(db))


@FUZZ
@given(st.sampled_from([">", "<"]), st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1))
def test_bdb_hostile_meta_and_overflow(order, last_pgno, entries, ov_len):
    page = 4096
    meta = bytearray(page)
    struct.pack_into(order + "I", meta, 12, bdb.HASH_MAGIC)
    struct.pack_into(order + "I", meta, 20, page)
    meta[25] = bdb.P_HASHMETA
    struct.pack_into(order + "I", meta, 32, min(last_pgno, 2))
    hash_page = bytearray(page)
    hash_page[25] = bdb.P_HASH
    struct.pack_into(order + "H", hash_page, 20, entries)
    struct.pack_into(order + "HH", hash_page, 26, 100, 200)
    hash_page[200] = bdb.H_OFFPAGE
    struct.pack_into(order + "II", hash_page, 204, 2, ov_len)  # overflow chain: page 2 -> page 2 (a loop)
    ov = bytearray(page)
    ov[25] = bdb.P_OVERFLOW
    struct.pack_into(order + "I", ov, 16, 2)
    struct.pack_into(order + "H", ov, 22, 100)
    _bdb_or_error(bytes(meta + hash_page + ov))


@FUZZ
@given(st.binary(max_size=8192))
def test_ndb_garbage(db):
    try:
        for _ in ndb.read_blobs(b"RpmP" + db):
            pass
    except ndb.NdbError:
        pass
