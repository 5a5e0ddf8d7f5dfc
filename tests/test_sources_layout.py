"""Local sources (oci-dir, oci-archive, docker-archive) on images built by tests/imagebuilder.py:
every format and layer compression, platform choice, zero-copy layers, and bad input."""

from __future__ import annotations

import gzip
import json
import mmap
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import IMAGES, answers
from imagebuilder import (
    OCI_CONFIG,
    OCI_MANIFEST,
    Files,
    Image,
    Layer,
    Link,
    blob_name,
    canonical,
    d,
    digest_of,
    docker_archive,
    f,
    h,
    l,
    oci_layout,
    opaque,
    put_blob,
    put_json,
    whiteout,
    write_dir,
    write_tar,
)
from layerscan.cli import main as cli_main
from layerscan.config import Config
from layerscan.errors import DigestMismatch, LayerscanError, SourceError
from layerscan.filetree import ImageFiles
from layerscan.image import ImageSource, Platform
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.sources import open_source
from layerscan.sources.files import DirFiles, TarFiles
from layerscan.sources.layout import LayoutSource
from layerscan.sources.resolve import PlatformNotFound
from layerscan.squash import squash

ENGINES = ["reference", "native"]
CONFIG = Config()
CAPTURE = ScanOptions(capture_globs=("/**",))

APP = Image(
    [
        Layer(
            [
                d("etc"),
                f("etc/motd", b"welcome"),
                f("etc/passwd", b"root:x:0:0"),
                d("app"),
                d("app/cfg"),
                f("app/cfg/a.json", b"{}"),
                f("bin-real", b"#!/bin/sh", mode=0o755),
            ],
            "gzip",
        ),
        Layer([whiteout("etc/motd"), opaque("app/cfg"), f("app/cfg/b.json", b"[]"), h("bin-link", "bin-real")], "zstd"),
        Layer([f("etc/passwd", b"root:x:0:0\napp:x:1000:1000", uid=0), l("app/start", "cfg/b.json")], "none"),
    ],
    config={"User": "app"},
)

FORMATS: dict[str, Callable[[Path, Image], str]] = {
    "oci-dir": lambda tmp, img: f"oci-dir:{write_dir(oci_layout([img]), tmp / 'layout')}",
    "oci-archive": lambda tmp, img: f"oci-archive:{write_tar(oci_layout([img]), tmp / 'oci.tar')}",
    "oci-archive ./": lambda tmp, img: f"oci-archive:{write_tar(oci_layout([img]), tmp / 'oci.tar', dot_prefix=True)}",
    "docker-archive": lambda tmp, img: f"docker-archive:{write_tar(docker_archive(img), tmp / 'docker.tar')}",
    "docker-archive oci": lambda tmp, img: (
        f"docker-archive:{write_tar(docker_archive(img, form='oci'), tmp / 'd.tar')}"
    ),
}


def analyze(spec: str, engine: str = "reference", **kw: object) -> tuple[ImageSource, ImageFiles]:
    with open_source(spec, config=CONFIG, **kw) as source:  # type: ignore[arg-type]
        results = []
        for desc in source.layers:
            with source.open_layer(desc) as blob:
                results.append(
                    None
                    if blob is None
                    else scan_layer(
                        blob.data,
                        CAPTURE,
                        engine=engine,
                        name=desc.digest,
                        expected_digest=None if blob.verified else desc.digest,
                    )
                )
    return source, squash(results)


def direct(image: Image) -> ImageFiles:
    """The same image squashed straight from its layer tars, no source in between."""
    return squash([scan_layer(layer.tar(), CAPTURE, engine="reference") for layer in image.layers])


def table(files: ImageFiles) -> dict:
    return {p: (e.record, e.layer) for p, e in files.files.items()}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_the_image(tmp_path: Path, fmt: str, engine: str) -> None:
    spec = FORMATS[fmt](tmp_path, APP)
    source, files = analyze(spec, engine)
    assert table(files) == table(direct(APP))
    assert set(files) == {
        "/etc",
        "/etc/passwd",
        "/app",
        "/app/cfg",
        "/app/cfg/b.json",
        "/app/start",
        "/bin-real",
        "/bin-link",
    }
    assert files.read("/app/start") == b"[]" and files.read("/bin-link") == b"#!/bin/sh"
    assert source.config["config"]["User"] == "app"
    assert source.config_digest == digest_of(canonical(APP.config_json()))
    assert [desc.digest for desc in source.layers][2] == source.config["rootfs"]["diff_ids"][2]  # uncompressed
    if fmt.startswith("docker"):
        assert source.repo_tags == ("example.com/app:latest",)
    # A bare path is recognised by its content.
    bare, bare_files = analyze(spec.split(":", 1)[1], engine)
    assert (bare.manifest_digest, table(bare_files)) == (source.manifest_digest, table(files))


