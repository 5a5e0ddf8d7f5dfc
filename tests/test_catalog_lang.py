"""Library packages: the npm, gem, java, python and nuget catalogers against every corpus
fixture of their ecosystems and against the debian-apps image (answers.json and Syft)."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, IMAGES, answers, corpus_params, layer_blob
from fsview import ENGINE, image_files_from_dir
from layerscan.catalog import CatalogResult, capture_globs, capture_limits, catalog_image, catalogers
from layerscan.catalog.gem import parse_gemspec
from layerscan.catalog.java import ArchiveLimits, JavaCataloger, parse_filename
from layerscan.catalog.model import CatalogError, CatalogFileError, Package
from layerscan.catalog.python import normalize, parse_metadata
from layerscan.filetree import FinalFile, ImageFiles
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions

GLOBS = capture_globs()
LIBRARY_TYPES = ("npm", "gem", "java", "python", "nuget")
FIXTURE_DIRS = {"npm": "npm", "ruby": "ruby", "java": "java", "python": "python", "dotnet": "dotnet"}
TYPE_OF_DIR = {"npm": "npm", "ruby": "gem", "java": "java", "python": "python", "dotnet": "nuget"}


def cases() -> list[Path]:
    return sorted(case for d in FIXTURE_DIRS.values() for case in (FIXTURES / d).iterdir() if case.is_dir())


@cache
def catalog_dir(root: Path) -> CatalogResult:
    return catalog_image(image_files_from_dir(root, GLOBS, capture_limits=capture_limits()))


def key(p: Package, kind: str) -> tuple[str, str]:
    """A package as the fixtures name it: Trivy writes java as groupId:artifactId and keeps
    python names as declared; we name java by artifactId (as Syft) and normalize python
    names (PEP 503, as Syft), so both sides are brought to one form."""
    if kind == "java":
        return (f"{p.metadata.group_id}:{p.name}", p.version)
    if kind == "python":
        return (normalize(p.name), p.version)
    return (p.name, p.version)


def expected_key(e: dict, kind: str, case: str) -> tuple[str, str]:
    name = normalize(e["name"]) if kind == "python" else e["name"]
    return (SYFT_NAMES.get(case, {}).get(name, name), e.get("version", ""))


# Trivy names an archive with no pom.properties by its manifest's title when the manifest
# has a version; Syft (selectName) by its file name first, and so does Anchore's engine
# (anchore-compat.md): Anchore parity means Syft's name.
SYFT_NAMES = {
    "jenkins-plugin-manifest-license": {"com.example:jenkins-plugin": "com.example:license-from-jenkins-plugin"},
    "manifest-only": {"org.springframework:Spring Framework": "org.springframework:test"},
}


def rel(path: str) -> str:
    """Our absolute location (and java's ':' between archives) as the fixtures write it."""
    return path.lstrip("/").replace(":", "/")


# Intentional differences from a fixture's expected list, with the reason.
EXTRA = {
    # Trivy drops a deps.json library whose runtime-target entry has no runtime assets;
    # Syft keeps it (dotnet/testlibrary-deps-json, from Syft, expects two such libraries),
    # and Anchore parity means Syft's behaviour.
    "deps-json-variants": {
        ("Microsoft.NETCore.App", "1.1.2"),
        ("Microsoft.NETCore.Platforms", "1.1.0"),
        ("NETStandard.Library", "1.6.0"),
        ("System.Net.Http", "4.1.0"),
    },
    # An archive with a manifest but no version anywhere: Syft reports it (version empty),
    # Trivy does not; Anchore parity means Syft's behaviour.
    "gradle-war-nested": {(":gradle", "")},
    "maven-war-nested": {(":maven", "")},
}


@pytest.mark.corpus
@pytest.mark.parametrize("case", corpus_params(cases), ids=lambda c: f"{c.parent.name}/{c.name}")
def test_fixture_packages(case: Path):
    kind = TYPE_OF_DIR[case.parent.name]
    exp = json.loads((case / "expected.json").read_text())
    result = catalog_dir(case)
    got = sorted(key(p, kind) for p in result.packages if p.type == kind)
    want = sorted(expected_key(e, kind, case.name) for e in exp["packages"])
    assert sorted(set(got) - EXTRA.get(case.name, set())) == sorted(set(want))
    assert len(got) - sum(1 for k in got if k in EXTRA.get(case.name, ())) == len(want)
    # Negative files give a per-file error; every other file still gives its packages.
    per_file = exp.get("per_file") or {}
    bad = {f for f, v in per_file.items() if isinstance(v, dict) and v.get("expect_error")}
    assert {rel(e.path) for e in result.errors} == bad
    for e in result.errors:
        assert e.reason and "\n" not in e.reason


@pytest.mark.corpus
@pytest.mark.parametrize(
    "case",
    corpus_params(lambda: [c for c in cases() if c.parent.name in ("npm", "ruby", "java", "python")]),
    ids=lambda c: f"{c.parent.name}/{c.name}",
)
def test_fixture_locations_and_licenses(case: Path):
    kind = TYPE_OF_DIR[case.parent.name]
    exp = json.loads((case / "expected.json").read_text())
    got = {(key(p, kind), rel(p.location)): p for p in catalog_dir(case).packages if p.type == kind}
    for e in exp["packages"]:
        if "location" not in e:
            continue
        p = got[(expected_key(e, kind, case.name), e["location"])]
        if "licenses" in e and "syft" in exp["source"] + json.dumps(exp.get("upstream_test")):
            assert list(p.licenses) == e["licenses"], e
        if "purl" in e and kind != "python":  # python: see test_python_purl_vcs_url
            assert p.purl == e["purl"]


@pytest.mark.corpus
def test_npm_licenses_in_every_shape():
    got = {rel(p.location): p.licenses for p in catalog_dir(FIXTURES / "npm" / "package-json-variants").packages}
    exp = json.loads((FIXTURES / "npm" / "package-json-variants" / "expected.json").read_text())
    for e in exp["packages"]:
        assert list(got[e["location"]]) == e.get("licenses", []), e["location"]


@pytest.mark.corpus
def test_npm_author_as_syft_joins_it():
    exp = json.loads((FIXTURES / "npm" / "package-json-variants" / "expected.json").read_text())
    got = {rel(p.location): p.metadata for p in catalog_dir(FIXTURES / "npm" / "package-json-variants").packages}
    for e in exp["packages"]:
        if "metadata" in e:
            m = got[e["location"]]
            assert m.author == e["metadata"]["Author"]
            assert m.url == e["metadata"]["URL"] and m.homepage == e["metadata"]["Homepage"]


@pytest.mark.corpus
def test_python_purl_vcs_url_and_record_files():
    pkgs = {p.name: p for p in catalog_dir(FIXTURES / "python" / "dist-info-and-egg-info-dirs").packages}
    # packageurl-go escapes ':' in qualifier values, our purl helper (shared with dpkg epochs) keeps it.
    assert pkgs["pygments"].purl.replace("%3A", ":") == (
        "pkg:pypi/pygments@2.6.1?vcs_url=git%2Bhttps:%2F%2Fgithub.com%2Fpython-test%2Ftest.git%40" + "a" * 40
    )
    assert len(pkgs["pygments"].files) == 7 and len(pkgs["requests"].files) == 6
    assert "/bin/pygmentize" in pkgs["pygments"].files  # ../../../bin from site-packages, normalized
    assert pkgs["pygments"].metadata.name == "Pygments"


def test_python_metadata_is_utf8():
    meta = 'Metadata-Version: 2.1\nName: typing_extensions\nAuthor-email: "\u0141ukasz Langa" <l@example.org>\n\n\u00e9'
    fields = parse_metadata(meta.encode(), "/m/METADATA")
    assert fields["author-email"] == ['"\u0141ukasz Langa" <l@example.org>']


def test_registered_with_globs():
    names = {c.name for c in catalogers()}
    assert set(LIBRARY_TYPES) <= names
    from layerscan.scan.globs import GlobSet

    m = GlobSet(GLOBS)
    for path in (
        "/app/node_modules/@scope/x/node_modules/y/package.json",
        "/app/package-lock.json",
        "/app/node_modules/.package-lock.json",
        "/usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
        "/opt/webapps/orders-web.war",
        "/x/y.hpi",
        "/usr/local/lib/python3.11/site-packages/a-1.dist-info/METADATA",
        "/usr/local/lib/python3.11/site-packages/a-1.dist-info/RECORD",
        "/s/a.egg-info",
        "/s/a.egg",
        "/opt/dotnet/orders-api/Orders.Api.deps.json",
        "/src/packages.config",
        "/src/packages.lock.json",
        "/p/x.nuspec",
    ):
        assert m.matches(path), path


# ---------------------------------------------------------------- java limits


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


POM = b"groupId=g\nartifactId=a\nversion=1.0\n"


def test_java_zip_bomb_is_refused_with_a_per_file_error():
    bomb = _zip({"META-INF/maven/g/a/pom.properties": POM, "lib/huge.jar": b"\0" * (8 << 20)})
    out = JavaCataloger(ArchiveLimits(max_total_bytes=1 << 20)).catalog_archive(bomb, "/bomb.jar")
    assert len(out) == 1 and isinstance(out[0], CatalogError) and "zip bomb" in out[0].reason


def test_java_depth_and_entry_limits():
    inner = _zip({"META-INF/maven/g/a/pom.properties": POM})
    for _ in range(5):
        inner = _zip({"x.jar": inner})
    out = JavaCataloger(ArchiveLimits(max_depth=3)).catalog_archive(inner, "/deep.jar")
    assert [type(x) for x in out] == [CatalogError] and "nested deeper" in out[0].reason
    ok = JavaCataloger().catalog_archive(inner, "/deep.jar")
    assert [(p.name, p.location.count(":")) for p in ok] == [("a", 5)]
    many = _zip({f"f{i}": b"" for i in range(50)})
    out = JavaCataloger(ArchiveLimits(max_entries=10)).catalog_archive(many, "/many.jar")
    assert "zip entries" in out[0].reason


def test_java_spills_big_nested_archives_and_reports_corrupt_ones():
    big = _zip(
        {"META-INF/maven/g/big/pom.properties": POM.replace(b"=a", b"=big"), "blob": bytes(range(256)) * 8192},
        zipfile.ZIP_STORED,
    )
    outer = _zip({"WEB-INF/lib/big-1.0.jar": big, "WEB-INF/lib/broken-2.0.jar": b"PK\x03\x04garbage"})
    out = JavaCataloger(ArchiveLimits(spill_bytes=64 << 10)).catalog_archive(outer, "/app.war")
    assert [p.location for p in out if isinstance(p, Package)] == ["/app.war:WEB-INF/lib/big-1.0.jar"]
    assert [e.path for e in out if isinstance(e, CatalogError)] == ["/app.war:WEB-INF/lib/broken-2.0.jar"]


def test_java_too_big_to_capture_is_a_clear_error(tmp_path):
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "big-1.0.jar").write_bytes(
        _zip({"META-INF/maven/g/a/pom.properties": POM, "pad": b"x" * 4096}, zipfile.ZIP_STORED)
    )
    (tmp_path / "opt" / "small-2.0.jar").write_bytes(_zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n"}))
    files = image_files_from_dir(tmp_path, GLOBS, capture_limits=tuple((g, 2048) for g in JavaCataloger.globs))
    result = catalog_image(files)
    assert [(p.name, p.version) for p in result.packages] == [("small", "2.0")]
    assert [(e.path, "too big to capture" in e.reason) for e in result.errors] == [("/opt/big-1.0.jar", True)]


# ---------------------------------------------------------------- gemspec parser


def test_gemspec_forms():
    text = b"""# stub
Gem::Specification.new do |s|
  s.name = %q<multi>.freeze
  s.version = '1.2.3'
  s.homepage = "https://x.example/#{s.name}/v#{s.version}".freeze
  s.authors = [
    "A \\u00E9".freeze,  # trailing comment
    'B',
  ]
  s.metadata = { "k" => "v", "n" => 2 } if s.respond_to? :metadata=
  s.required_ruby_version = Gem::Requirement.new(">= 2.3".freeze)
  s.licenses = ["MIT".freeze, "Ruby"]
end
"""
    attrs = parse_gemspec(text, "/x.gemspec")
    assert attrs["name"] == "multi" and attrs["version"] == "1.2.3"
    assert attrs["homepage"] == "https://x.example/multi/v1.2.3"
    assert attrs["authors"] == ["A \u00e9", "B"] and attrs["metadata"] == {"k": "v", "n": 2}
    assert "required_ruby_version" not in attrs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        st.text(alphabet='Gem::Specification.new do |s|\n s.name="x" ver[]{}#%q<>\\\'",=.freeze end', max_size=300).map(
            str.encode
        ),
    )
)
def test_gemspec_garbage_gives_a_clean_error(data: bytes):
    try:
        attrs = parse_gemspec(data, "/g.gemspec")
    except CatalogFileError as e:
        assert e.path == "/g.gemspec" and e.reason and "\n" not in e.reason
    else:
        assert isinstance(attrs["name"], str) and isinstance(attrs["version"], str)


