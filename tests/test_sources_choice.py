"""Choosing an image inside a source, with skopeo's forms: docker-archive:FILE:TAG, oci-dir:PATH:REF,
oci-archive:FILE:REF, and :@N; the spec parsing rule (the path ends at the first ':'); what is listed
when the choice is ambiguous. Multi-image archives and layouts come from tests/imagebuilder.py, and
skopeo, reading the same files, is the oracle for which manifest a choice names."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from imagebuilder import (
    Image,
    Layer,
    canonical,
    digest_of,
    docker_save,
    f,
    oci_layout,
    write_dir,
    write_tar,
)
from layerscan.cli import main as cli_main
from layerscan.config import Config
from layerscan.errors import SourceError
from layerscan.refs import RefError
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.sources import open_source
from layerscan.sources.resolve import PlatformNotFound, ResolvedImage
from layerscan.sources.spec import Choice, SourceSpec, parse_spec
from layerscan.squash import squash

CONFIG = Config()
CAPTURE = ScanOptions(capture_globs=("/who",))
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "amd64")


def image(who: str, arch: str = "amd64", variant: str = "") -> Image:
    return Image([Layer([f("who", who.encode())])], architecture=arch, variant=variant, config={"Labels": {"who": who}})


APP, TOOL, BARE = image("app"), image("tool", "arm64", "v8"), image("bare")
TAGS = {"app": ("app:1.0", "app:latest"), "tool": ("registry.example.com:5000/tool:2",), "bare": ()}
DOCKER_IMAGES = [(APP, TAGS["app"]), (TOOL, TAGS["tool"]), (BARE, TAGS["bare"])]
MULTI_AMD64, MULTI_ARM64 = image("multi-amd64"), image("multi-arm64", "arm64", "v8")
OCI_IMAGES = [APP, MULTI_AMD64, MULTI_ARM64, BARE]
OCI_REFS = ["app:1.0", "multi", "multi", None]


def who(source: ResolvedImage) -> str:
    """Which test image a source resolved to: its config's label, which its layer must agree with."""
    results = []
    for desc in source.layers:
        with source.open_layer(desc) as blob:
            assert blob is not None
            expected = None if blob.verified else desc.digest
            results.append(scan_layer(blob.data, CAPTURE, engine="reference", expected_digest=expected))
    label = str(source.config["config"]["Labels"]["who"])
    assert squash(results).read("/who") == label.encode()
    return label


def chosen(spec: str, platform: str | None = None) -> str:
    with open_source(spec, platform=platform, config=CONFIG) as source:
        return who(source)


def skopeo_inspect(transport: str) -> dict:
    proc = subprocess.run(["skopeo", "inspect", transport], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("docker-archive:x.tar", SourceSpec("docker-archive", "x.tar")),
        ("docker-archive:x.tar:app", SourceSpec("docker-archive", "x.tar", Choice("app"))),
        ("docker-archive:x.tar:app:1.0", SourceSpec("docker-archive", "x.tar", Choice("app:1.0"))),
        (
            "docker-archive:/i/x.tar:localhost:5000/ns/app:1.0",
            SourceSpec("docker-archive", "/i/x.tar", Choice("localhost:5000/ns/app:1.0")),
        ),
        ("docker-archive:x.tar:@2", SourceSpec("docker-archive", "x.tar", Choice(index=2))),
        ("oci-dir:layout:app:1.0", SourceSpec("oci-dir", "layout", Choice("app:1.0"))),
        ("oci-dir:/data/img:v1/layout", SourceSpec("oci-dir", "/data/img", Choice("v1/layout"))),
        ("oci-archive:o.tar:@0", SourceSpec("oci-archive", "o.tar", Choice(index=0))),
        ("oci-archive:./o.tar", SourceSpec("oci-archive", "./o.tar")),
        ("registry:localhost:5000/app:1", SourceSpec("registry", "localhost:5000/app:1")),
        ("docker://[::1]:5000/app:1@sha256:" + "a" * 64, SourceSpec("registry", "[::1]:5000/app:1@sha256:" + "a" * 64)),
        ("/images/a:b", None),
        ("image.tar", None),
        ("s3:bucket/key", None),
    ],
)
def test_parse_spec(spec: str, expected: SourceSpec | None) -> None:
    assert parse_spec(spec) == expected
    if expected is not None and expected.kind != "registry":
        assert expected.name == spec  # shown as given


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("oci-dir:", SourceError, "names no path"),
        ("docker-archive:x.tar:", SourceError, r"nothing after the ':'.*tag \(NAME\[:TAG\]\) or @N"),
        ("oci-archive:x.tar:", SourceError, "nothing after the ':'.*ref.name or @N"),
        ("docker-archive:x.tar:@", SourceError, "is not @N"),
        ("docker-archive:x.tar:@-1", SourceError, "is not @N"),
        ("oci-dir:d:@1x", SourceError, "is not @N"),
        ("docker-archive:x.tar:app@sha256:" + "a" * 64, SourceError, "by tag, not by digest"),
        ("docker-archive:x.tar:App:1", RefError, "must be lowercase"),
    ],
)
def test_parse_spec_errors(spec: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)


