"""A worker process for the layer cache tests: reads one layer through a shared cache.

    python cache_worker.py ROOT MAX_BYTES DIGEST BLOB COUNTER [--chunk-delay S] [--hold S] [--start-file F]

Each call of its fetch appends a line to COUNTER (O_APPEND, so concurrent workers never
lose a count). With --start-file it prints "ready" and waits for F to exist, so that several workers ask
at the same moment. Prints "pinned <sha256 of what it read>" once it holds the layer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from layerscan.store.layers import LayerCache


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("root", type=Path)
    p.add_argument("max_bytes", type=int)
    p.add_argument("digest")
    p.add_argument("blob", type=Path)
    p.add_argument("counter", type=Path)
    p.add_argument("--chunk-delay", type=float, default=0.0)
    p.add_argument("--hold", type=float, default=0.0)
    p.add_argument("--start-file", type=Path)
    args = p.parse_args()
    content = args.blob.read_bytes()

    def fetch() -> Iterator[bytes]:
        fd = os.open(args.counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        for i in range(0, len(content), 4096):
            time.sleep(args.chunk_delay)
            yield content[i : i + 4096]

    cache = LayerCache(args.root, args.max_bytes, minimum_bytes=0)
    if args.start_file:
        print("ready", flush=True)
        while not args.start_file.exists():
            time.sleep(0.005)
    with cache.layer(args.digest, len(content), fetch) as blob:
        print("pinned", hashlib.sha256(blob.data).hexdigest(), flush=True)
        time.sleep(args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