# ---------------------------------------------------------------- the debian-apps image


@cache
def debian_apps() -> ImageFiles:
    """The final filesystem of debian-apps: each layer scanned once, and every final path
    taken from the layer the answer key (files.json.gz) says provided it."""
    ans = answers("debian-apps")
    with gzip.open(IMAGES / "debian-apps.files.json.gz", "rt") as f:
        final = {r["path"]: r["layer"] for r in json.load(f)["files"]}
    options = ScanOptions(capture_globs=GLOBS, capture_limits=capture_limits())
    results = [
        scan_layer(layer_blob("debian-apps", layer["digest"]).read_bytes(), options, engine=ENGINE)
        for layer in ans["layers"]
    ]
    tables = [{rec.path: rec for rec in r.entries} for r in results]
    files = {path: FinalFile(tables[layer][path], layer) for path, layer in final.items() if path in tables[layer]}
    captured = {p: c for layer, r in enumerate(results) for p, c in r.captured.items() if final.get(p) == layer}
    too_big = {p for layer, r in enumerate(results) for p in r.too_big_to_capture if final.get(p) == layer}
    return ImageFiles.of(files, captured, too_big)


SYFT_TYPES = {"npm": "npm", "gem": "gem", "java-archive": "java", "python": "python", "dotnet": "nuget"}


