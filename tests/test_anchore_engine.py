"""The Anchore export against Anchore Engine's own analyzer (tests/anchore_engine.py).

Every section of the export equals the engine's, on the corpus images, on images made of
corpus fixtures (apk and dpkg databases, python, npm, gem, .NET, java archives) and on a small
image built to exercise long names, links across layers and a directory replaced by a file, but
for the differences docs/anchore-compat.md documents. Each is removed here
by one named function, so a new difference fails the test.

Skipped where the engine's harness is not set up (it needs Anchore Engine's sources,
which CI does not have).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anchore_engine import (
    NOT_READY,
    EngineFailed,
    Section,
    differences,
    equality,
    gzip_only_copy,
    harness_ready,
    imagedata,
    run_engine,
    sections,
)
from conftest import FIXTURES, IMAGE_NAMES, IMAGES
from imagebuilder import Entry, Image, Layer, d, f, h, l, oci_layout, write_dir
from layerscan.config import load_config
from layerscan.pipeline import analyze
from layerscan.report import FORMATS

pytestmark = pytest.mark.skipif(not harness_ready(), reason=NOT_READY)

Sections = dict[Section, dict[str, Any]]

# The engine's secret rules only: layerscan's own rules find more.
ANCHORE_RULES = "secret_search:\n  builtin_rules: false\n"


def ours(layout: Path, tmp: Path) -> Sections:
    config = tmp / "config.yaml"
    config.write_text(ANCHORE_RULES)
    out = io.StringIO()
    FORMATS["anchore"](analyze(f"oci-dir:{layout}", load_config(str(config)), progress=False), out)
    return sections(imagedata(json.loads(out.getvalue())))


# ------------------------------------------------------------ documented differences


def harness_names(a: Sections, e: Sections) -> None:
    """The harness gives the engine a registry name it made up for the local layout."""
    for s in (a, e):
        s[("image_report", "docker_data")].pop("RepoTags")
        s[("image_report", "docker_data")].pop("RepoDigests")
        s[("image_report", "meta")].pop("humanname")


def cpes(a: Sections, e: Sections) -> None:
    """Not compared yet: layerscan's CPE generation is being written (issue 11, part 3)."""
    for s in (a, e):
        for (analyzer, _), values in s.items():
            if analyzer == "package_list":
                for value in values.values():
                    if isinstance(value, dict):
                        value.pop("cpes", None)


def sha1sums(a: Sections, e: Sections) -> None:
    """Beyond Anchore: sha1sums for every distro (the engine writes them for Alpine only)."""
    if ("file_checksums", "files.sha1sums") not in e:
        del a[("file_checksums", "files.sha1sums")]


def nuget(a: Sections, e: Sections) -> None:
    """Beyond Anchore: pkgs.nuget; with it, no empty pkgs.binary (it would hide nuget from the policy engine)."""
    if ("package_list", "pkgs.nuget") in a:
        del a[("package_list", "pkgs.nuget")]
        if not e.get(("package_list", "pkgs.binary"), True):
            del e[("package_list", "pkgs.binary")]


def python_licenses(a: Sections, e: Sections) -> None:
    """Beyond Anchore: a python license from License-Expression or the classifiers, where
    the engine's Syft reads only the License field and writes ""."""
    theirs = e.get(("package_list", "pkgs.python"), {})
    for key, value in a.get(("package_list", "pkgs.python"), {}).items():
        if key in theirs and theirs[key]["license"] == "" and value["license"]:
            value["license"] = ""


def stale_children(a: Sections, e: Sections) -> None:
    """Anchore bug: children of a directory a later layer replaced by a file are kept."""
    ours_paths = set(a[("file_list", "files.all")])
    for path in set(e[("file_list", "files.all")]) - ours_paths:
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in ours_paths:
            parent = parent.rsplit("/", 1)[0]
        assert parent, path
        assert a[("file_list", "files.allinfo")][parent]["type"] != "dir", path
        for (analyzer, _), values in e.items():
            if analyzer in ("file_list", "file_checksums", "file_suids"):
                values.pop(path, None)


# Syft's npm fixtures that Syft 0.75 reads otherwise than Syft 1.x (whose expectations the
# npm cataloger meets): legacy and mixed license arrays, null or unknown license objects, an
# invalid name, a non-standard author, no version.
NPM_VARIANTS = (
    "legacy-array-package",
    "mixed-array-license-package",
    "null-license-package",
    "unknown-license-object-package",
    "invalid-name",
    "syft-package-author-non-standard",
    "without-version-package",
)


