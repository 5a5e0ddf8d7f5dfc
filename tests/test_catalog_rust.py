"""The cargo-auditable cataloger: Rust crates from the zlib-compressed dependency list a
binary carries in its `.dep-v0` section, found by the scan's probed marker (scan/model.py
Marker), against what Syft 1.18.1 reports for the same image.

The binaries are real ELF executables: a C program (cargo is not in CI) with the section
added by objcopy, holding the JSON cargo-auditable writes (its compact serde_json form),
compressed at each zlib level, so every header zlib and miniz write is met. The dependency
list is Syft's own fixture's (image-audit), with what its cataloger must leave out added: a
build dependency, a nameless entry. tests/fixtures/rust/syft-1.18.1.json is Syft's report
on the image `image()` builds: `python tests/test_catalog_rust.py` writes it again.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

from fsview import image_files_from_dir
from imagebuilder import Image, Layer, d, f, oci_layout, write_dir
from layerscan.analysis import Analysis
from layerscan.catalog import capture_markers, rust
from layerscan.catalog.model import CatalogError, Package
from layerscan.config import Config
from layerscan.pipeline import analyze
from layerscan.report import FORMATS
from scancheck import ENGINES

FIXTURES = Path(__file__).parent / "fixtures" / "rust"
SYFT_ANSWER = FIXTURES / "syft-1.18.1.json"

# Syft's image-audit fixture (hello_world and its crates), as cargo-auditable lists them.
CRATES = [
    {"name": "argh", "version": "0.1.12", "source": "crates.io", "dependencies": [1, 2]},
    {"name": "argh_derive", "version": "0.1.12", "source": "crates.io", "dependencies": [2, 4, 5, 8]},
    {"name": "argh_shared", "version": "0.1.12", "source": "crates.io", "dependencies": [6]},
    {"name": "hello_world", "version": "0.1.0", "source": "local", "dependencies": [0], "root": True},
    {"name": "proc-macro2", "version": "1.0.92", "source": "crates.io", "dependencies": [9]},
    {"name": "quote", "version": "1.0.37", "source": "crates.io", "dependencies": [4]},
    {"name": "serde", "version": "1.0.215", "source": "crates.io", "dependencies": [7]},
    {"name": "serde_derive", "version": "1.0.215", "source": "crates.io", "dependencies": [4, 5, 8]},
    {"name": "syn", "version": "2.0.90", "source": "crates.io", "dependencies": [4, 5, 9]},
    {"name": "unicode-ident", "version": "1.0.14", "source": "crates.io", "kind": "runtime"},
    # Beyond Syft's fixture: a crate from git, a build dependency and a nameless entry.
    {"name": "tiny-crate", "version": "0.2.0", "source": "git"},
    {"name": "cc", "version": "1.2.1", "source": "crates.io", "kind": "build"},
    {"name": "", "version": "1.0.0", "source": "crates.io"},
]
RUNTIME_CRATES = {(c["name"], c["version"], c["source"]) for c in CRATES if c["name"] and c.get("kind") != "build"}
LEVELS = (0, 1, 6, 9)  # stored (header 78 01), 78 01, 78 9c, 78 da


def dependency_list(crates: list[dict], level: int = 9) -> bytes:
    return zlib.compress(json.dumps({"packages": crates}, separators=(",", ":")).encode(), level)


def compile_program(out: Path) -> Path:
    subprocess.run(["gcc", "-x", "c", "-o", str(out), "-"], input=b"int main(void) { return 0; }\n", check=True)
    return out


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_program(tmp_path_factory.mktemp("rustbin") / "hello")


def auditable(program: Path, section: bytes, tmp: Path) -> bytes:
    """`program` with `section` as its .dep-v0, where cargo-auditable puts it."""
    data, out = tmp / "dep-v0", tmp / "auditable"
    data.write_bytes(section)
    subprocess.run(
        ["objcopy", "--add-section", f".dep-v0={data}", "--set-section-flags", ".dep-v0=alloc,readonly"]
        + [str(program), str(out)],
        check=True,
        capture_output=True,  # "allocated section not in segment": the section is read, never loaded
    )
    return out.read_bytes()


def image(program: Path, tmp: Path) -> Path:
    """One binary per zlib level under /usr/local/bin, and one without a list: an OCI layout."""
    entries = [d("usr"), d("usr/local"), d("usr/local/bin")]
    for level in LEVELS:
        entries.append(
            f(f"usr/local/bin/hello_{level}", auditable(program, dependency_list(CRATES, level), tmp), 0o755)
        )
    entries.append(f("usr/local/bin/plain", program.read_bytes(), 0o755))
    return write_dir(oci_layout([Image([Layer(entries)])]), tmp / "image")


Row = tuple[str, str, str, str, str, tuple[str, ...]]


def key(location: str, name: str, version: str, purl: str, source: str, cpes: list[str] | tuple[str, ...]) -> Row:
    return (location, name, version, purl, source, tuple(cpes))


@pytest.fixture(scope="module")
def analyses(program: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Analysis]:
    tmp = tmp_path_factory.mktemp("rustimage")
    layout = image(program, tmp)
    return {
        engine: analyze(f"oci-dir:{layout}", Config(tmp_dir=str(tmp)), engine=engine, progress=False)
        for engine in ENGINES
    }


def crates(analysis: Analysis) -> list[Package]:
    return [p for p in analysis.packages if p.type == "rust-crate"]


def test_both_engines_find_what_syft_finds_with_its_cpes(analyses: dict[str, Analysis]) -> None:
    syft = json.loads(SYFT_ANSWER.read_text())["packages"]
    want = sorted(key(*row) for row in syft)
    assert len(want) == len(LEVELS) * len(RUNTIME_CRATES)
    for engine, analysis in analyses.items():
        assert not [e for e in analysis.catalog_errors if e.cataloger == rust.CATALOGER.name], engine
        got = sorted(key(p.location, p.name, p.version, p.purl, p.metadata.source, p.cpes) for p in crates(analysis))  # type: ignore[union-attr]
        assert got == want, engine


def test_engines_agree_on_the_whole_package(analyses: dict[str, Analysis]) -> None:
    native, reference = (crates(analyses[e]) for e in ENGINES)
    assert [(p, p.metadata) for p in native] == [(p, p.metadata) for p in reference]


def test_crates_in_the_json_report_and_sboms(analyses: dict[str, Analysis]) -> None:
    analysis = analyses["native"]
    want = {f"pkg:cargo/{n}@{v}" for n, v, _ in RUNTIME_CRATES}

    def render(fmt: str) -> dict:
        out = io.StringIO()
        FORMATS[fmt](analysis, out)
        return json.loads(out.getvalue())

    native = render("json")
    mine = [p for p in native["packages"] if p["type"] == "rust-crate"]
    assert {p["purl"] for p in mine} == want
    assert {p["metadata"]["source"] for p in mine} == {"crates.io", "local", "git"}
    assert {c["purl"] for c in render("cyclonedx")["components"] if c.get("purl", "").startswith("pkg:cargo/")} == want
    spdx_purls = {
        ref["referenceLocator"]
        for p in render("spdx")["packages"]
        for ref in p.get("externalRefs", ())
        if ref["referenceType"] == "purl"
    }
    assert {u for u in spdx_purls if u.startswith("pkg:cargo/")} == want
    # Anchore Engine skips Syft's rust-crate type (docs/anchore-compat.md): nowhere in the export.
    assert "pkg:cargo/" not in json.dumps(render("anchore")) and "hello_world" not in json.dumps(render("anchore"))


def catalog(root: Path, engine: str) -> list[Package | CatalogError]:
    files = image_files_from_dir(root, (), markers=rust.CATALOGER.markers, engine=engine)
    return list(rust.CATALOGER.catalog(files, None))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_list_is_found_in_any_executable_format_amid_chance_stream_heads(tmp_path: Path, engine: str) -> None:
    """The scan does not read sections, so Mach-O and PE files are read alike; random bytes
    hold a 0x78 every 256 bytes and a valid zlib header every 8 KiB, and none of it counts."""
    rng = random.Random(11)
    noise = rng.randbytes(300_000)
    stream = dependency_list(CRATES[:3], 6)
    heads = {"elf": b"\x7fELF", "macho": b"\xcf\xfa\xed\xfe", "pe": b"MZ\x90\x00"}
    for name, head in heads.items():
        (tmp_path / name).write_bytes(head + noise[:150_001] + stream + noise[150_001:])
    (tmp_path / "noise").write_bytes(b"\x7fELF" + noise)
    # a zlib stream of other text, and the list in a file that is no executable: not read
    (tmp_path / "other").write_bytes(b"\x7fELF" + zlib.compress(b'{"name": "not a dependency list"}'))
    (tmp_path / "data").write_bytes(b"data" + stream)
    found = catalog(tmp_path, engine)
    assert sorted((p.location, p.name) for p in found if isinstance(p, Package)) == sorted(
        (f"/{name}", c["name"]) for name in heads for c in CRATES[:3]
    )
    assert [e for e in found if isinstance(e, CatalogError)] == []


def test_broken_lists_are_errors_of_their_file(tmp_path: Path) -> None:
    big = [{"name": f"crate-{i}", "version": f"{i}.0.0", "source": "crates.io"} for i in range(40_000)]
    stream = dependency_list(big, 0)  # stored: longer than the scan's window
    assert len(stream) > rust.WINDOW
    (tmp_path / "huge").write_bytes(b"\x7fELF" + stream)
    (tmp_path / "typed").write_bytes(b"\x7fELF" + dependency_list([{"name": 7, "version": "1"}]))
    errors = {e.path: e.reason for e in catalog(tmp_path, "native") if isinstance(e, CatalogError)}
    assert "truncated" in errors["/huge"]
    assert "'name' is not a string" in errors["/typed"]


def test_a_list_the_probe_accepts_is_kept_whole_past_the_step_it_was_decided_in(tmp_path: Path) -> None:
    """The probe decides within its first bytes; the window then takes the rest of the piece
    it was held back from (marks.c decide()): a list of many crates spans many steps."""
    many = [{"name": f"crate-{i}", "version": f"{i}.0.0", "source": "crates.io"} for i in range(3000)]
    (tmp_path / "app").write_bytes(b"\x7fELF" + bytes(1000) + dependency_list(many))
    for engine in ENGINES:
        found = catalog(tmp_path, engine)
        assert sorted(p.name for p in found if isinstance(p, Package)) == sorted(c["name"] for c in many), engine


@pytest.mark.parametrize("engine", ENGINES)
def test_real_cargo_auditable_output_in_elf_pe_and_mach_o(tmp_path: Path, engine: str) -> None:
    """Trivy's test binaries (cargo-auditable's own output, miniz-compressed), as snippets: the
    first 64 bytes and the .dep-v0 stream. Trivy expects both crates, the root one included;
    Syft 1.18.1 reports them for the ELF and PE binaries and nothing for the Mach-O one (its
    Mach-O reader fails on it: "unknown file format"), where we find them too."""
    for snippet in FIXTURES.glob("trivy-*.snippet"):
        shutil.copy(snippet, tmp_path / snippet.stem)
    found = [p for p in catalog(tmp_path, engine) if isinstance(p, Package)]
    assert sorted((p.location, p.purl, p.metadata.source) for p in found) == sorted(  # type: ignore[union-attr]
        (f"/trivy-{kind}", f"pkg:cargo/{name}@0.1.0", "local")
        for kind in ("elf", "exe", "macho")
        for name in ("crate_with_features", "library_crate")
    )


def test_the_marker_is_among_the_capture_markers() -> None:
    assert set(rust.CATALOGER.markers) <= set(capture_markers())


def syft_answer(layout: Path) -> list[list[str]]:
    """Syft 1.18.1's rust-crate packages of the image: (path, name, version, purl, source, CPEs) rows."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import peers

    with tempfile.TemporaryDirectory() as scratch:
        run = peers.syft_command(layout, Path(scratch))
        subprocess.run(run.argv, env=run.env, check=True)
        doc = json.loads(run.output.read_text())
    rows = [
        [
            a["locations"][0]["path"],
            a["name"],
            a["version"],
            a["purl"],
            a["metadata"]["source"],
            [c["cpe"] for c in a["cpes"]],
        ]
        for a in doc["artifacts"]
        if a["type"] == "rust-crate"
    ]
    return sorted(rows)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        rows = syft_answer(image(compile_program(tmp / "hello"), tmp))
    SYFT_ANSWER.parent.mkdir(exist_ok=True)
    doc = {"syft": "1.18.1", "image": "test_catalog_rust.image()", "packages": rows}
    SYFT_ANSWER.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(rows)} packages -> {os.path.relpath(SYFT_ANSWER)}", file=sys.stderr)
