"""A worker process for the registry cache tests: analyzes one image from a registry.

    python registry_worker.py REF TMP_DIR ENGINE {cache|nocache} [--start-file F]

Opens the image with the registry source and scans every layer through the shared
layer cache (or streams it), as an analyzer worker does. With --start-file it prints
"ready" and waits for F, so that several workers start at the same moment. Prints one
JSON line: {layer digest: diff_id}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from layerscan.config import Config
from layerscan.image import ImageSource
from layerscan.scan import scan_layer
from layerscan.scan.model import ScanOptions
from layerscan.sources import open_source


def pull_all(source: ImageSource, engine: str) -> dict[str, str]:
    """Scan every layer of the source; diff_id per layer digest."""
    out = {}
    for desc in source.layers:
        with source.open_layer(desc) as blob:
            assert blob is not None
            result = scan_layer(
                blob.data,
                ScanOptions(compute_diff_id=True),
                engine=engine,
                name=desc.digest,
                expected_digest=None if blob.verified else desc.digest,
            )
        out[desc.digest] = result.diff_id
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("ref")
    p.add_argument("tmp_dir")
    p.add_argument("engine")
    p.add_argument("cache", choices=("cache", "nocache"))
    p.add_argument("--start-file", type=Path)
    args = p.parse_args()
    host = args.ref.split("/", 1)[0]
    config = Config(tmp_dir=args.tmp_dir, layer_cache_enable=args.cache == "cache", insecure_registries=(host,))
    if args.start_file:
        print("ready", flush=True)
        while not args.start_file.exists():
            time.sleep(0.005)
    source = open_source(f"registry:{args.ref}", config=config)
    try:
        diff_ids = pull_all(source, args.engine)
    finally:
        source.close()
    print(json.dumps(diff_ids), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
