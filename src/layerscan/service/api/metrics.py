"""GET /metrics: Prometheus text format (prometheus-client).

This process's counters, histogram and gauges (defined once in service/metrics.py and
updated by the in-process worker), plus what only the shared state knows, read at each
scrape: images by analysis_status, analyzers up and busy (the layer cache's size and counts are
service/metrics.py's, in the process's registry).
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
from ..metrics import watch_layer_cache  # (and so the worker's metrics are registered, even with no worker)
from ..store import STATES, Store


class StateCollector(Collector):
    """Gauges computed from the store when Prometheus scrapes."""

    def __init__(self, store: Store) -> None:
        self.store = store

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


def state_registry(store: Store, config: Config) -> CollectorRegistry:
    """The store's gauges; the layer cache's size joins the process's registry (once per process)."""
    watch_layer_cache(config)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(store))
    return registry


def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