def npm_variants(a: Sections, e: Sections) -> None:
    """Malformed and legacy package.json forms, read as Syft 1.x reads them."""
    for s in (a, e):
        npms = s.get(("package_list", "pkgs.npms"), {})
        for name in NPM_VARIANTS:
            npms.pop(f"/app/node_modules/{name}/package.json", None)


def java_virtual_paths(a: Sections, e: Sections) -> None:
    """A package that a bundled pom.properties gives besides the archive's own is keyed by
    Syft 1.x's virtual path, "<archive>:<groupId>:<artifactId>"; Syft 0.75's left out the group."""
    java = a.get(("package_list", "pkgs.java"), {})
    for key in list(java):
        pom = dict(line.split("=", 1) for line in java[key]["metadata"]["pom.properties"].split("\n") if "=" in line)
        suffix = f":{pom['groupId']}:{pom['artifactId']}"
        if key.endswith(suffix):
            engine_key = f"{key[: -len(suffix)]}:{pom['artifactId']}"
            java[engine_key] = {**java.pop(key), "location": engine_key}


Difference = Callable[[Sections, Sections], None]
DOCUMENTED: tuple[Difference, ...] = (harness_names, cpes, sha1sums, nuget, python_licenses, java_virtual_paths)


def assert_equal_but_documented(a: Sections, e: Sections, documented: tuple[Difference, ...]) -> None:
    for difference in documented:
        difference(a, e)
    unequal = {s: p for s, p in equality(a, e).items() if p < 100}
    assert not unequal, "\n".join([f"% equal: {unequal}", *differences(a, e)])


# ------------------------------------------------------------------------------ tests


@pytest.mark.corpus
@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_corpus_image_equals_the_engine(name: str, tmp_path: Path) -> None:
    layout = gzip_only_copy(IMAGES / name, tmp_path / name)
    engine = sections(run_engine(layout, tmp_path / "anchore.json"))
    assert_equal_but_documented(ours(layout, tmp_path), engine, DOCUMENTED)


def test_built_image_equals_the_engine(tmp_path: Path) -> None:
    """Long names and link targets (PAX records), links across layers, a hardlink to a
    lower layer (copied whole), a chain of links (othernames), a directory made a file."""
    long_dir = "opt/" + "d" * 90
    target = f"/{long_dir}/" + "t" * 40
    lower = Layer(
        [
            d("a"),
            f("a/b", b"child"),
            d("etc"),
            l("etc/link-a", "/usr/bin/tool"),
            l("etc/link-b", "/usr/bin/tool"),
            l("etc/long-link", target),
            d("opt"),
            d(long_dir),
            f(target.lstrip("/"), b"long"),
            d("usr"),
            d("usr/bin"),
            l("usr/bin/alias", "/etc/link-a"),
            f("usr/bin/tool", b"#!/bin/sh\n", mode=0o755),
            l("usr/bin/tool2", "tool"),
        ]
    )
    # As Docker and BuildKit write a layer, it repeats the directories it adds files to
    # (the engine drops a directory a layer does not repeat: anchore-compat.md).
    upper = Layer(
        [
            f("a", b"now a file"),
            d("usr"),
            d("usr/bin"),
            h("usr/bin/hard", "usr/bin/tool"),
            l("usr/bin/late", "/etc/link-b"),
        ]
    )
    layout = write_dir(oci_layout([Image([lower, upper])]), tmp_path / "built")
    engine = sections(run_engine(layout, tmp_path / "anchore.json"))
    assert "/a/b" in engine[("file_list", "files.all")]  # the engine's bug this image shows
    assert_equal_but_documented(ours(layout, tmp_path), engine, (*DOCUMENTED, stale_children))


# Syft's gemspec fixtures that Syft 0.75 reads otherwise: `#{s.name}` left unexpanded in the
# homepage, `spec.license =` (singular) ignored, malformed specs listed.
GEM_VARIANTS = ("formatador", "license", "malformed00", "malformed01")


def gem_variants(a: Sections, e: Sections) -> None:
    """Gemspec forms read as Syft 1.x reads them."""
    for s in (a, e):
        gems = s.get(("package_list", "pkgs.gems"), {})
        for name in GEM_VARIANTS:
            gems.pop(f"/usr/local/bundle/specifications/{name}.gemspec", None)