@pytest.mark.corpus
def test_oci_archive_of_the_corpus_with_dot_prefixes_equals_the_layout(tmp_path: Path) -> None:
    root = IMAGES / "rpm-sqlite"
    files: Files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    src_dir, dir_files = analyze(f"oci-dir:{root}")
    src_tar, tar_files = analyze(str(write_tar(files, tmp_path / "rpm.tar", dot_prefix=True)))
    assert src_tar.manifest_digest == src_dir.manifest_digest == answers("rpm-sqlite")["manifest_digest"]
    assert table(tar_files) == table(dir_files)


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_archive_layers_are_zero_copy_views_of_one_mapping(tmp_path: Path, fmt: str) -> None:
    spec = FORMATS[fmt](tmp_path, APP)
    with open_source(spec, config=CONFIG) as source:
        for desc in source.layers:
            with source.open_layer(desc) as blob:
                assert blob is not None and not blob.verified
                assert isinstance(blob.data, memoryview) and isinstance(blob.data.obj, mmap.mmap)
                assert len(blob.data) == desc.size
    assert [p.name for p in tmp_path.iterdir()] == [Path(spec.split(":", 1)[1]).name]  # nothing extracted


def test_a_layer_used_twice(tmp_path: Path) -> None:
    base = Layer([f("a", b"1"), f("b", b"1")], "none")
    image = Image([base, Layer([whiteout("b"), f("a", b"2")]), base])
    for spec in (FORMATS["oci-dir"](tmp_path, image), FORMATS["docker-archive"](tmp_path, image)):
        source, files = analyze(spec)
        assert source.layers[0] == source.layers[2]
        assert {p: (e.layer, files.read(p)) for p, e in files.files.items()} == {"/a": (2, b"1"), "/b": (2, b"1")}


MULTI = [
    Image([Layer([f("arch", arch.encode())])], architecture=arch, variant=variant)
    for arch, variant in (("amd64", ""), ("arm64", "v8"), ("arm", "v7"))
]


@pytest.mark.parametrize("nested", [False, True])
def test_platform_choice_in_a_multi_platform_index(tmp_path: Path, nested: bool) -> None:
    spec = f"oci-dir:{write_dir(oci_layout(MULTI, nested=nested), tmp_path / 'multi')}"
    for plat, want in (
        ("linux/arm64", b"arm64"),
        ("linux/arm64/v8", b"arm64"),
        ("linux/arm/v7", b"arm"),
        (Platform("linux", "amd64"), b"amd64"),
    ):
        assert analyze(spec, platform=plat)[1].read("/arch") == want
    default = {"x86_64": b"amd64", "aarch64": b"arm64"}.get(os.uname().machine, b"amd64")
    assert analyze(spec)[1].read("/arch") == default  # the host's platform, then linux/amd64
    with pytest.raises(PlatformNotFound, match=r"linux/s390x.*it has: linux/amd64, linux/arm64/v8, linux/arm/v7"):
        open_source(spec, platform="linux/s390x", config=CONFIG)


def test_foreign_layer_not_present_yields_none(tmp_path: Path) -> None:
    foreign = Layer(
        [f("windows", b"base")],
        media_type="application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        present=False,
    )
    image = Image([foreign, Layer([f("app", b"x")])])
    source, files = analyze(FORMATS["oci-archive"](tmp_path, image))
    assert set(files) == {"/app"} and files.files["/app"].layer == 1


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.mark.parametrize("fmt", ["oci-dir", "oci-archive ./", "docker-archive", "docker-archive oci"])
def test_skopeo_reads_our_images_and_reports_the_same_digests(tmp_path: Path, fmt: str) -> None:
    spec = FORMATS[fmt](tmp_path, APP)
    transport = spec.replace("oci-dir:", "oci:")
    if fmt == "docker-archive oci":
        # Docker's OCI form carries the image's real manifest; skopeo's docker-archive
        # transport ignores it and makes one up from manifest.json, as for the classic form.
        transport = transport.replace("docker-archive:", "oci-archive:")
    source, _ = analyze(spec)
    seen = json.loads(skopeo("inspect", transport))
    assert seen["Digest"] == source.manifest_digest
    assert seen["Layers"] == [desc.digest for desc in source.layers]


