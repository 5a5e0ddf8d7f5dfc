"""The service's Prometheus metrics: defined once here, updated by the worker, served by the API's
/metrics (and by each `layerscan worker` on its status port)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..config import Config
from ..store import layers, results
from ..store.layers import LayerCache

IMAGES_ANALYZED = Counter("layerscan_images_analyzed", "Images analyzed and stored by this process")
IMAGES_FAILED = Counter(
    "layerscan_images_failed", "Analysis attempts that failed in this process (requeued or analysis_failed)"
)
# Anchore's name, so existing dashboards keep working.
ANALYSIS_TIME = Histogram(
    "anchore_analysis_time_seconds",
    "Seconds one successful image analysis took, pipeline and reports",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
BUSY_WORKERS = Gauge("layerscan_busy_workers", "Analyses running now in this process")


class LayerCacheCollector(Collector):
    """The layer cache's size, read from the cache itself at each scrape (it is shared by processes).

    Hits, misses and evictions are this process's own: _LayerCacheCounts."""

    def __init__(self, cache: LayerCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.cache.stats()
        yield GaugeMetricFamily("layerscan_layer_cache_bytes", "Bytes of layer blobs in the layer cache", stats.bytes)
        yield GaugeMetricFamily("layerscan_layer_cache_entries", "Layer blobs in the layer cache", stats.entries)
        yield GaugeMetricFamily(
            "layerscan_layer_cache_max_bytes", "The layer cache's limit (least recently used evicted)", stats.max_bytes
        )


_watched: LayerCacheCollector | None = None
_watch_lock = threading.Lock()


def watch_layer_cache(config: Config) -> None:
    """Report the layer cache of `config` (if it is on) from now on; once per process."""
    global _watched
    with _watch_lock:
        if _watched is not None:
            return
        cache = LayerCache.from_config(config)
        if cache is not None:
            _watched = LayerCacheCollector(cache)
            REGISTRY.register(_watched)


class _LayerCacheCounts(Collector):
    """The layer cache's own process-wide counts (store/layers.py keeps them), read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        for name, text in (
            ("hits", "Layers read from the layer cache without downloading them"),
            ("misses", "Layers this process downloaded into the layer cache"),
            ("evictions", "Layer cache entries evicted to stay under the size limit"),
        ):
            family = CounterMetricFamily(f"layerscan_layer_cache_{name}", text)
            family.add_metric([], getattr(layers.COUNTS, name))
            yield family


class _ResultCacheCounts(Collector):
    """The result cache's process-wide lookups (store/results keeps them): a layer miss is a layer scanned."""

    def collect(self) -> Iterator[Metric]:
        for name, counts, text in (
            ("hits", results.COUNTS.hits, "Result cache lookups answered from the cache, by kind (layer, image)"),
            ("misses", results.COUNTS.misses, "Result cache lookups that led to a scan or an analysis, by kind"),
        ):
            family = CounterMetricFamily(f"layerscan_result_cache_{name}", text, labels=["kind"])
            for kind in ("layer", "image"):
                family.add_metric([kind], counts[kind])
            yield family


REGISTRY.register(_LayerCacheCounts())
REGISTRY.register(_ResultCacheCounts())
