"""GET /metrics: Prometheus text format (prometheus-client).

This process's counters, histogram and gauges (defined once in service/metrics.py and
updated by the in-process worker), plus what only the shared state knows, read at each
scrape: images by analysis_status, analyzers up and busy, and the layer cache's size.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...config import Config
from ...store.layers import LayerCache
from .. import metrics as _service_metrics  # noqa: F401  (registers the worker's metrics even with no worker)
from ..store import STATES, Store


class StateCollector(Collector):
    """Gauges computed from the store (and the layer cache) when Prometheus scrapes."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self._cache: LayerCache | None = None

    def collect(self) -> Iterator[Metric]:
        depth = self.store.queue_depth()
        queue = GaugeMetricFamily("layerscan_queue_images", "Images by analysis_status", labels=["state"])
        for state in STATES:
            queue.add_metric([state], depth.get(state, 0))
        yield queue
        workers = self.store.list_workers()
        up = GaugeMetricFamily("layerscan_analyzers_up", "Analyzer services with a recent heartbeat")
        up.add_metric([], sum(1 for w in workers if w.status == "up"))
        yield up
        busy = GaugeMetricFamily("layerscan_analyzers_busy_threads", "Analyses running now, over every analyzer")
        busy.add_metric([], sum(w.busy for w in workers if w.status == "up"))
        yield busy
        cache = self._layer_cache()
        if cache is not None:
            stats = cache.stats()
            size = GaugeMetricFamily("layerscan_layer_cache_bytes", "Bytes of layer blobs in the layer cache")
            size.add_metric([], stats.bytes)
            yield size
            limit = GaugeMetricFamily("layerscan_layer_cache_max_bytes", "The layer cache's size limit")
            limit.add_metric([], stats.max_bytes)
            yield limit

    def _layer_cache(self) -> LayerCache | None:
        if self._cache is None:
            self._cache = LayerCache.from_config(self.config)
        return self._cache


def state_registry(store: Store, config: Config) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(store, config))
    return registry


def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
