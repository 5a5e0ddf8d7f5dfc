"""AnalyzerWorker: one analyzer service, Anchore's "next available analyzer worker".

It polls the queue every `cycle_timer_seconds` (and at once when one of its analyses
ends), runs up to `max_threads` analyses at a time, renews their leases while they run,
and stores both reports and the summary. It serves GET /health, /status and /metrics
on `services.analyzer.listen:port` (port 0: none), with Starlette on uvicorn like the API.

Analyses run in daemon threads (the native scanner releases the GIL), so that a stop
that gives up on them does not wait for them: their jobs go back to the queue instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import __version__
from ..config import Config
from ..errors import LayerscanError
from . import metrics
from .auth import BasicAuth, check_users, users_of
from .exports import read_export
from .jobs import STORED_REPORTS, analyze_image, render
from .store import Job, LeaseLost, Store, StoreError

log = logging.getLogger(__name__)

_STARTUP_TIMEOUT_S = 10.0


class WorkerError(LayerscanError):
    """The worker cannot start: its status port is taken, or its store is unusable."""


@dataclasses.dataclass
class _Running:
    job: Job
    started: float
    thread: threading.Thread
    lost: bool = False  # the lease was taken over; the result will be dropped


class AnalyzerWorker:
    """`start()` returns at once; `stop()` ends it. Thread-safe."""

    def __init__(self, config: Config, store: Store, worker_id: str | None = None) -> None:
        self.config = config
        self.store = store
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.max_threads = config.max_threads
        self.lease_seconds = float(config.service.lease_seconds)
        self.max_attempts = config.service.max_attempts
        self.cycle = max(float(config.cycle_timer_seconds), 0.05)
        self.started_at: datetime.datetime | None = None
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # no more claims
        self._closed = threading.Event()  # no more lease renewals: every job finished or given back
        self._wake = threading.Event()
        self._poller: threading.Thread | None = None
        self._heart: threading.Thread | None = None
        self._http_thread: threading.Thread | None = None
        self._http: uvicorn.Server | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, poll: bool = True) -> None:
        """Register, serve the status port, and start polling the store for jobs (`poll`); without
        polling, jobs come from outside (a Celery message) through `run_claimed`."""
        self.started_at = datetime.datetime.now(datetime.UTC)
        metrics.watch_layer_cache(self.config)
        if self.config.port:
            check_users(self.config, self.config.require_auth, "services.analyzer.require_auth")
            self._serve_status()
        self.store.register_worker(self.worker_id, socket.gethostname(), self.config.port, self.max_threads)
        self._heart = threading.Thread(target=self._heartbeat, name="worker-heartbeat", daemon=True)
        self._heart.start()
        if poll:
            self._poller = threading.Thread(target=self._poll, name="worker-poll", daemon=True)
            self._poller.start()
        log.info(
            "worker %s: up to %d analyses at a time, %s%s",
            self.worker_id,
            self.max_threads,
            f"polling every {self.cycle:.1f}s" if poll else "taking jobs from Celery",
            f", status on {self.config.listen}:{self.config.port}" if self.config.port else "",
        )

    def run_claimed(self, job: Job) -> None:
        """Analyze a job claimed elsewhere, in the calling thread, its lease renewed meanwhile."""
        with self._lock:
            self._running[job.image_digest] = _Running(job, time.monotonic(), threading.current_thread())
            metrics.BUSY_WORKERS.set(len(self._running))
        self._run(job)

    def stop(self, graceful: bool = True, timeout: float | None = None) -> None:
        """Stop claiming. Graceful: let in-flight analyses finish, for at most `timeout` seconds
        (None: as long as they take); whatever is still running then goes back to the queue."""
        self._stopping.set()
        self._wake.set()
        if self._poller is not None:
            self._poller.join()  # after this, no job can be claimed behind our back
        if graceful:
            deadline = None if timeout is None else time.monotonic() + timeout
            for run in self._snapshot():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                run.thread.join(left)  # the heartbeat keeps renewing their leases meanwhile
        for run in self._snapshot():
            self._release(run)
        self._closed.set()
        if self._heart is not None:
            self._heart.join()
        try:
            self.store.unregister_worker(self.worker_id)
        except StoreError as e:
            log.warning("worker %s: could not unregister: %s", self.worker_id, e)
        if self._http is not None and self._http_thread is not None:
            self._http.should_exit = True
            self._http_thread.join(_STARTUP_TIMEOUT_S)
        log.info("worker %s: stopped", self.worker_id)

    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def _snapshot(self) -> list[_Running]:
        with self._lock:
            return list(self._running.values())

    # ------------------------------------------------------------------ the loops

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                while self.busy() < self.max_threads and not self._stopping.is_set():
                    job = self.store.claim(self.worker_id, self.lease_seconds, self.max_attempts)
                    if job is None:
                        break
                    self._launch(job)
            except Exception as e:  # the database went away, a lock timed out: try again next cycle
                log.error("worker %s: claiming failed: %s", self.worker_id, e)
            self._wake.wait(self.cycle)

    def _heartbeat(self) -> None:
        """Renew every running job's lease a few times per lease, and say we are alive."""
        interval = max(min(self.lease_seconds / 3, 10.0), 0.05)
        while not self._closed.wait(interval):
            for run in self._snapshot():
                if run.lost:
                    continue
                try:
                    self.store.renew(run.job)
                except LeaseLost:
                    with self._lock:
                        finished = self._running.get(run.job.image_digest) is not run
                    if finished:  # completed between the snapshot and the renewal: nothing was lost
                        continue
                    run.lost = True
                    log.warning("worker %s: lost the lease of %s", self.worker_id, run.job.image_digest)
                except Exception as e:
                    log.warning("worker %s: lease renewal failed (%s); retrying", self.worker_id, e)
            try:
                self.store.worker_heartbeat(self.worker_id, self.busy())
            except Exception as e:
                log.warning("worker %s: heartbeat failed (%s)", self.worker_id, e)

    def _launch(self, job: Job) -> None:
        thread = threading.Thread(target=self._run, args=(job,), name=f"analyze-{job.image_digest[7:19]}", daemon=True)
        with self._lock:
            self._running[job.image_digest] = _Running(job, time.monotonic(), thread)
            metrics.BUSY_WORKERS.set(len(self._running))
        thread.start()

    def _run(self, job: Job) -> None:
        log.info("worker %s: analyzing %s (attempt %d)", self.worker_id, job.source, job.attempts)
        t0 = time.perf_counter()
        try:
            self._analyze(job, t0)
        finally:
            with self._lock:
                self._running.pop(job.image_digest, None)
                metrics.BUSY_WORKERS.set(len(self._running))
            self._wake.set()

    def _analyze(self, job: Job, t0: float) -> None:
        try:
            analysis = analyze_image(job.source, self.config, self.store)
            reports = {kind: render(analysis, fmt) for kind, fmt in STORED_REPORTS.items()}
            info = read_export(reports["anchore"])
            if info.image_digest != job.image_digest:
                raise LayerscanError(f"the analysis is of {info.image_digest}, not the queued {job.image_digest}")
        except Exception as e:
            reason = str(e) if isinstance(e, LayerscanError) else f"internal error: {type(e).__name__}: {e}"
            if not isinstance(e, LayerscanError):
                log.exception("worker %s: analysis of %s crashed", self.worker_id, job.source)
            self._fail(job, reason)
            return
        try:
            self.store.complete(job, info.summary, reports)
        except LeaseLost:
            log.warning("worker %s: %s was taken over meanwhile; result dropped", self.worker_id, job.image_digest)
            return
        seconds = time.perf_counter() - t0
        metrics.IMAGES_ANALYZED.inc()
        metrics.ANALYSIS_TIME.observe(seconds)
        log.info("worker %s: analyzed %s in %.1fs", self.worker_id, job.image_digest, seconds)

    def _fail(self, job: Job, reason: str) -> None:
        metrics.IMAGES_FAILED.inc()
        try:
            status = self.store.fail(job, reason, self.max_attempts)
        except LeaseLost:
            return
        log.warning(
            "worker %s: %s failed (attempt %d of %d, now %s): %s",
            self.worker_id,
            job.image_digest,
            job.attempts,
            self.max_attempts,
            status,
            reason,
        )

    def _release(self, run: _Running) -> None:
        with self._lock:
            if self._running.pop(run.job.image_digest, None) is None:
                return  # it finished meanwhile
            metrics.BUSY_WORKERS.set(len(self._running))
        try:
            self.store.release(run.job)
            log.info("worker %s: gave %s back to the queue", self.worker_id, run.job.image_digest)
        except LeaseLost:
            pass

    # ------------------------------------------------------------------ the status port

    def status(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "worker_id": self.worker_id,
            "version": __version__,
            "up_since": self.started_at.isoformat() if self.started_at else None,
            "stopping": self._stopping.is_set(),
            "max_threads": self.max_threads,
            "busy": self.busy(),
            "analyzing": [
                {"image_digest": r.job.image_digest, "source": r.job.source, "seconds": round(now - r.started, 1)}
                for r in self._snapshot()
            ],
            "queue": self.store.queue_depth(),
        }

    def _serve_status(self) -> None:
        # /status names the images being analyzed: behind the same users as the API; /health stays public.
        app = BasicAuth(
            status_app(self.status, lambda: not self._stopping.is_set()),
            users_of(self.config),
            required=self.config.require_auth,
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=self.config.listen, port=self.config.port, log_level="warning", access_log=False)
        )
        thread = threading.Thread(target=server.run, name="worker-status", daemon=True)
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise WorkerError(f"worker: cannot serve its status on {self.config.listen}:{self.config.port}")
            time.sleep(0.02)
        self._http, self._http_thread = server, thread


def status_app(status: Callable[[], dict[str, object]], healthy: Callable[[], bool]) -> Starlette:
    """GET /health ("ok", 503 while stopping), /status (JSON) and /metrics (Prometheus)."""

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok") if healthy() else PlainTextResponse("stopping", status_code=503)

    def status_route(request: Request) -> Response:  # sync: Starlette runs it in a thread (it queries the store)
        return JSONResponse(status())

    async def metrics_route(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/status", status_route),
            Route("/metrics", metrics_route),
        ]
    )