def test_a_docker_archive_written_by_skopeo(tmp_path: Path) -> None:
    image = Image([APP.layers[0], APP.layers[2], APP.layers[0]], config={"User": "app"})  # skopeo refuses zstd here
    layout = write_dir(oci_layout([image]), tmp_path / "layout")
    archive = tmp_path / "saved.tar"
    skopeo("copy", "-q", f"oci:{layout}", f"docker-archive:{archive}:example.com/app:1")
    source, files = analyze(str(archive))
    assert table(files) == table(direct(image))
    assert source.repo_tags == ("example.com/app:1",)
    assert source.manifest_digest == json.loads(skopeo("inspect", f"docker-archive:{archive}"))["Digest"]


# Bad input: each a one-line typed error, and nothing written anywhere.


def _layout(tmp_path: Path, change: Callable[[Files, dict], None], image: Image = APP) -> str:
    files = oci_layout([image])
    manifest_desc = json.loads(files["index.json"])["manifests"][0]
    change(files, json.loads(files[blob_name(manifest_desc["digest"])]))
    return f"oci-dir:{write_dir(files, tmp_path / 'bad')}"


def _manifest_name(files: Files) -> str:
    return blob_name(json.loads(files["index.json"])["manifests"][0]["digest"])


def _replace_manifest(files: Files, manifest: dict) -> None:
    """Point index.json at a rewritten manifest (so only what the test broke is broken)."""
    desc = put_json(files, manifest, OCI_MANIFEST)
    files["index.json"] = canonical({"schemaVersion": 2, "manifests": [desc]})


BAD_LAYOUTS: dict[str, tuple[Callable[[Files, dict], None], type[Exception], str]] = {
    "missing manifest": (lambda fs, m: fs.pop(_manifest_name(fs)), SourceError, "manifest .* is missing"),
    "missing config": (lambda fs, m: fs.pop(blob_name(m["config"]["digest"])), SourceError, "config .* is missing"),
    "manifest digest": (
        lambda fs, m: fs.update({_manifest_name(fs): canonical({**m, "x": 1})}),
        DigestMismatch,
        "manifest: digest mismatch",
    ),
    "config digest": (
        lambda fs, m: fs.update({blob_name(m["config"]["digest"]): b'{"os": "linux"}'}),
        DigestMismatch,
        "config: digest mismatch",
    ),
    "manifest json": (
        lambda fs, m: fs.update(
            {"index.json": canonical({"schemaVersion": 2, "manifests": [put_blob(fs, b"{nope", OCI_MANIFEST)]})}
        ),
        SourceError,
        "manifest .* is not valid JSON",
    ),
    "config json": (
        lambda fs, m: _replace_manifest(fs, {**m, "config": put_blob(fs, b"[1,", OCI_CONFIG)}),
        SourceError,
        "config .* is not valid JSON",
    ),
    "index json": (
        lambda fs, m: fs.update({"index.json": b"\x00garbage"}),
        SourceError,
        "index.json is not valid JSON",
    ),
    "unknown manifest type": (
        lambda fs, m: _replace_manifest(fs, {**m, "mediaType": "application/x-helm"}),
        SourceError,
        "unknown media type 'application/x-helm'",
    ),
    "unknown layer type": (
        lambda fs, m: _replace_manifest(
            fs,
            {**m, "layers": [{**m["layers"][0], "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip"}]},
        ),
        SourceError,
        "layer 0 has unknown media type",
    ),
    "schema 1": (
        lambda fs, m: _replace_manifest(fs, {"schemaVersion": 1, "name": "x", "fsLayers": []}),
        SourceError,
        "schema 1",
    ),
    "digest path": (
        lambda fs, m: _replace_manifest(fs, {**m, "config": {**m["config"], "digest": "sha256:../../etc"}}),
        SourceError,
        "not a valid digest",
    ),
    "empty index": (
        lambda fs, m: fs.update({"index.json": canonical({"schemaVersion": 2, "manifests": []})}),
        SourceError,
        "lists no image",
    ),
}


