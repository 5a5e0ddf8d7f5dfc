"""`layerscan worker`: one more analyzer service, as its own process, on the service's shared state."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from types import FrameType

from ..config import load_config
from ..errors import ConfigError, ExitCode
from .options import add_shared_options, port_or_off

log = logging.getLogger(__name__)

NAME = "worker"
HELP = "run an analyzer worker: take queued images and analyze them until stopped"
DESCRIPTION = (
    "Run one analyzer service: take images submitted to the service's queue "
    "(layerscan serve, POST /images) and analyze them, storing both reports."
)
EPILOG = """\
Any number of workers may run, on this host or others, as long as they share the
database (credentials.database.db_connect; default: SQLite in service_dir). Each
polls the queue every services.analyzer.cycle_timer_seconds, runs up to
services.analyzer.max_threads analyses at a time, and serves GET /health, /status and
/metrics on services.analyzer.listen:port (default 0.0.0.0:8084; port 0 serves nothing).

A worker holds a lease on each image it analyzes and renews it while it works. If the
worker dies (even kill -9), the lease runs out after services.analyzer.lease_seconds
(default 60) and another worker takes the image. An image whose analysis fails is
tried again, up to services.analyzer.max_attempts times (default 3); then it is
analysis_failed with the reason.

SIGTERM or SIGINT: stop taking images, let the running analyses finish for up to
lease_seconds, and give the rest back to the queue. A second signal gives them back at once.

With --celery (or queue: redis://HOST:6379/0 in the config) the jobs come from Celery, with
Redis as the broker, instead of from polling the database: run it on every host of a
cluster, with the state in PostgreSQL (credentials.database.db_connect:
postgresql://USER:PASSWORD@HOST/DB). Messages carry only the image digest and are
acknowledged after the analysis, so a worker killed mid-job hands its image to another
(after the visibility timeout, 3 x lease_seconds) and an image is stored once. Set
result_cache_url: redis://… as well, so that the hosts share the result cache and a layer
is analyzed once across the cluster. SIGTERM: Celery's warm shutdown (running analyses finish).

examples:
  layerscan worker --config /etc/anchore/config.yaml
  layerscan worker --config config.yaml --port 0       several on one host, no status port
  layerscan worker --config cluster.yaml --celery      take jobs from Celery (queue: redis://…)

exit codes: 0 stopped cleanly, 2 configuration error, 3 the store cannot be used.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port",
        type=port_or_off,
        metavar="PORT",
        help="serve /health, /status and /metrics on PORT instead of services.analyzer.port (0: none)",
    )
    add_shared_options(
        p,
        config="database, services.analyzer, ...",
        celery="take jobs from Celery with the Redis broker of the config's queue: key (implied when it is set)",
    )


def run(args: argparse.Namespace) -> int:
    from ..service.store import Store
    from ..service.worker import AnalyzerWorker

    config = load_config(args.config)
    if not (config.service.enabled and config.max_threads):
        raise ConfigError(
            f"config {args.config}: services.analyzer.enabled is false or max_threads is 0, so a worker would analyze nothing"
        )
    if args.port is not None:
        config = dataclasses.replace(config, port=args.port)
    stop = threading.Event()
    signals = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal signals
        signals += 1
        stop.set()

    store = Store.open(config.service.database_url)
    if args.celery or config.service.queue_url:
        from ..service.celery_queue import run_worker

        try:
            return run_worker(config, store, AnalyzerWorker(config, store), logging.getLogger().level)
        finally:
            store.close()
    try:
        worker = AnalyzerWorker(config, store)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        worker.start()
        while not stop.wait(1.0):
            pass
        log.info("stopping: the running analyses may finish (send the signal again to give them back now)")
        done = threading.Thread(
            target=worker.stop, kwargs={"graceful": True, "timeout": float(config.service.lease_seconds)}, daemon=True
        )
        done.start()
        while done.is_alive() and signals < 2:
            done.join(0.2)
        if done.is_alive():
            worker.stop(graceful=False)
    finally:
        store.close()
    return ExitCode.OK