@pytest.mark.corpus
def test_debian_apps_equals_syft_and_answers():
    result = catalog_image(debian_apps())
    assert [e for e in result.errors if e.cataloger in LIBRARY_TYPES] == []
    ours = {(p.type, p.name, p.version) for p in result.packages if p.type in LIBRARY_TYPES}
    with gzip.open(IMAGES / "debian-apps.syft.json.gz", "rt") as f:
        syft = {
            (SYFT_TYPES[a["type"]], a["name"], a["version"])
            for a in json.load(f)["artifacts"]
            if a["type"] in SYFT_TYPES
        }
    assert ours == syft  # no intentional differences on this image

    pk = answers("debian-apps")["packages"]
    truth = {("python", normalize(p["name"]), p["version"]) for p in pk["python"]}
    truth |= {("npm", p["name"], p["version"]) for p in pk["npm_installed"]}
    truth |= {("npm", m["name"], m["version"]) for m in pk["npm_app_manifests"].values()}
    truth |= {("gem", g["name"], g["version"]) for g in pk["gems"]}
    truth |= {("nuget", d["name"], d["version"]) for libs in pk["nuget_deps_json"].values() for d in libs}
    truth |= {("java", pom["artifactId"], pom["version"]) for a in pk["java_archives"] for pom in a["pom_properties"]}
    assert ours == truth
    # PyYAML was whited out in layer 4 and must not be reported.
    assert not any(p.name == "pyyaml" for p in result.packages)


