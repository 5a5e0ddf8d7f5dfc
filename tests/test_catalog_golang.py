"""The Go binary cataloger: build info read from scan marks, against what Syft reports.

The snippets (tests/fixtures/golang, see its README) carry real binaries' build info.
Syft 1.18.1's report on the original binaries is the answer key for every module with
a version; Syft's own unit tests (parse_go_binary_test.go) give the cases for the main
module's version and for replacements, here as build-info text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fsview import ENGINE, image_files_from_dir
from layerscan.catalog import golang
from layerscan.catalog.model import CatalogError, Package
from layerscan.catalog.purl import purl
from scancheck import ENGINES

FIXTURES = Path(__file__).parent / "fixtures" / "golang"
SYFT = json.loads((FIXTURES / "syft-1.18.1.json").read_text())["packages"]
DEVEL = "(devel)"


def catalog(root: Path, engine: str = ENGINE) -> list[Package | CatalogError]:
    files = image_files_from_dir(root, (), markers=golang.CATALOGER.markers, engine=engine)
    return list(golang.CATALOGER.catalog(files, None))


@pytest.fixture(scope="module")
def snippets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gobins")
    for snippet in FIXTURES.glob("*.snippet"):
        shutil.copy(snippet, root / snippet.stem)
    return root


@pytest.mark.parametrize("engine", ENGINES)
def test_modules_with_versions_are_syfts(snippets: Path, engine: str) -> None:
    found = catalog(snippets, engine)
    assert not [e for e in found if isinstance(e, CatalogError)]
    ours = [p for p in found if isinstance(p, Package)]
    for binary, expected in SYFT.items():
        mine = [p for p in ours if p.location == f"/{binary}"]
        # Syft 1.18.1 kept "(devel)" and named a local replacement by its directory; Syft now
        # reports no version and the module's own path (what we do): those are counted only.
        versioned = {(n, v, h1) for n, v, _, h1 in expected if v != DEVEL}
        assert {(p.name, p.version, p.metadata.h1_digest) for p in mine if p.version} == versioned, binary
        assert len(mine) == len(expected), binary
        for p in mine:  # Syft now writes the whole module path as the namespace, with no subpath
            namespace, _, name = p.name.rpartition("/")
            version = p.version.removeprefix("go") if p.name == "stdlib" else p.version
            assert p.purl == purl("golang", namespace, name, version)


def test_main_module_and_go_version(snippets: Path) -> None:
    by_name = {(p.location, p.name): p for p in catalog(snippets) if isinstance(p, Package)}
    kpt = by_name["/kpt", "github.com/GoogleContainerTools/kpt"]
    # -X github.com/GoogleContainerTools/kpt/run.version=1.0.0-beta.56: Syft's pattern stops at the ".56"
    assert kpt.version == "v1.0.0-beta"
    assert kpt.metadata.build_settings is not None and kpt.metadata.build_settings["vcs.modified"] == "true"
    kubectl = by_name["/kubectl", "k8s.io/kubernetes"]
    assert (kubectl.version, kubectl.metadata.go_compiled_version, kubectl.metadata.architecture) == (
        "v1.33.1",
        "go1.24.2",
        "amd64",
    )
    assert by_name["/terraform", "github.com/hashicorp/terraform"].version == ""  # (devel), no vcs, no ldflags
    stager = by_name["/go-app-stager", "stdlib"]
    assert (stager.version, stager.purl) == ("go1.22-20231128-RC02", "pkg:golang/stdlib@1.22-20231128-RC02")
    assert stager.metadata.go_experiments == ()  # the suffix starts with "cl/…", not "X:" (as Syft reads it)
    # a local replacement keeps the module's path, without a version
    assert by_name["/go-app-stager", "gopkg.in/yaml.v2"].version == ""


def modinfo(*lines: str) -> str:
    return "\n".join(lines) + "\n"


MAIN = "mod\tgithub.com/anchore/syft\t(devel)\t"
VCS = ("build\tvcs.revision=41bc6bb410352845f22766e27dd48ba93aa825a4", "build\tvcs.time=2022-10-14T19:54:57Z")


@pytest.mark.parametrize(
    "lines,version",
    [
        # the cases of Syft's parse_go_binary_test.go, by name
        ((MAIN,), ""),  # "parse a mod without packages"
        (
            (MAIN, *VCS, "build\t-ldflags=\"-w -s -extldflags '-static' -X blah=foobar\""),
            "v0.0.0-20221014195457-41bc6bb41035",
        ),
        (
            (MAIN, *VCS, 'build\t-ldflags="-w -s -X github.com/anchore/syft/internal/version.version=0.79.0"'),
            "v0.79.0",
        ),
        ((MAIN, 'build\t-ldflags="-w -s -X github.com/anchore/syft/internal/version.version=0.79.0"'), "v0.79.0"),
        ((MAIN, "build\t-ldflags=\"-w -s -extldflags '-static' -X main.version=0.79.0\""), "v0.79.0"),
        ((MAIN, "build\t-ldflags=\"-w -s -extldflags '-static' -X main.Version=0.79.0\""), "v0.79.0"),
        ((MAIN, *VCS), "v0.0.0-20221014195457-41bc6bb41035"),
    ],
)
def test_main_module_version_as_syft_guesses_it(lines: tuple[str, ...], version: str) -> None:
    pkgs = list(golang.packages(golang.parse_modinfo("go1.19", modinfo("path\tgithub.com/anchore/syft", *lines)), "/a"))
    main = next(p for p in pkgs if p.name == "github.com/anchore/syft")
    assert main.version == version
    assert main.purl == "pkg:golang/github.com/anchore/syft" + (f"@{version}" if version else "")


def test_path_without_main_module_and_replacements() -> None:
    info = golang.parse_modinfo(
        "go1.21.3",
        modinfo(
            "path\tgithub.com/a/b/c",
            "dep\tgithub.com/adrg/xdg\tv0.2.1\th1:VSVdnH7cQ7V+B33qSJHTCRlNgra1607Q8PzEmnvb2Ic=",
            "dep\tgithub.com/old/mod\tv1.0.0\th1:old=",
            "=>\tgithub.com/new/mod\tv1.1.0\th1:new=",
            "dep\tgithub.com/local/mod\tv1.0.0\th1:x=",
            "=>\t../local\t",
        ),
    )
    got = {(p.name, p.version, p.metadata.h1_digest) for p in golang.packages(info, "/a")}
    assert got == {
        ("github.com/a/b/c", "", ""),  # "parse a mod with path but no main module"
        ("github.com/adrg/xdg", "v0.2.1", "h1:VSVdnH7cQ7V+B33qSJHTCRlNgra1607Q8PzEmnvb2Ic="),
        ("github.com/new/mod", "v1.1.0", "h1:new="),  # the replacement's path, version and sum
        ("github.com/local/mod", "", ""),  # a directory: the module's own path
        ("stdlib", "go1.21.3", ""),
    }


def test_no_path_no_main_gives_the_dependencies_only() -> None:
    info = golang.parse_modinfo("go1.21.3", modinfo("dep\tgithub.com/adrg/xdg\tv0.2.1\th1:x="))
    assert [p.name for p in golang.packages(info, "/a")] == ["github.com/adrg/xdg", "stdlib"]


def executable(body: bytes) -> bytes:
    """An ELF head, then `body` at a 16-byte aligned offset, as a linker places build info."""
    return b"\x7fELF" + bytes(60) + body


def test_old_pointer_form_and_truncated_build_info_are_errors(tmp_path: Path) -> None:
    pointer_form = golang.MAGIC + bytes([8, 0]) + bytes(16)  # flags 0: pointers, not strings
    (tmp_path / "old").write_bytes(executable(pointer_form))
    too_long = golang.MAGIC + bytes([8, 2]) + bytes(16) + b"\x07go1.2.3" + b"\xff\xff\x0f" + b"x" * 100
    (tmp_path / "cut").write_bytes(executable(too_long))
    found = catalog(tmp_path)
    assert sorted((e.path, e.reason[:30]) for e in found if isinstance(e, CatalogError)) == [
        ("/cut", "Go build info truncated (large"),
        ("/old", "Go build info in the pre-1.18 "),
    ]
    assert not [p for p in found if isinstance(p, Package)]


def test_magic_as_a_string_elsewhere_is_not_build_info(tmp_path: Path) -> None:
    # A binary that reads build info holds the magic as a string, unaligned: not an error, nothing found.
    (tmp_path / "reader").write_bytes(b"\x7fELF" + bytes(3) + golang.MAGIC + b"string data")
    assert catalog(tmp_path) == []
