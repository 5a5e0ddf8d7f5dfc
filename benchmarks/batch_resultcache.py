"""Images per minute of `layerscan batch` with the result cache on and off, over images that share
their base layers: each is a corpus image plus one small layer of its own, as a registry of
applications built on a few bases holds them.

    .venv/bin/python benchmarks/batch_resultcache.py [--images 12] [--workers 2] [--base debian-apps]

Starts Debian's docker-registry on loopback (tests/registry_harness.py), pushes the images, and
runs `batch` (benchmarks/service.py's) twice, each time with a cold layer cache and an empty
result cache: `result_cache_enable: false`, then true. With it off every image scans every
layer (the layer cache still downloads each layer once); with it on a shared layer is scanned
once. Prints images/minute and the ratio (on / off). A benchmark, not a test: no bar.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from imagebuilder import Layer, d, digest_of, f  # noqa: E402
from registry_harness import OCI_MANIFEST, RegistryServer, layout_manifest, push_blob, push_manifest  # noqa: E402
from service import IMAGES, batch, per_minute  # noqa: E402


def push_derived(base: str, layout: Path, repo: str, n: int) -> str:
    """The image of `layout` plus one layer of its own (an npm package) as repo:latest; its reference."""
    _, manifest = layout_manifest(layout)
    blobs = layout / "blobs" / "sha256"
    config = json.loads((blobs / manifest["config"]["digest"].split(":", 1)[1]).read_bytes())
    package = json.dumps({"name": f"app-{n}", "version": f"1.0.{n}", "license": "MIT"}).encode()
    top = Layer([d("app"), f("app/package.json", package), f(f"app/n{n}.txt", b"%d\n" % n)])
    tar, blob = top.tar(), top.blob()
    config["rootfs"]["diff_ids"].append(digest_of(tar))
    config.setdefault("history", []).append({"created_by": f"COPY app {n}"})
    config_raw = json.dumps(config).encode()
    layer_desc = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": digest_of(blob),
        "size": len(blob),
    }
    config_desc = dict(manifest["config"], digest=digest_of(config_raw), size=len(config_raw))
    derived = dict(manifest, config=config_desc, layers=[*manifest["layers"], layer_desc])
    with requests.Session() as s:
        for desc in manifest["layers"]:
            push_blob(s, base, repo, desc["digest"], (blobs / desc["digest"].split(":", 1)[1]).read_bytes())
        push_blob(s, base, repo, layer_desc["digest"], blob)
        push_blob(s, base, repo, config_desc["digest"], config_raw)
        push_manifest(s, base, repo, "latest", json.dumps(derived).encode(), OCI_MANIFEST)
    return f"{base.split('://', 1)[1]}/{repo}:latest"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=12, help="images, all on the same base (default 12)")
    ap.add_argument("--workers", type=int, default=2, help="batch --workers (default 2)")
    ap.add_argument("--base", default="debian-apps", help="the corpus image they are built on (default debian-apps)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerscan-bench-batchrc-") as tmp:
        work = Path(tmp)
        server = RegistryServer(work / "registry", work / "storage")
        try:
            refs = [push_derived(server.url, IMAGES / args.base, f"apps/app{n}", n) for n in range(args.images)]
            rows = []
            for enabled in (False, True):
                scratch = work / "scratch"
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir()
                out = work / f"out-{enabled}"
                out.mkdir()
                config = work / "config.yaml"
                doc = {"tmp_dir": str(scratch), "insecure_registries": [server.host], "result_cache_enable": enabled}
                config.write_text(yaml.safe_dump(doc))
                rows.append((f"result cache {'on' if enabled else 'off'}", batch(refs, config, out, args.workers)))
        finally:
            server.stop()
    print(f"{args.images} images on {args.base} + one layer each, batch --workers {args.workers}, cold caches")
    print(f"{'':<18}{'seconds':>9}{'images/min':>12}")
    for label, seconds in rows:
        print(f"{label:<18}{seconds:>9.1f}{per_minute(args.images, seconds):>12.1f}")
    print(f"result cache on / off: {rows[0][1] / rows[1][1]:.2f}x the images per minute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