def test_a_path_with_a_colon_is_given_bare(tmp_path: Path) -> None:
    layout = write_dir(oci_layout([APP]), tmp_path / "img:v1")
    assert chosen(str(layout)) == "app"
    with pytest.raises(SourceError, match=r"no file or directory '.*/img': the path ends at the first ':'.*bare"):
        open_source(f"oci-dir:{layout}", config=CONFIG)
    archive = write_tar(oci_layout([APP]), tmp_path / "x.tar")
    with pytest.raises(SourceError, match=r"to choose an image inside .*x.tar, write docker-archive or oci-archive:"):
        open_source(f"{archive}:app:1.0", config=CONFIG)


# ---------------------------------------------------------------------------- docker-archive


@pytest.fixture(params=["classic", "oci"])
def docker_multi(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    return request.param, write_tar(docker_save(DOCKER_IMAGES, form=request.param), tmp_path / "multi.tar")


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("app:1.0", "app"),
        ("docker.io/library/app:1.0", "app"),  # Docker's normalisation, on both sides
        ("index.docker.io/library/app:latest", "app"),
        ("app", "app"),  # app:latest
        ("registry.example.com:5000/tool:2", "tool"),  # a registry port inside the tag
    ],
)
def test_docker_archive_by_tag(docker_multi: tuple[str, Path], tag: str, expected: str) -> None:
    _, archive = docker_multi
    spec = f"docker-archive:{archive}:{tag}"
    with open_source(spec, config=CONFIG) as source:
        assert who(source) == expected and source.name == spec
        assert source.repo_tags == TAGS[expected]


def test_docker_archive_by_position_and_ambiguity(docker_multi: tuple[str, Path]) -> None:
    form, archive = docker_multi
    # @N counts manifest.json's items in the classic form, index.json's entries (one per tag) in Docker's OCI form.
    assert chosen(f"docker-archive:{archive}:@2") == ("bare" if form == "classic" else "tool")
    listing = "manifest.json" if form == "classic" else "index.json"
    with pytest.raises(SourceError) as e:
        open_source(f"docker-archive:{archive}", config=CONFIG)
    message = str(e.value)
    assert f"{listing} holds 3 images; choose one with docker-archive:{archive}:TAG or docker-archive:{archive}:@N" in (
        message
    )
    if form == "classic":
        assert message.endswith(
            "it has @0 app:1.0, app:latest (linux/amd64); @1 registry.example.com:5000/tool:2 (linux/arm64/v8); "
            "@2 <no tag> (linux/amd64)"
        )
    else:  # index.json gives no platforms: they come from the configs
        assert message.endswith(
            "it has @0 docker.io/library/app:1.0 (linux/amd64); @1 docker.io/library/app:latest (linux/amd64); "
            "@2 registry.example.com:5000/tool:2 (linux/arm64/v8); @3 <no tag> (linux/amd64)"
        )
    with pytest.raises(SourceError, match=r"no image with tag 'app:2.0' in .*; it has @0 "):
        open_source(f"docker-archive:{archive}:app:2.0", config=CONFIG)
    with pytest.raises(SourceError, match="has no image @9; it has @0"):
        open_source(f"docker-archive:{archive}:@9", config=CONFIG)
    assert "\n" not in message