@pytest.mark.parametrize("case", BAD_LAYOUTS)
def test_bad_layout(tmp_path: Path, case: str) -> None:
    change, error, message = BAD_LAYOUTS[case]
    spec = _layout(tmp_path, change)
    with pytest.raises(error, match=message) as e:
        open_source(spec, config=CONFIG)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_layer_digest_mismatch_size_mismatch_and_missing_layer(tmp_path: Path, engine: str) -> None:
    files = oci_layout([APP])
    layers = [blob_name(x["digest"]) for x in json.loads(files[_manifest_name(files)])["layers"]]
    plain = bytes(files[layers[2]])  # type: ignore[arg-type]  # the uncompressed layer: still a valid tar
    files[layers[2]] = plain.replace(b"app:x:1000", b"app:x:1001")
    with pytest.raises(DigestMismatch, match="layer"):
        analyze(f"oci-dir:{write_dir(files, tmp_path / 'x')}", engine)
    files[layers[2]] = plain + bytes(512)
    with pytest.raises(SourceError, match="the manifest says"):
        analyze(f"oci-dir:{write_dir(files, tmp_path / 'y')}", engine)
    del files[layers[2]]
    with pytest.raises(SourceError, match="is missing"):
        analyze(f"oci-dir:{write_dir(files, tmp_path / 'z')}", engine)


def test_names_that_point_outside_the_image_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # docker manifest.json naming a layer or config outside the archive
    for key, value in (("Layers", ["../../etc/passwd"]), ("Config", "/etc/passwd")):
        files = docker_archive(APP)
        entry = json.loads(files["manifest.json"])[0]
        value = [*value, *entry["Layers"][1:]] if key == "Layers" else value
        files["manifest.json"] = canonical([{**entry, key: value}])
        with pytest.raises(SourceError, match="outside the image"):
            open_source(f"docker-archive:{write_tar(files, tmp_path / 'evil.tar')}", config=CONFIG)
    # a layer.tar that is a symlink out of the archive
    files = docker_archive(APP)
    first = json.loads(files["manifest.json"])[0]["Layers"][0]
    files[first] = Link("../../../../etc/passwd")
    with pytest.raises(SourceError, match="outside the image"):
        open_source(f"docker-archive:{write_tar(files, tmp_path / 'evil2.tar')}", config=CONFIG)
    # "../" members are never read, and nothing is written anywhere
    files = oci_layout([APP])
    files["../outside/pwned"] = b"x"
    source, squashed = analyze(f"oci-archive:{write_tar(files, tmp_path / 'evil3.tar')}")
    assert table(squashed) == table(direct(APP))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "spec, message",
    [
        ("s3:bucket/key", "unknown source scheme 's3'"),
        ("/no/such/image.tar", "not a file or directory"),
        ("oci-archive:/no/such.tar", "no such file"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(spec, config=CONFIG)


def test_inputs_that_are_not_images(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").write_text("hello")
    docker = write_tar(docker_archive(APP), tmp_path / "docker.tar")
    gz = tmp_path / "oci.tar.gz"
    gz.write_bytes(gzip.compress(write_tar(oci_layout([APP]), tmp_path / "oci.tar").read_bytes()))
    for spec in (f"oci-dir:{tmp_path / 'empty'}", str(tmp_path / "text"), f"oci-archive:{docker}", f"oci-archive:{gz}"):
        with pytest.raises(SourceError) as e:
            open_source(spec, config=CONFIG)
        assert "\n" not in str(e.value), spec


def test_cli_exit_code_for_an_unreadable_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["analyze", "--engine", "reference", "s3:bucket/key"]) == SourceError.exit_code
    err = capsys.readouterr().err.strip()
    assert err.startswith("layerscan: error: unknown source scheme") and "\n" not in err
    assert SourceError.exit_code not in {LayerscanError.exit_code, DigestMismatch.exit_code}


def test_constructing_a_layout_source_does_no_io(tmp_path: Path) -> None:
    for files in (DirFiles(tmp_path / "later"), TarFiles(tmp_path / "later.tar")):
        source = LayoutSource(files, "x", "oci-archive")
        source.close()  # safe before open()
        with pytest.raises(SourceError, match="no such"):
            source.open()
    write_dir(oci_layout([APP]), tmp_path / "later")  # what exists when open() runs is what counts
    source = LayoutSource(DirFiles(tmp_path / "later"), "x", "oci-dir")
    assert [e.names for e in source.open().entries] == [("latest",)]
    source.close()
