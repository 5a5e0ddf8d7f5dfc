"""The native scanner against its oracle on the real corpus: every layer of every image,
given whole and fed in odd chunk sizes, must give exactly what reference.py gives; and
every file's digests must match the corpus' own files.json."""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import HAVE_CORPUS, IMAGE_NAMES, IMAGES, corpus_params, layer_blob
from layerscan.catalog import capture_markers
from layerscan.scan import native, reference, scan_layer
from layerscan.scan.model import LayerResult, ScanOptions
from layerscan.scan.rules import default_rules
from scancheck import assert_same

OPTIONS = ScanOptions(
    rules=default_rules(),
    capture_globs=(
        "/var/lib/dpkg/status",
        "/etc/os-release",
        "**/package.json",
        "**/*.gemspec",
        "/usr/lib/sysimage/rpm/*",
    ),
    compute_diff_id=True,
    markers=capture_markers(),
)
SMALL = 3 << 20  # layers fed byte by byte must stay this small, or the test takes minutes


def manifest(image: str) -> dict:
    index = json.loads((IMAGES / image / "index.json").read_text())
    return json.loads(layer_blob(image, index["manifests"][0]["digest"]).read_text())


def layers() -> Iterator[tuple[str, str]]:
    """(image, layer digest) for every distinct layer of the corpus."""
    seen: set[str] = set()
    for image in IMAGE_NAMES:
        for layer in manifest(image)["layers"]:
            if layer["digest"] not in seen:
                seen.add(layer["digest"])
                yield image, layer["digest"]


LAYERS = list(layers()) if HAVE_CORPUS else []


@functools.cache
def expected(image: str, digest: str) -> LayerResult:
    blob = layer_blob(image, digest).read_bytes()
    return reference.scan_buffer(blob, OPTIONS, name=digest, expected_digest=digest)


def chunks(data: bytes, size: int) -> Iterator[memoryview]:
    view = memoryview(data)
    return (view[i : i + size] for i in range(0, len(view), size))


@pytest.mark.corpus
@pytest.mark.parametrize(
    "image,digest", corpus_params(lambda: [pytest.param(i, d, id=d[7:19]) for i, d in LAYERS], width=2)
)
def test_native_equals_reference_on_corpus_layers(image: str, digest: str) -> None:
    blob = layer_blob(image, digest).read_bytes()
    assert_same(scan_layer(blob, OPTIONS, name=digest, expected_digest=digest), expected(image, digest))


@pytest.mark.corpus
@pytest.mark.parametrize("size", [1, 511, 513, 4097])
@pytest.mark.parametrize(
    "image,digest", corpus_params(lambda: [pytest.param(i, d, id=d[7:19]) for i, d in LAYERS], width=2)
)
def test_native_fed_in_odd_chunks_equals_reference(image: str, digest: str, size: int) -> None:
    blob = layer_blob(image, digest).read_bytes()
    if size < 512 and len(blob) > SMALL:
        size = 65537  # big layers still go through the chunked path, in fewer calls
    got = scan_layer(chunks(blob, size), OPTIONS, name=digest, expected_digest=digest)
    assert_same(got, expected(image, digest))


@pytest.mark.corpus
def test_corpus_has_secrets_and_captures() -> None:
    """The comparisons above are not vacuous: the corpus exercises secrets and capture."""
    results = [expected(image, digest) for image, digest in LAYERS]
    assert sum(len(r.secrets) for r in results) > 0
    assert sum(len(r.captured) for r in results) > 0
    assert sum(len(r.whiteouts) for r in results) > 0


@pytest.mark.corpus
@pytest.mark.parametrize("image", IMAGE_NAMES)
def test_file_digests_match_corpus(image: str) -> None:
    truth = json.loads(gzip.decompress((IMAGES / f"{image}.files.json.gz").read_bytes()))
    checked = 0
    for layer in truth["layers"]:
        data = layer_blob(image, layer["digest"]).read_bytes()
        result = scan_layer(data, ScanOptions(compute_diff_id=True), name=layer["digest"])
        assert result.diff_id == layer["diff_id"]
        last = {r.path: r for r in result.entries}  # the final layer wins, within a layer too
        for f in truth["files"]:
            if f["layer"] != layer["index"] or f["type"] != "file":
                continue
            rec = last[f["path"]]
            assert (rec.size, rec.md5, rec.sha1, rec.sha256) == (f["size"], f["md5"], f["sha1"], f["sha256"]), f["path"]
            checked += 1
    assert checked > 0


@pytest.mark.corpus
def test_scan_buffer_accepts_mmap_and_memoryview(tmp_path: Path) -> None:
    import mmap

    image, digest = LAYERS[-1]
    path = layer_blob(image, digest)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert_same(scan_layer(m, OPTIONS, name=digest, expected_digest=digest), expected(image, digest))
    assert_same(
        scan_layer(memoryview(path.read_bytes()), OPTIONS, name=digest, expected_digest=digest), expected(image, digest)
    )


@pytest.mark.corpus
def test_layers_scan_on_threads_with_their_own_scratch() -> None:
    """The GIL is released per layer and each scanner has its own Hyperscan scratch."""
    from concurrent.futures import ThreadPoolExecutor

    small = [(image, digest) for image, digest in LAYERS if layer_blob(image, digest).stat().st_size < SMALL]
    blobs = [layer_blob(image, digest).read_bytes() for image, digest in small] * 2
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda b: scan_layer(b, OPTIONS), blobs))
    for (image, digest), result in zip(small * 2, results, strict=False):
        want = expected(image, digest)
        assert result.entries == want.entries and result.secrets == want.secrets and result.captured == want.captured


def test_scanner_is_single_use() -> None:
    scanner = native.Scanner(OPTIONS)
    scanner.feed(bytes(1024))  # an empty archive: two zero blocks
    assert len(scanner.finish().entries) == 0
    with pytest.raises(ValueError):
        scanner.finish()
    with pytest.raises(ValueError):
        scanner.feed(b"more")
