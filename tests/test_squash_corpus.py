"""Squash of every corpus image equals its ground truth, path for path and field for field."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import IMAGE_NAMES, IMAGES, answers, layer_blob
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.squash import squash

pytestmark = pytest.mark.corpus  # every test here reads the shared corpus


def _as_truth(path: str, layer: int, r) -> dict:
    """Our final entry in the ground truth's own shape."""
    d = {
        "path": path,
        "layer": layer,
        "mode": format(r.mode, "04o"),
        "uid": r.uid,
        "gid": r.gid,
        "mtime": r.mtime,
        "type": r.type,
    }
    if r.type in ("file", "hardlink"):
        d.update(size=r.size, md5=r.md5, sha1=r.sha1, sha256=r.sha256)
    if r.link is not None:
        d["linkname"] = r.link
    return d


@pytest.mark.parametrize("engine", ["reference", "native"])
@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_squash_equals_ground_truth(name: str, engine: str) -> None:
    layers = answers(name)["layers"]
    results = [
        scan_layer(
            layer_blob(name, L["digest"]).read_bytes(), ScanOptions(), engine=engine, expected_digest=L["digest"]
        )
        for L in layers
    ]
    files = squash(results)
    truth = {f["path"]: f for f in json.loads(gzip.open(IMAGES / f"{name}.files.json.gz").read())["files"]}
    assert set(files) == set(truth)
    mismatched = {
        p: (_as_truth(p, e.layer, e.record), truth[p])
        for p, e in files.files.items()
        if _as_truth(p, e.layer, e.record) != truth[p]
    }
    assert not mismatched, f"{len(mismatched)} entries differ, e.g. {next(iter(mismatched.items()))}"
