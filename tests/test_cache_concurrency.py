"""Several analyzer processes sharing one tmp_dir and the layer cache, against a real registry.

Downloads are counted at the fault proxy in front of the registry: each shared layer
must cross the network exactly once, and not at all once the cache is warm.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import answers

pytestmark = pytest.mark.corpus  # every test here reads the shared corpus

ENGINE = "native"
WORKER = Path(__file__).with_name("registry_worker.py")
# Two images that share their base layer, two workers each.
IMAGES = ("debian-minbase", "debian-apps", "debian-minbase", "debian-apps")


def run_workers(proxy_host: str, tmp_dir: Path, cache: str, start_file: Path) -> list[dict[str, str]]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                f"{proxy_host}/corpus/{name}:latest",
                str(tmp_dir),
                ENGINE,
                cache,
                "--start-file",
                str(start_file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in IMAGES
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        start_file.touch()  # all at once
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_out, err) in zip(procs, outs, strict=False):
        assert p.returncode == 0, err[-2000:]
    return [json.loads(out) for out, _ in outs]


def expected(name: str) -> dict[str, str]:
    return {la["digest"]: la["diff_id"] for la in answers(name)["layers"]}


def test_four_workers_download_each_layer_once_then_never(fault_proxy, tmp_path):
    layers = sorted({d for name in IMAGES for d in expected(name)})
    tmp_dir = tmp_path / "tmp"
    results = run_workers(fault_proxy.host, tmp_dir, "cache", tmp_path / "go-cold")
    assert results == [expected(name) for name in IMAGES]
    assert fault_proxy.layer_gets(layers) == {d: 1 for d in layers}

    fault_proxy.blob_gets.clear()
    results = run_workers(fault_proxy.host, tmp_dir, "cache", tmp_path / "go-warm")
    assert results == [expected(name) for name in IMAGES]
    assert fault_proxy.layer_gets(layers) == {d: 0 for d in layers}


def test_cache_off_workers_write_nothing_under_tmp_dir(fault_proxy, tmp_path):
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    results = run_workers(fault_proxy.host, tmp_dir, "nocache", tmp_path / "go")
    assert results == [expected(name) for name in IMAGES]
    assert list(tmp_dir.rglob("*")) == []
    shared = answers("debian-minbase")["layers"][0]["digest"]
    assert fault_proxy.blob_gets[shared] == 4  # streaming: every worker downloads for itself