@pytest.mark.corpus
def test_debian_apps_locations_as_anchore_keys():
    result = catalog_image(debian_apps())
    java = {p.location for p in result.packages if p.type == "java"}
    assert "/opt/webapps/orders-web.war:WEB-INF/lib/commons-lang3-3.12.0.jar" in java
    assert not any("/usr/share/maven-repo/" in loc for loc in java)  # symlinks: cataloged once, at the real file
    npm = {p.name: p for p in result.packages if p.type == "npm"}
    assert npm["orders-web"].location == "/app/package.json"
    assert (
        npm["express"].metadata.integrity.startswith("sha512-") and npm["express"].metadata.dev is False
    )  # from the lock
    assert npm["express"].purl == "pkg:npm/express@4.22.3"
    scoped = [p for p in npm.values() if p.name.startswith("@")]
    assert all(p.purl.startswith("pkg:npm/%40") for p in scoped)


# ---------------------------------------------------------------- java naming, as Syft names archives


def _names(jar: bytes, path: str) -> list[tuple[str, str, str]]:
    out = JavaCataloger().catalog_archive(jar, path)
    assert [e for e in out if isinstance(e, CatalogError)] == []
    return [(p.name, p.version, p.purl) for p in out if isinstance(p, Package)]


def test_java_archive_file_names_as_syft_reads_them():
    doc = json.loads((Path(__file__).parent / "fixtures/peers/java-archive-filenames.json").read_text())
    assert len(doc["cases"]) >= 20
    for c in doc["cases"]:
        assert parse_filename(c["filename"]) == (c["name"], c["version"]), c["filename"]


