"""Runtimes found in executables (the binary cataloger), on Syft's own classifier snippets,
and the new ecosystems end to end: an image analyzed by the pipeline, its Anchore export's
`binary` and `go` sections, CycloneDX and SPDX.

tests/fixtures/binary holds Syft's snippets (syft/pkg/cataloger/binary/testdata/classifiers/
snippets, Apache-2.0): byte ranges of real runtimes, each given an ELF magic so that it is an
executable again, with the package Syft's tests expect of it in `expected.json`.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from fsview import image_files_from_dir
from imagebuilder import Image, Layer, d, f, l, oci_layout, write_dir
from layerscan.analysis import Analysis
from layerscan.catalog import binary, filter_owned
from layerscan.catalog.metadata import BinaryMetadata, DpkgMetadata
from layerscan.catalog.model import Package
from layerscan.config import Config
from layerscan.pipeline import analyze
from layerscan.report import FORMATS
from scancheck import ENGINES

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.parent for p in (FIXTURES / "binary").rglob("expected.json"))
# The version comes before its literal ("…11.0.22+7\0…\0openjdk\0java"): marks only look forward.
KNOWN_MISSES = {"java-jre-openjdk-arm64-eclipse/11.0.22/linux-arm64"}


def found(root: Path, engine: str) -> list[tuple[str, str, str]]:
    files = image_files_from_dir(root, binary.CATALOGER.globs, markers=binary.CATALOGER.markers, engine=engine)
    return [(p.name, p.version, p.purl) for p in binary.CATALOGER.catalog(files, None) if isinstance(p, Package)]


@pytest.mark.parametrize("engine", ENGINES)
def test_syft_classifier_snippets(engine: str) -> None:
    matched = []
    for case in CASES:
        name = case.relative_to(FIXTURES / "binary").as_posix()
        expected = [
            (e["name"], e["version"], e["purl"]) for e in json.loads((case / "expected.json").read_text())["expected"]
        ]
        got = found(case, engine)
        if name in KNOWN_MISSES:
            assert got == [], f"{name} is found now: take it off KNOWN_MISSES"
            continue
        assert got == expected, name
        matched.append(name)
    assert len(matched) == len(CASES) - len(KNOWN_MISSES) == 24


@pytest.mark.parametrize(
    "name",
    [
        *(p.name for case in CASES for p in case.rglob("*") if p.is_file()),
        *(
            "python3.11 python3 python libpython3.11.so.1.0 libpython3.11d.so libpythonx.so patchlevel.h patchlevelxh"
            " go go.exe gox go.exe.1 node nodejs java javac ruby libruby.so.3.1 perl perl5 php php8.2 php-fpm php-fpm8.2"
            " libphp8.so libphp.so.1 busybox busybox.suid ld-linux-x86-64.so.2"
        ).split(),
    ],
)
def test_any_name_is_the_union_of_the_names_looked_at(name: str) -> None:
    each = [binary.PYTHON_BIN, binary.PYTHON_LIB, binary.GO_NAME, *(c.name for c in binary.CLASSIFIERS)]
    looked_at = name == binary.PATCHLEVEL_H or any(n.fullmatch(name) for n in each)
    assert bool(binary.ANY_NAME.fullmatch(name)) == looked_at


def test_one_package_per_runtime_and_version() -> None:
    # python-duplicates: python3.8, dir/python3.8 and libpython3.8.so all say 3.8.16
    case = FIXTURES / "binary/python-duplicates/3.8.16/linux-amd64"
    files = image_files_from_dir(case, binary.CATALOGER.globs, markers=binary.CATALOGER.markers)
    (python,) = binary.CATALOGER.catalog(files, None)
    assert isinstance(python, Package)
    assert python.location == "/dir/python3.8"
    assert python.files == ("/dir/python3.8", "/libpython3.8.so", "/patchlevel.h", "/python3.8")
    assert python.metadata.classifier == "python-binary"


def test_a_runtime_an_os_package_owns_is_left_out() -> None:
    runtime = Package("binary", "python", "3.11.2", "/usr/bin/python3.11", metadata=BinaryMetadata())
    owner = Package(
        "dpkg",
        "python3.11-minimal",
        "3.11.2-6",
        "/var/lib/dpkg/status",
        files=("/usr/bin/python3.11",),
        metadata=DpkgMetadata(),
    )
    assert filter_owned([owner, runtime]) == [owner]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Go binaries, a Composer project, python and node runtimes, and busybox behind a link."""
    snippet = (FIXTURES / "golang/terraform.snippet").read_bytes()
    python = (FIXTURES / "binary/python/3.6.3/linux-amd64/python3.6").read_bytes()
    node = (FIXTURES / "binary/node/19.2.0/linux-amd64/node").read_bytes()
    busybox = (FIXTURES / "binary/busybox/1.36.1/linux-amd64/[").read_bytes()
    lock = (FIXTURES / "composer/composer.lock").read_bytes()
    layers = [
        Layer([d("usr"), d("usr/local"), d("usr/local/bin"), f("usr/local/bin/terraform", snippet, 0o755)]),
        Layer(
            [
                d("app"),
                f("app/composer.lock", lock),
                f("usr/local/bin/python3.6", python, 0o755),
                f("usr/local/bin/node", node, 0o755),
                d("bin"),
                f("bin/[", busybox, 0o755),
                l("bin/busybox", "["),
            ],
            "zstd",
        ),
    ]
    tmp = tmp_path_factory.mktemp("newcat")
    shutil.rmtree(tmp)
    return write_dir(oci_layout([Image(layers)]), tmp)