# Syft's and Trivy's java fixtures, each in /java/<case>.
JAVA_CASES = (
    "duplicate-pom-properties",
    "gradle-war-nested",
    "jenkins-hpi-nested",
    "jenkins-plugin-manifest-license",
    "manifest-only",
    "maven-war-nested",
    "multi-license-files",
    "nested-jar-3-levels",
    "par-nested",
    "shaded-fatjar",
    "uber-jar-maven-shade",
)
# Syft 0.75 names gizmo's jar "io.quarkus.gizmo.gizmo" from its whole file name, without its
# pom.properties, and lists that pom.properties apart (":gizmo"); Syft 1.x and layerscan read
# the file name as groupId.artifactId and take that pom.properties as the jar's own.
JAVA_VARIANTS = ("duplicate-pom-properties/io.quarkus.gizmo.gizmo-1.1.jar",)
JAVA_ENGINE_ONLY = ("duplicate-pom-properties/io.quarkus.gizmo.gizmo-1.1.jar:gizmo",)
# Beyond Anchore: archives without a MANIFEST.MF, where Syft lists nothing, give their
# pom.properties' packages (as Trivy reads them; the fixtures expect them).
JAVA_OURS_ONLY = (
    "nested-jar-3-levels/nested.jar",
    "nested-jar-3-levels/nested.jar:META-INF/jars/nested2.jar",
    "nested-jar-3-levels/nested.jar:META-INF/jars/nested2.jar:META-INF/jars/nested3.jar",
    "par-nested/test.par:par-app",
)


def java_variants(a: Sections, e: Sections) -> None:
    """Java archives Syft 0.75 names otherwise, and archives only layerscan reads."""
    ours, theirs = a[("package_list", "pkgs.java")], e[("package_list", "pkgs.java")]
    for key in JAVA_VARIANTS:
        del ours[f"/java/{key}"], theirs[f"/java/{key}"]
    for key in JAVA_ENGINE_ONLY:
        assert f"/java/{key}" not in ours
        del theirs[f"/java/{key}"]
    for key in JAVA_OURS_ONLY:
        assert f"/java/{key}" not in theirs
        del ours[f"/java/{key}"]


ALPINE_RELEASE = f("etc/os-release", b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.18.4\n')
FIXTURE_IMAGES = {
    # apk database, python site-packages, Syft's package.json variants; the engine writes sha1sums for Alpine
    "alpine": (
        (("apk/alpine3.18", ""), ("python/site-packages-metadata", ""), ("npm/package-json-variants", "app")),
        (d("etc"), ALPINE_RELEASE, d("app")),
        npm_variants,
    ),
    # dpkg status and info (with its os-release), Syft's gemspecs, a .NET deps.json
    "debian": (
        (("dpkg/debian12-status-info", ""), ("ruby/installed-gemspecs", ""), ("dotnet/testlibrary-deps-json", "")),
        (),
        gem_variants,
    ),
    # jar, war, hpi and par archives: shaded, nested three deep, manifest-only, without a manifest
    "java": (
        tuple((f"java/{case}", f"java/{case}") for case in JAVA_CASES),
        (d("java"), *(d(f"java/{case}") for case in JAVA_CASES)),
        java_variants,
    ),
}


@pytest.mark.corpus
@pytest.mark.parametrize("name", FIXTURE_IMAGES)
def test_fixture_image_equals_the_engine(name: str, tmp_path: Path) -> None:
    """An image made of corpus fixtures."""
    cases, extra, variants = FIXTURE_IMAGES[name]
    entries = {e.path: e for e in extra}
    for case, under in cases:
        entries.update((e.path, e) for e in _tree(FIXTURES / case, under))
    layout = write_dir(oci_layout([Image([Layer([entries[p] for p in sorted(entries)])])]), tmp_path / name)
    engine = sections(run_engine(layout, tmp_path / "anchore.json"))
    assert (("file_checksums", "files.sha1sums") in engine) == (name == "alpine")
    assert_equal_but_documented(ours(layout, tmp_path), engine, (*DOCUMENTED, variants))


def _tree(root: Path, under: str) -> list[Entry]:
    """A fixture directory as layer entries (its expected.json left out), below `under`."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.name != "expected.json":
            path = "/".join(filter(None, (under, str(p.relative_to(root)))))
            out.append(d(path) if p.is_dir() else f(path, p.read_bytes()))
    return out


@pytest.mark.corpus
def test_the_engine_cannot_read_zstd_or_plain_layers(tmp_path: Path) -> None:
    """debian-apps has a zstd and an uncompressed layer: the engine fails, layerscan reads it."""
    with pytest.raises(EngineFailed):
        run_engine(IMAGES / "debian-apps", tmp_path / "anchore.json")
    assert ours(IMAGES / "debian-apps", tmp_path)[("file_list", "files.all")]
