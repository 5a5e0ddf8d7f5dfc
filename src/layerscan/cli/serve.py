"""`layerscan serve`: Anchore's external API (and /metrics, /ui) plus, in the same process, an analyzer."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from ..config import Config, load_config
from ..errors import ExitCode, LayerscanError
from .options import add_shared_options

if TYPE_CHECKING:
    from ..service.worker import AnalyzerWorker

log = logging.getLogger(__name__)

_STARTUP_TIMEOUT_S = 15.0

NAME = "serve"
HELP = "run the service: Anchore's API (for anchore-cli), /metrics, the web page, and an analyzer"
DESCRIPTION = (
    "Run the analyzer service: Anchore's external API (submit images, read their "
    "analyses), Prometheus metrics, a web page of the queue, and an in-process analyzer."
)
EPILOG = """\
The API listens on services.apiext.listen:port (default 0.0.0.0:8228), on both /v1/... and
bare paths, as Anchore's does, so anchore-cli works against it:

  ANCHORE_CLI_URL=http://HOST:8228/v1 ANCHORE_CLI_USER=admin ANCHORE_CLI_PASS=... anchore-cli image add REF

GET /, /health and /version answer anyone. Everything else (the image routes, /status,
/system, /swagger.json, /metrics and the web page at /ui) needs HTTP Basic auth: the user
admin with default_admin_password, or a user under credentials.users.<name>.password.
services.apiext.require_auth: false turns that off (for a trusted network only).

In the same process an analyzer takes queued images, services.analyzer.max_threads at a
time (services.analyzer.enabled: false, or max_threads: 0, serves the API only; run
'layerscan worker' processes beside it, on this host or others sharing the database).
State lives in credentials.database.db_connect (default: SQLite in service_dir).
With queue: redis://HOST:6379/0 the API sends each submitted image to Celery instead, and
runs no analyzer itself: 'layerscan worker --celery' processes on any host analyze them.

SIGTERM or SIGINT: stop answering, let running analyses finish for up to
services.analyzer.lease_seconds, and give the rest back to the queue (a second signal
gives them back at once). Nothing queued is lost: the next start resumes the queue.

examples:
  layerscan serve --config /etc/anchore/config.yaml
  curl -u admin:PASSWORD http://localhost:8228/v1/images
  curl -u admin:PASSWORD http://localhost:8228/metrics

exit codes: 0 stopped cleanly, 2 configuration error, 3 the store cannot be used or the
port cannot be bound.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_shared_options(p, config="credentials, database, services")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..service.api import create_app
    from ..service.auth import check_users
    from ..service.store import Store
    from ..service.worker import AnalyzerWorker  # noqa: F811  (the class, at run time)

    config = load_config(args.config)
    check_users(config, config.service.apiext_require_auth, "services.apiext.require_auth")
    signals = _Signals()
    store = Store.open(config.service.database_url)
    try:
        worker = AnalyzerWorker(config, store) if _analyzer_wanted(config) else None
        host, port = config.service.apiext_listen, config.service.apiext_port
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config, store, worker),
                host=host,
                port=port,
                log_level="warning" if log.getEffectiveLevel() > logging.INFO else "info",
                lifespan="off",
            )
        )
        # uvicorn in a thread of its own leaves the signals to this one, so that shutdown has one order:
        # stop answering, then let the analyzer finish or give its jobs back.
        http = threading.Thread(target=server.run, name="api", daemon=True)
        http.start()
        _wait_started(server, http, f"{host}:{port}")
        if worker is not None:
            worker.start()
        log.info("serving Anchore's API on %s:%d%s", host, port, "" if worker else " (no analyzer in this process)")
        signals.wait()
        log.info("stopping: the running analyses may finish (send the signal again to give them back now)")
        server.should_exit = True
        http.join()
        if worker is not None:
            signals.stop_worker(worker, float(config.service.lease_seconds))
    finally:
        store.close()
    return ExitCode.OK


def _analyzer_wanted(config: Config) -> bool:
    """An in-process analyzer polls the store; with a Celery queue the `worker --celery` processes analyze."""
    return config.service.enabled and config.max_threads > 0 and not config.service.queue_url


def _wait_started(server: object, thread: threading.Thread, where: str) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not getattr(server, "started", False):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise LayerscanError(f"serve: cannot listen on {where} (in use, or not an address of this host)")
        time.sleep(0.02)


class _Signals:
    """SIGTERM/SIGINT: the first asks for a graceful stop, the second for a quick one."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.event.set()

    def wait(self) -> None:
        while not self.event.wait(1.0):
            pass

    def stop_worker(self, worker: AnalyzerWorker, timeout: float) -> None:
        done = threading.Thread(target=worker.stop, kwargs={"graceful": True, "timeout": timeout}, daemon=True)
        done.start()
        while done.is_alive() and self.count < 2:
            done.join(0.2)
        if done.is_alive():
            worker.stop(graceful=False)