def render(a: Analysis, fmt: str) -> dict:
    out = io.StringIO()
    FORMATS[fmt](a, out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("engine", ENGINES)
def test_new_ecosystems_end_to_end(image: Path, engine: str) -> None:
    a = analyze(f"oci-dir:{image}", Config(), engine=engine, progress=False)
    assert not a.catalog_errors
    kinds = {(p.type, p.name, p.version) for p in a.packages}
    assert {
        ("go-module", "cloud.google.com/go", "v0.110.7"),
        ("go-module", "stdlib", "go1.23.3"),
        ("php-composer", "adoy/fastcgi-client", "1.0.2"),
        ("binary", "python", "3.6.3"),
        ("binary", "node", "19.2.0"),
        ("binary", "busybox", "1.36.1"),
    } <= kinds
    assert sum(p.type == "go-module" for p in a.packages) == 223  # as Syft 1.18.1 counts terraform's

    sections = render(a, "anchore")[0]["image"]["imagedata"]["analysis_report"]["package_list"]
    go = sections["pkgs.go"]["base"]
    entry = go["/usr/local/bin/terraform:cloud.google.com/go@v0.110.7"]
    module = next(p for p in a.packages if p.name == "cloud.google.com/go")
    assert entry == {
        "name": "cloud.google.com/go",
        "version": "v0.110.7",
        "location": "/usr/local/bin/terraform",
        "type": "go",
        "files": [],
        "license": "N/A",
        "origin": "N/A",
        "cpes": list(module.cpes),
        "metadata": {
            "goCompiledVersion": "go1.23.3",
            "architecture": "amd64",
            "h1Digest": "h1:rJyC7nWRg2jWGZ4wSJ5nY65GTdYJkg0cd/uXb+ACI6o=",
            "mainModule": "github.com/hashicorp/terraform",
        },
    }
    assert not any(k.endswith(":stdlib@go1.23.3") for k in go)  # Anchore's Syft (0.75) has no stdlib
    assert sections["pkgs.binary"]["base"]["/usr/local/bin/python3.6"] == {
        "name": "python",
        "version": "3.6.3",
        "location": "/usr/local/bin/python3.6",
        "type": "binary",
        "files": [],
        "license": "N/A",
        "origin": "N/A",
        "metadata": '{"evidence_type": "binary"}',
    }
    assert sections["pkgs.binary"]["base"]["/bin/busybox"]["version"] == "1.36.1"
    assert "pkgs.composer" not in sections  # Anchore's syft handlers skip php-composer

    purls = {p.purl for p in a.packages}
    cyclonedx = {c.get("purl") for c in render(a, "cyclonedx")["components"]}
    spdx = {
        r["referenceLocator"]
        for p in render(a, "spdx")["packages"]
        for r in p.get("externalRefs", [])
        if r["referenceType"] == "purl"
    }
    for want in (
        "pkg:golang/cloud.google.com/go@v0.110.7",
        "pkg:golang/stdlib@1.23.3",
        "pkg:composer/adoy/fastcgi-client@1.0.2",
        "pkg:generic/python@3.6.3",
        "pkg:generic/node@19.2.0",
    ):
        assert want in purls and want in cyclonedx and want in spdx, want
