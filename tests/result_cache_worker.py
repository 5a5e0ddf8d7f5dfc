"""A worker process for the result cache concurrency tests: puts and gets through one LocalStore.

    python result_cache_worker.py ROOT MAX_BYTES SEED COUNT [--start-file F]

Puts COUNT encoded LayerResults of random sizes under keys drawn from a small shared
space (so that workers overwrite and evict each other's entries), reading one back after
each put. COUNT 0: forever (until killed). Prints "ready" once the store is open; with
--start-file it then waits for F, so that several workers start at the same moment.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from pathlib import Path

from layerscan.scan.model import EntryTable, FileRecord, LayerResult, ScanStats
from layerscan.store.results import codec
from layerscan.store.results.localstore import LocalStore

KEYS = 64


def value(rng: random.Random) -> tuple[str, bytes]:
    table = EntryTable()
    for i in range(rng.randrange(5, 200)):
        path = f"/data/{rng.getrandbits(64):016x}"
        table.append(
            FileRecord(path, "file", 0o644, 0, 0, "root", "root", i, 0, None, None, None, None), rng.randbytes(68)
        )
    result = LayerResult(table, [], [], {}, [], ScanStats(0, 0, len(table), 0.0), None, None)
    digest = f"sha256:{rng.getrandbits(256):064x}"
    return digest, codec.encode(codec.LAYER, digest, result)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("root", type=Path)
    p.add_argument("max_bytes", type=int)
    p.add_argument("seed", type=int)
    p.add_argument("count", type=int)
    p.add_argument("--start-file", type=Path)
    args = p.parse_args()
    rng = random.Random(args.seed)
    store = LocalStore(args.root, args.max_bytes)
    print("ready", flush=True)
    if args.start_file:
        while not args.start_file.exists():
            time.sleep(0.005)
    for _ in range(args.count) if args.count else itertools.count():
        key = f"{rng.randrange(KEYS):032x}"
        digest, data = value(rng)
        store.put(key, data, codec.LAYER, digest)
        got = store.get(f"{rng.randrange(KEYS):032x}")
        if got is not None:
            codec.decode(codec.LAYER, got)  # a torn or mixed-up value would raise here
    store.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