@pytest.mark.parametrize("choice", ["app:1.0", "registry.example.com:5000/tool:2", "@2"])
def test_skopeo_chooses_the_same_image_in_a_docker_archive(tmp_path: Path, choice: str) -> None:
    archive = write_tar(docker_save(DOCKER_IMAGES), tmp_path / "multi.tar")
    with open_source(f"docker-archive:{archive}:{choice}", config=CONFIG) as source:
        seen = skopeo_inspect(f"docker-archive:{archive}:{choice}")
        assert seen["Digest"] == source.manifest_digest
        assert seen["Layers"] == [d.digest for d in source.layers]
        assert seen["Labels"] == source.config["config"]["Labels"]


def test_one_image_listed_once_per_tag_needs_no_choice(tmp_path: Path) -> None:
    archive = write_tar(docker_save([(APP, ["app:1.0", "app:latest"])], form="oci"), tmp_path / "one.tar")
    with open_source(f"docker-archive:{archive}", config=CONFIG) as source:
        assert who(source) == "app" and source.repo_tags == ("app:1.0", "app:latest")


def test_docker_archive_platform_is_checked(tmp_path: Path) -> None:
    archive = write_tar(docker_save([(TOOL, ["tool:2"]), (BARE, [])]), tmp_path / "d.tar")
    assert chosen(f"docker-archive:{archive}:tool:2", platform="linux/arm64") == "tool"
    with pytest.raises(PlatformNotFound, match=r"no image for platform linux/amd64 \(it has: linux/arm64/v8\)"):
        open_source(f"docker-archive:{archive}:tool:2", platform="linux/amd64", config=CONFIG)
    # Untagged images of one platform each: the platform tells them apart; of one platform, nothing does.
    untagged = write_tar(docker_save([(TOOL, []), (BARE, [])]), tmp_path / "u.tar")
    assert chosen(f"docker-archive:{untagged}", platform="linux/arm64/v8") == "tool"
    twins = write_tar(docker_save([(APP, []), (BARE, [])]), tmp_path / "t.tar")
    with pytest.raises(SourceError, match=r"2 images for platform linux/amd64 in manifest.json; .*:@N; it has @0"):
        open_source(f"docker-archive:{twins}", platform="linux/amd64", config=CONFIG)


# ---------------------------------------------------------------------------- OCI layouts