def test_java_jenkins_plugin_named_by_its_manifest_only():
    """Short-Name and Plugin-Version, no pom, no version in the file name: a package, not dropped."""
    mf = b"Manifest-Version: 1.0\nGroup-Id: org.jenkins-ci.plugins\nShort-Name: gradle\nPlugin-Version: 2.11\n"
    assert _names(_zip({"META-INF/MANIFEST.MF": mf}), "/var/jenkins_home/plugins/gradle.jpi") == [
        ("gradle", "2.11", "pkg:maven/org.jenkins-ci.plugins/gradle@2.11")
    ]


def test_java_file_name_names_the_archive_before_the_manifest_title():
    """Syft's selectName (and so Anchore's): without a pom, the file name; its version from the manifest."""
    mf = b"Manifest-Version: 1.0\nImplementation-Title: Spring Framework\nImplementation-Version: 2.5.6\n"
    assert [(n, v) for n, v, _ in _names(_zip({"META-INF/MANIFEST.MF": mf}), "/opt/lib/spring-core.jar")] == [
        ("spring-core", "2.5.6")
    ]


def test_java_embedded_pom_xml_names_the_archive_before_the_manifest_title():
    mf = b"Manifest-Version: 1.0\nImplementation-Title: Apache Tomcat\nImplementation-Version: 9.0.80\n"
    pom = b"""<project><parent><groupId>org.apache.tomcat</groupId><version>9.0.80</version></parent>
    <artifactId>tomcat-catalina</artifactId><properties><x>1</x></properties></project>"""
    jar = _zip({"META-INF/MANIFEST.MF": mf, "META-INF/maven/org.apache.tomcat/tomcat-catalina/pom.xml": pom})
    assert _names(jar, "/usr/local/tomcat/lib/catalina.jar") == [
        ("tomcat-catalina", "9.0.80", "pkg:maven/org.apache.tomcat/tomcat-catalina@9.0.80")
    ]


def test_java_archive_without_a_version_anywhere_is_reported_as_syft_does():
    jar = _zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nCreated-By: javac\n"})
    assert [(n, v) for n, v, _ in _names(jar, "/opt/app/bootstrap.jar")] == [("bootstrap", "")]
    assert _names(_zip({"a.class": b""}), "/opt/app/bootstrap.jar") == []  # no manifest: nothing to name it by


def test_java_weave_classes_instrumentation_is_not_the_library():
    mf = b"Manifest-Version: 1.0\nImplementation-Title: spring\nImplementation-Version: 4.3.0\nWeave-Classes: x\n"
    assert _names(_zip({"META-INF/MANIFEST.MF": mf}), "/newrelic/spring-4.3.0.jar") == []
