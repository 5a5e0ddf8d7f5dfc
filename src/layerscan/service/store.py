"""The service's state: images and their tags, reports, workers, and the job queue.

One SQLAlchemy 2 Core engine over `db_connect`: SQLite in WAL mode by default, or PostgreSQL
(`postgresql://…`, through psycopg 3) with the same statements and migrations, which the
store tests run on both. The queue is the `images` table itself: an image waits as `not_analyzed`, a worker claims it with a lease (`analyzing`, a token and an expiry), renews
the lease while it works, and completes, fails or releases it with that token. A claim
whose lease expired (its worker died) is claimable again, so nothing is lost; a stale
claim cannot complete, so nothing is stored twice.

Atomicity: every write is one transaction. On SQLite it begins IMMEDIATE (the write lock
is taken at BEGIN, so two processes never both read "free" and both claim); on
PostgreSQL the claim's row lock is FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyzstd
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.sql.expression import ColumnElement

from ..closable import Closable
from ..errors import LayerscanError
from .exports import read_export
from .schema import image_tags, images, job_credentials, reports, workers

log = logging.getLogger(__name__)

NOT_ANALYZED, ANALYZING, ANALYZED, FAILED = "not_analyzed", "analyzing", "analyzed", "analysis_failed"
STATES = (NOT_ANALYZED, ANALYZING, ANALYZED, FAILED)
REPORT_KINDS = ("anchore", "layerscan", "cyclonedx", "spdx")
_BUSY_TIMEOUT_S = 30  # how long a SQLite writer waits for another's lock before failing
_MIGRATION_LOCK = 0x6C61796572  # PostgreSQL advisory lock key held while migrating ("layer")


class StoreError(LayerscanError):
    """The service store cannot be opened or used: a bad db_connect, or a database that refuses."""


class LeaseLost(StoreError):
    """A worker acted on a job whose lease had expired and which another claim now owns."""


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    image_digest: str
    image_id: str
    parent_digest: str
    fulltags: tuple[str, ...]
    analysis_status: str
    image_status: str
    attempts: int
    last_error: str
    created_at: datetime.datetime
    last_updated: datetime.datetime
    analyzed_at: datetime.datetime | None
    worker_id: str | None
    summary: dict[str, int]
    manifest: bytes = dataclasses.field(repr=False)
    config: bytes = dataclasses.field(repr=False)
    source: str
    tag_detected_at: dict[str, datetime.datetime] = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass(frozen=True)
class Job:
    """One claim of one image: only the holder of `lease_token` may renew, complete, fail or release it."""

    image_digest: str
    source: str
    worker_id: str
    lease_token: str
    lease_seconds: float
    attempts: int  # claims of this image since it was queued, this one included


@dataclasses.dataclass(frozen=True)
class WorkerRecord:
    worker_id: str
    host: str
    port: int
    max_threads: int
    busy: int
    started_at: datetime.datetime
    last_seen: datetime.datetime
    status: str  # "up" if it sent a heartbeat recently, else "down"


class Store(Closable):
    """Use `Store.open(db_url)`; thread-safe (one connection pool), and safe across processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(layerscan_write=True)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, db_url: str) -> Store:
        """Connect, and bring the schema to the newest migration."""
        try:
            url = make_url(db_url)
        except ArgumentError:
            raise StoreError(f"db_connect {_redacted(db_url)!r} is not a database URL") from None
        if url.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2; ours is psycopg 3
            url = url.set(drivername="postgresql+psycopg")
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            try:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"db_connect {_redacted(db_url)!r}: cannot create its directory: {e}") from None
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except Exception as e:  # a missing driver (ModuleNotFoundError), a bad option
            raise StoreError(f"db_connect {_redacted(db_url)!r}: {e}") from None
        if engine.dialect.name == "sqlite":
            _sqlite_setup(engine)
        store = cls(engine)
        try:
            store._migrate()
        except OperationalError as e:
            engine.dispose()
            raise StoreError(f"db_connect {_redacted(db_url)!r}: {e.orig}") from None
        return store

    def close(self) -> None:
        self.engine.dispose()

    def _migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", "layerscan.service:migrations")
        # One writer at a time: concurrent first starts (several workers) must not race the DDL.
        with self._write() as conn:
            if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE serializes; here a lock does
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # ------------------------------------------------------------------ images

    def add_image(
        self,
        digest: str,
        image_id: str,
        fulltag: str,
        source: str,
        manifest: bytes,
        config: bytes,
        parent_digest: str,
        force: bool = False,
    ) -> ImageRecord:
        """A new image is queued (not_analyzed). A known one gains the tag; with `force`, an
        analyzed or failed one is queued again (its old reports stay until it completes)."""
        now = utcnow()
        with self._write() as conn:
            row = conn.execute(select(images.c.analysis_status).where(images.c.image_digest == digest)).first()
            if row is None:
                conn.execute(
                    insert(images).values(
                        image_digest=digest,
                        image_id=image_id,
                        parent_digest=parent_digest or digest,
                        source=source,
                        analysis_status=NOT_ANALYZED,
                        image_status="active",
                        attempts=0,
                        last_error="",
                        created_at=now,
                        last_updated=now,
                        queued_at=now,
                        summary="{}",
                        manifest=manifest,
                        config=config,
                    )
                )
            elif force and row.analysis_status in (ANALYZED, FAILED):
                conn.execute(
                    update(images)
                    .where(images.c.image_digest == digest)
                    .values(
                        analysis_status=NOT_ANALYZED,
                        source=source,
                        attempts=0,
                        last_error="",
                        queued_at=now,
                        last_updated=now,
                    )
                )
            self._add_tag(conn, digest, fulltag, now)
        return self._require(digest)

    def _add_tag(self, conn: Connection, digest: str, fulltag: str, now: datetime.datetime) -> None:
        if not fulltag:
            return
        where = and_(image_tags.c.image_digest == digest, image_tags.c.fulltag == fulltag)
        if conn.execute(select(image_tags.c.fulltag).where(where)).first() is None:
            conn.execute(insert(image_tags).values(image_digest=digest, fulltag=fulltag, tag_detected_at=now))

    def import_analysis(self, export_json: bytes) -> ImageRecord:
        """Store an Anchore export made elsewhere (`analyze --format anchore`) as an analyzed image.

        An export carries no manifest or image config, so those are stored empty."""
        info = read_export(export_json)
        now = utcnow()
        compressed = pyzstd.compress(export_json)
        with self._write() as conn:
            exists = conn.execute(select(images.c.image_digest).where(images.c.image_digest == info.image_digest))
            values: dict[str, Any] = dict(
                image_id=info.image_id,
                analysis_status=ANALYZED,
                attempts=0,
                last_error="",
                last_updated=now,
                analyzed_at=now,
                worker_id=None,
                lease_token=None,
                lease_expires=None,
                summary=json.dumps(info.summary),
            )
            if exists.first() is None:
                conn.execute(
                    insert(images).values(
                        image_digest=info.image_digest,
                        parent_digest=info.image_digest,
                        source=f"import:{info.image_digest}",
                        image_status="active",
                        created_at=now,
                        queued_at=now,
                        manifest=b"",
                        config=b"",
                        **values,
                    )
                )
            else:
                conn.execute(update(images).where(images.c.image_digest == info.image_digest).values(**values))
            for tag in info.fulltags:
                self._add_tag(conn, info.image_digest, tag, now)
            self._put_report(conn, info.image_digest, "anchore", compressed, len(export_json), now)
        return self._require(info.image_digest)

    def get_image(self, digest: str) -> ImageRecord | None:
        found = self._select_images(images.c.image_digest == digest)
        return found[0] if found else None

    def get_image_by_id(self, image_id: str) -> ImageRecord | None:
        found = self._select_images(images.c.image_id == image_id)
        return found[0] if found else None

    def list_images(self, fulltag: str | None = None, analysis_status: str | None = None) -> list[ImageRecord]:
        """Oldest first."""
        conditions: list[ColumnElement[bool]] = []
        if fulltag is not None:
            tagged = select(image_tags.c.image_digest).where(image_tags.c.fulltag == fulltag)
            conditions.append(images.c.image_digest.in_(tagged))
        if analysis_status is not None:
            conditions.append(images.c.analysis_status == analysis_status)
        return self._select_images(and_(true(), *conditions))

    def delete_image(self, digest: str) -> bool:
        """Forget an image, its tags and its reports; False if it was not there."""
        with self._write() as conn:
            conn.execute(delete(reports).where(reports.c.image_digest == digest))
            conn.execute(delete(image_tags).where(image_tags.c.image_digest == digest))
            conn.execute(delete(job_credentials).where(job_credentials.c.image_digest == digest))
            return conn.execute(delete(images).where(images.c.image_digest == digest)).rowcount > 0

    def _require(self, digest: str) -> ImageRecord:
        record = self.get_image(digest)
        if record is None:  # deleted between our write and this read
            raise StoreError(f"image {digest} was deleted meanwhile")
        return record

    def _select_images(self, where: Any) -> list[ImageRecord]:
        with self._read() as conn:
            rows = conn.execute(select(images).where(where).order_by(images.c.created_at, images.c.image_digest))
            found = list(rows.mappings())
            tags: dict[str, dict[str, datetime.datetime]] = {}
            if found:
                digests = [r["image_digest"] for r in found]
                query = (
                    select(image_tags)
                    .where(image_tags.c.image_digest.in_(digests))
                    .order_by(image_tags.c.tag_detected_at, image_tags.c.fulltag)
                )
                for t in conn.execute(query).mappings():
                    tags.setdefault(t["image_digest"], {})[t["fulltag"]] = t["tag_detected_at"]
        return [_record(r, tags.get(r["image_digest"], {})) for r in found]

    # ------------------------------------------------------------------ reports

    def put_report(self, digest: str, kind: str, data: bytes) -> None:
        _check_kind(kind)
        compressed = pyzstd.compress(data)
        with self._write() as conn:
            self._put_report(conn, digest, kind, compressed, len(data), utcnow())

    def _put_report(
        self, conn: Connection, digest: str, kind: str, compressed: bytes, size: int, now: datetime.datetime
    ) -> None:
        conn.execute(delete(reports).where(and_(reports.c.image_digest == digest, reports.c.kind == kind)))
        conn.execute(insert(reports).values(image_digest=digest, kind=kind, data=compressed, size=size, created_at=now))

    def get_report(self, digest: str, kind: str) -> bytes | None:
        _check_kind(kind)
        with self._read() as conn:
            data = conn.execute(
                select(reports.c.data).where(and_(reports.c.image_digest == digest, reports.c.kind == kind))
            ).scalar()
        return None if data is None else pyzstd.decompress(data)

    # ------------------------------------------------------------------ the queue

    def claim(
        self, worker_id: str, lease_seconds: float, max_attempts: int = 3, digest: str | None = None
    ) -> Job | None:
        """The oldest waiting image (or `digest`, when given: the one a Celery message names), or
        one whose lease expired, now leased to `worker_id`; None if none is claimable.

        A job whose lease expired `max_attempts` times (its workers keep dying on it) is
        marked analysis_failed instead of being claimed again."""
        now = utcnow()
        token = secrets.token_hex(16)
        claimable = or_(
            images.c.analysis_status == NOT_ANALYZED,
            and_(images.c.analysis_status == ANALYZING, images.c.lease_expires < now),
        )
        if digest is not None:
            claimable = and_(images.c.image_digest == digest, claimable)
        with self._write() as conn:
            while True:
                candidate = (
                    select(images.c.image_digest, images.c.attempts, images.c.analysis_status)
                    .where(claimable)
                    .order_by(images.c.queued_at, images.c.image_digest)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                row = conn.execute(candidate).first()
                if row is None:
                    return None
                if row.analysis_status == ANALYZING and row.attempts >= max_attempts:
                    reason = f"the analysis was abandoned {row.attempts} times (its worker stopped or died)"
                    log.warning("image %s: %s; marking it analysis_failed", row.image_digest, reason)
                    self._finish(conn, row.image_digest, FAILED, now, last_error=reason)
                    continue
                result = conn.execute(
                    update(images)
                    .where(and_(images.c.image_digest == row.image_digest, claimable))
                    .values(
                        analysis_status=ANALYZING,
                        worker_id=worker_id,
                        lease_token=token,
                        lease_expires=now + datetime.timedelta(seconds=lease_seconds),
                        attempts=images.c.attempts + 1,
                        last_updated=now,
                    )
                    .returning(images.c.source, images.c.attempts)
                ).first()
                if result is None:  # taken meanwhile (PostgreSQL READ COMMITTED); look again
                    continue
                return Job(row.image_digest, result.source, worker_id, token, lease_seconds, result.attempts)

    def requeue_expired(self, max_attempts: int) -> list[str]:
        """Put the images whose worker stopped renewing its lease (it died) back in the queue, or mark
        them analysis_failed after `max_attempts` claims, as `claim` would; the requeued digests.
        For a queue outside the store (Celery), whose message for such an image may be lost."""
        now = utcnow()
        expired = and_(images.c.analysis_status == ANALYZING, images.c.lease_expires < now)
        requeued = []
        with self._write() as conn:
            rows = conn.execute(select(images.c.image_digest, images.c.attempts).where(expired).with_for_update())
            for row in rows.all():
                if row.attempts >= max_attempts:
                    reason = f"the analysis was abandoned {row.attempts} times (its worker stopped or died)"
                    log.warning("image %s: %s; marking it analysis_failed", row.image_digest, reason)
                    self._finish(conn, row.image_digest, FAILED, now, last_error=reason)
                else:
                    self._finish(conn, row.image_digest, NOT_ANALYZED, now, last_error="its worker died")
                    requeued.append(row.image_digest)
        return requeued

    def renew(self, job: Job) -> None:
        """Extend the lease by its length from now; LeaseLost if another claim owns the job."""
        with self._write() as conn:
            self._owned(conn, job, lease_expires=utcnow() + datetime.timedelta(seconds=job.lease_seconds))

    def complete(self, job: Job, summary: Mapping[str, int], reports_by_kind: Mapping[str, bytes]) -> None:
        """Store the reports and mark the image analyzed, atomically; LeaseLost if the lease was lost."""
        for kind in reports_by_kind:
            _check_kind(kind)
        compressed = {kind: (pyzstd.compress(data), len(data)) for kind, data in reports_by_kind.items()}
        now = utcnow()
        with self._write() as conn:
            self._owned(conn, job, analysis_status=ANALYZED, analyzed_at=now, summary=json.dumps(dict(summary)))
            for kind, (data, size) in compressed.items():
                self._put_report(conn, job.image_digest, kind, data, size, now)
            self._release_lease(conn, job.image_digest, now, last_error="")
            self._drop_credentials(conn, job.image_digest)

    def fail(self, job: Job, reason: str, max_attempts: int) -> str:
        """Record a failed attempt: back to the end of the queue, or analysis_failed once `max_attempts`
        claims have failed. Returns the new status."""
        now = utcnow()
        status = FAILED if job.attempts >= max_attempts else NOT_ANALYZED
        with self._write() as conn:
            self._owned(conn, job, analysis_status=status, queued_at=now)
            self._release_lease(conn, job.image_digest, now, last_error=reason)
            if status == FAILED:
                self._drop_credentials(conn, job.image_digest)
        return status

    def release(self, job: Job) -> None:
        """Give the job back, uncounted, at its place in the queue (the worker is stopping)."""
        now = utcnow()
        with self._write() as conn:
            self._owned(conn, job, analysis_status=NOT_ANALYZED, attempts=images.c.attempts - 1)
            self._release_lease(conn, job.image_digest, now)

    def queue_depth(self) -> dict[str, int]:
        """Images per analysis_status (every status present, zero or not)."""
        with self._read() as conn:
            rows = conn.execute(select(images.c.analysis_status, func.count()).group_by(images.c.analysis_status)).all()
        depth = dict.fromkeys(STATES, 0)
        depth.update({status: count for status, count in rows})
        return depth

    def _owned(self, conn: Connection, job: Job, **values: Any) -> None:
        result = conn.execute(
            update(images)
            .where(
                and_(
                    images.c.image_digest == job.image_digest,
                    images.c.lease_token == job.lease_token,
                    images.c.analysis_status == ANALYZING,
                )
            )
            .values(last_updated=utcnow(), **values)
        )
        if result.rowcount != 1:
            raise LeaseLost(f"image {job.image_digest}: the lease of {job.worker_id} expired and was taken over")

    def _release_lease(self, conn: Connection, digest: str, now: datetime.datetime, **values: Any) -> None:
        conn.execute(
            update(images)
            .where(images.c.image_digest == digest)
            .values(worker_id=None, lease_token=None, lease_expires=None, last_updated=now, **values)
        )

    def _finish(self, conn: Connection, digest: str, status: str, now: datetime.datetime, last_error: str) -> None:
        conn.execute(update(images).where(images.c.image_digest == digest).values(analysis_status=status))
        self._release_lease(conn, digest, now, last_error=last_error)

    # ------------------------------------------------------------------ job credentials

    def put_credentials(self, digest: str, host: str, sealed: bytes, expires_at: datetime.datetime) -> None:
        """Hold sealed registry credentials (job_credentials.py) for the job of `digest`, replacing
        any; the job's end (analyzed, or analysis_failed) drops them, and so does `expires_at`."""
        with self._write() as conn:
            expired = job_credentials.c.expires_at <= utcnow()
            conn.execute(delete(job_credentials).where(or_(job_credentials.c.image_digest == digest, expired)))
            conn.execute(
                insert(job_credentials).values(image_digest=digest, host=host, sealed=sealed, expires_at=expires_at)
            )

    def get_credentials(self, digest: str) -> tuple[str, bytes] | None:
        """(host, sealed credentials) held for the job of `digest`, unless they expired."""
        with self._read() as conn:
            row = conn.execute(
                select(job_credentials.c.host, job_credentials.c.sealed).where(
                    and_(job_credentials.c.image_digest == digest, job_credentials.c.expires_at > utcnow())
                )
            ).first()
        return (row.host, bytes(row.sealed)) if row is not None else None

    def drop_credentials(self, digest: str) -> None:
        with self._write() as conn:
            self._drop_credentials(conn, digest)

    def _drop_credentials(self, conn: Connection, digest: str) -> None:
        conn.execute(delete(job_credentials).where(job_credentials.c.image_digest == digest))

    # ------------------------------------------------------------------ workers

    def register_worker(self, worker_id: str, host: str, port: int, max_threads: int) -> None:
        now = utcnow()
        with self._write() as conn:
            conn.execute(delete(workers).where(workers.c.worker_id == worker_id))
            conn.execute(
                insert(workers).values(
                    worker_id=worker_id,
                    host=host,
                    port=port,
                    max_threads=max_threads,
                    busy=0,
                    started_at=now,
                    last_seen=now,
                )
            )

    def worker_heartbeat(self, worker_id: str, busy: int) -> None:
        with self._write() as conn:
            conn.execute(update(workers).where(workers.c.worker_id == worker_id).values(busy=busy, last_seen=utcnow()))

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(workers).where(workers.c.worker_id == worker_id))

    def list_workers(self, stale_after: float = 30.0) -> list[WorkerRecord]:
        """Every registered worker; `status` is "down" when its last heartbeat is older than `stale_after` s."""
        cutoff = utcnow() - datetime.timedelta(seconds=stale_after)
        with self._read() as conn:
            rows = list(conn.execute(select(workers).order_by(workers.c.started_at, workers.c.worker_id)).mappings())
        return [WorkerRecord(**r, status="up" if r["last_seen"] >= cutoff else "down") for r in rows]


def _record(r: RowMapping, tags: dict[str, datetime.datetime]) -> ImageRecord:
    return ImageRecord(
        image_digest=r["image_digest"],
        image_id=r["image_id"],
        parent_digest=r["parent_digest"],
        fulltags=tuple(tags),
        analysis_status=r["analysis_status"],
        image_status=r["image_status"],
        attempts=r["attempts"],
        last_error=r["last_error"],
        created_at=r["created_at"],
        last_updated=r["last_updated"],
        analyzed_at=r["analyzed_at"],
        worker_id=r["worker_id"],
        summary=json.loads(r["summary"]),
        manifest=bytes(r["manifest"]),
        config=bytes(r["config"]),
        source=r["source"],
        tag_detected_at=tags,
    )


def _check_kind(kind: str) -> None:
    if kind not in REPORT_KINDS:
        raise ValueError(f"report kind {kind!r} is not one of {', '.join(REPORT_KINDS)}")


def _redacted(db_url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"


def _sqlite_setup(engine: Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writes (pysqlite's own BEGIN is switched off)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("layerscan_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