@pytest.fixture(params=["oci-dir", "oci-archive"])
def oci_multi(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    files = oci_layout(OCI_IMAGES, refs=OCI_REFS)
    if request.param == "oci-dir":
        return f"oci-dir:{write_dir(files, tmp_path / 'layout')}"
    return f"oci-archive:{write_tar(files, tmp_path / 'layout.tar')}"


def test_oci_layout_by_ref_name(oci_multi: str) -> None:
    assert chosen(f"{oci_multi}:app:1.0") == "app"
    assert chosen(f"{oci_multi}:@3") == "bare"
    # Entries that share a ref.name are the platforms of one image.
    assert chosen(f"{oci_multi}:multi", platform="linux/arm64") == "multi-arm64"
    assert chosen(f"{oci_multi}:multi", platform="linux/amd64") == "multi-amd64"
    assert chosen(f"{oci_multi}:multi") == f"multi-{HOST_ARCH}"
    with pytest.raises(PlatformNotFound, match=r"linux/s390x \(it has: linux/amd64, linux/arm64/v8\)"):
        open_source(f"{oci_multi}:multi", platform="linux/s390x", config=CONFIG)


def test_oci_layout_lists_what_it_holds(oci_multi: str) -> None:
    listing = (
        "it has @0 app:1.0 (linux/amd64); @1 multi (linux/amd64); @2 multi (linux/arm64/v8); "
        "@3 <no ref.name> (linux/amd64)"
    )
    with pytest.raises(SourceError) as e:
        open_source(oci_multi, config=CONFIG)
    assert str(e.value) == (
        f"{oci_multi}: index.json holds 4 images; choose one with {oci_multi}:REF.NAME or {oci_multi}:@N; {listing}"
    )
    # ref.names are matched exactly, as skopeo does: no Docker normalisation here.
    for name in ("nope", "app", "docker.io/library/app:1.0"):
        with pytest.raises(SourceError) as e:
            open_source(f"{oci_multi}:{name}", config=CONFIG)
        assert str(e.value) == f"{oci_multi}:{name}: no image with ref.name {name!r} in index.json; {listing}"


def test_skopeo_writes_a_multi_image_layout_and_chooses_as_we_do(tmp_path: Path) -> None:
    multi = tmp_path / "multi"
    for i, (img, ref) in enumerate(((APP, "app:1.0"), (TOOL, "registry.example.com:5000/tool:2"))):
        single = write_dir(oci_layout([img]), tmp_path / f"single{i}")
        subprocess.run(["skopeo", "copy", "-q", f"oci:{single}:latest", f"oci:{multi}:{ref}"], check=True, timeout=60)
    for ref, expected in (("app:1.0", "app"), ("registry.example.com:5000/tool:2", "tool")):
        with open_source(f"oci-dir:{multi}:{ref}", config=CONFIG) as source:
            assert who(source) == expected
            assert skopeo_inspect(f"oci:{multi}:{ref}")["Digest"] == source.manifest_digest
    with pytest.raises(SourceError, match=r"holds 2 images; .*it has @0 app:1.0 \(.*\); @1 registry.example.com"):
        open_source(f"oci-dir:{multi}", config=CONFIG)


def test_the_digests_name_the_bytes_kept(tmp_path: Path) -> None:
    """raw_manifest and raw_config are what manifest_digest and config_digest name, for every local form."""
    specs = {
        f"docker-archive:{write_tar(docker_save(DOCKER_IMAGES), tmp_path / 'c.tar')}:app:1.0": None,
        f"docker-archive:{write_tar(docker_save(DOCKER_IMAGES, form='oci'), tmp_path / 'o.tar')}:registry.example.com:5000/tool:2": None,
        f"oci-dir:{write_dir(oci_layout([MULTI_AMD64, MULTI_ARM64], nested=True), tmp_path / 'n')}": "linux/arm64",
    }
    for spec, platform in specs.items():
        with open_source(spec, platform=platform, config=CONFIG) as source:
            assert digest_of(source.raw_manifest) == source.manifest_digest
            assert digest_of(source.raw_config) == source.config_digest
            assert json.loads(source.raw_manifest) == source.manifest
    nested = open_source(list(specs)[2], platform="linux/arm64", config=CONFIG)
    nested.close()
    index = json.loads(oci_layout([MULTI_AMD64, MULTI_ARM64], nested=True)["index.json"])
    assert nested.parent_digest == index["manifests"][0]["digest"] != nested.manifest_digest
    assert canonical(nested.config) == canonical(MULTI_ARM64.config_json())


def test_analyze_command_with_a_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = write_tar(docker_save(DOCKER_IMAGES), tmp_path / "multi.tar")
    out = tmp_path / "report.json"
    spec = f"docker-archive:{archive}:registry.example.com:5000/tool:2"
    assert cli_main(["analyze", "--engine", "reference", spec, "-o", str(out)]) == 0
    report = json.loads(out.read_text())["image"]
    assert report["repo_tags"] == list(TAGS["tool"]) and report["source"] == spec
    assert report["manifest_digest"] == skopeo_inspect(spec)["Digest"]
    capsys.readouterr()
    assert cli_main(["analyze", "--engine", "reference", f"docker-archive:{archive}"]) == SourceError.exit_code
    err = capsys.readouterr().err.strip()
    assert err.startswith("layerscan: error: ") and "holds 3 images" in err and "\n" not in err
