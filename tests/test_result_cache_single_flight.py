"""A layer is scanned by one analysis at a time: others that need it meanwhile wait for its result
(the local store's per-key flock here; the Redis lock in test_cluster's 20-image run)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from imagebuilder import Layer, d, f
from layerscan.config import Config
from layerscan.pipeline import scan_options
from layerscan.scan import scan_layer
from layerscan.scan.model import LayerResult
from layerscan.store.results import COUNTS, ResultCache
from layerscan.store.results.localstore import LocalStore

DIGEST = "sha256:" + "cd" * 32


def test_concurrent_analyses_scan_a_layer_once_and_share_its_result(tmp_path: Path) -> None:
    config = Config(tmp_dir=str(tmp_path))
    options = scan_options(config, (*config.secret_rules, *config.content_rules))
    layer = Layer([d("etc"), f("etc/os-release", b"ID=debian\n"), d("app"), f("app/.env", b"token = 1234\n")]).tar()
    scans: list[float] = []

    def scan() -> LayerResult:
        scans.append(time.monotonic())
        time.sleep(0.5)  # long enough that every other thread asks meanwhile
        return scan_layer(layer, engine="reference")

    results: list[LayerResult | None] = []
    misses = COUNTS.misses["layer"]

    def one() -> None:
        # One store and one cache per "analysis", as separate processes would have them.
        cache = ResultCache(LocalStore(tmp_path / "rc", 10_000_000), options, "reference", config)
        results.append(cache.layer(DIGEST, scan))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(scans) == 1, "scanned once"
    first = results[0]
    assert first is not None and len(results) == 4
    assert all(r is not None and r.to_json() == first.to_json() for r in results), "the waiters read its result"
    assert COUNTS.misses["layer"] - misses == 1
