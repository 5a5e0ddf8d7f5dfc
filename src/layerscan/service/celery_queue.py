"""Jobs through Celery, with Redis as the broker (`queue: redis://…`, `layerscan worker --celery`).

Celery carries only the image digest; the state stays in the Store (PostgreSQL when the
workers are on several hosts). A task claims its image in the store with a lease, as the
embedded poller does, and stores the reports with that lease:

- late acknowledgement: a message is acknowledged when its task ends, so a worker killed
  mid-job (kill -9) leaves it unacknowledged, and Redis hands it to another worker after
  the visibility timeout;
- idempotent: a message whose image is already analyzed (a duplicate) does nothing; one
  whose image another live worker holds comes back when that lease would have expired; a
  stale lease cannot complete. So an image is stored once, however often it is delivered.

The store is the truth and the broker only the delivery, so every worker also sweeps, once per
lease: a job whose lease expired goes back to the queue with a new message, and when the broker
holds fewer messages than there are waiting images (a Redis restarted without persistence),
they are all sent again. Duplicates cost one lookup each.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
from typing import Any

from celery import Celery, Task
from kombu.exceptions import KombuError

from ..config import Config
from ..errors import ConfigError
from .store import ANALYZING, NOT_ANALYZED, Store, utcnow
from .worker import AnalyzerWorker

log = logging.getLogger(__name__)

TASK = "layerscan.analyze"
QUEUE = "layerscan"


def queue_url(config: Config, celery: bool = False) -> str | None:
    """The broker the config names; with `celery` (the --celery flag) one is required."""
    url = config.service.queue_url
    if celery and not url:
        raise ConfigError("--celery: the config names no broker; set queue: redis://HOST:6379/0")
    return url


@functools.cache
def celery_app(url: str, lease_seconds: float) -> Celery:
    """One Celery app per broker and process (it holds the broker's connection pool)."""
    app = Celery("layerscan", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,  # results live in the store
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,  # a free worker takes the next job, a busy one hoards none
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # stderr stays layerscan's log, not one WARNING per line
        # An unacknowledged message goes to another worker after this long. Longer than a lease,
        # so that a task retried after a lease (countdown) is not redelivered meanwhile.
        broker_transport_options={"visibility_timeout": max(3 * lease_seconds, 30.0)},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a restarted Redis: reconnect, however long it takes
        # Running analyses go on when the broker connection drops: their messages come back to some
        # worker anyway (late ack), and the store drops the duplicate result.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def dispatch(config: Config, digest: str) -> None:
    """Send a job for `digest`. A broker that cannot be reached costs a warning, not the image: it
    waits in the store, and the workers' sweep sends it again once the broker is back."""
    url = queue_url(config)
    assert url is not None, "dispatch is called only when a queue is configured"
    app = celery_app(url, float(config.service.lease_seconds))
    try:
        app.send_task(TASK, args=[digest], queue=QUEUE, retry=True, retry_policy={"max_retries": 3})
    except (KombuError, OSError) as e:
        log.warning("queue: could not send %s (%s); it waits in the store for the next sweep", digest, e)


def run_worker(config: Config, store: Store, worker: AnalyzerWorker, loglevel: int) -> int:
    """Consume jobs until SIGTERM/SIGINT (Celery's warm shutdown: running tasks finish); the exit code."""
    url = queue_url(config, celery=True)
    assert url is not None
    lease = float(config.service.lease_seconds)
    app = celery_app(url, lease)

    @app.task(name=TASK, bind=True, max_retries=None)
    def analyze(task: Task, digest: str) -> None:
        job = store.claim(worker.worker_id, lease, config.service.max_attempts, digest=digest)
        if job is None:
            record = store.get_image(digest)
            if record is not None and record.analysis_status == ANALYZING:
                # Another worker holds it; if that one dies, this message takes over after its lease.
                raise task.retry(countdown=lease)
            return  # analyzed, failed for good, or deleted: a duplicate, nothing to do
        worker.run_claimed(job)
        record = store.get_image(digest)
        if record is not None and record.analysis_status == NOT_ANALYZED:  # a failed attempt, or given back
            dispatch(config, digest)

    sweeper = _Sweeper(config, store, app)
    worker.start(poll=False)
    sweeper.start()
    try:
        celery_worker = app.Worker(
            hostname=f"layerscan@{worker.worker_id}",
            pool="threads",  # the native scanner releases the GIL; one process keeps one layer cache pin
            concurrency=config.max_threads,
            queues=[QUEUE],
            loglevel=loglevel,
            quiet=True,
            without_gossip=True,
            without_mingle=True,
        )
        celery_worker.start()  # returns after a warm (or cold) shutdown
        code: int = celery_worker.exitcode or 0
    finally:
        sweeper.stop()
        worker.stop(graceful=True, timeout=lease)
    return code


class _Sweeper:
    """Every lease, send again the jobs the broker lost: leases that expired (their worker died), and
    waiting images when the broker holds fewer messages than there are waiting images."""

    def __init__(self, config: Config, store: Store, app: Celery) -> None:
        self.config = config
        self.store = store
        self.app = app
        self.interval = float(config.service.lease_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="queue-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except Exception as e:  # the store or the broker is away: next time
                log.warning("queue: sweep failed (%s); trying again in %.0fs", e, self.interval)

    def sweep(self) -> None:
        requeued = self.store.requeue_expired(self.config.service.max_attempts)
        settled = utcnow() - datetime.timedelta(seconds=self.interval)  # not ones being submitted right now
        waiting = [
            r.image_digest for r in self.store.list_images(analysis_status=NOT_ANALYZED) if r.last_updated < settled
        ]
        held = self._messages()
        # Requeued images need a message (theirs is held by a dead worker); when the broker holds
        # fewer messages than there are images waiting since the last sweep, some were lost: send
        # them all again (duplicates are no-ops).
        resend = waiting if held < len(waiting) else requeued
        if resend:
            log.info(
                "queue: sending %d jobs again (%d from dead workers; the broker holds %d for %d waiting)",
                len(resend),
                len(requeued),
                held,
                len(waiting),
            )
        for digest in resend:
            dispatch(self.config, digest)

    def _messages(self) -> int:
        """Messages waiting in the broker's queue (not those workers hold)."""
        with self.app.connection_for_read() as conn:
            try:
                ok: Any = conn.default_channel.queue_declare(QUEUE, passive=True)
            except conn.channel_errors:  # no such queue: Redis drops an empty list
                return 0
            return int(ok.message_count)
