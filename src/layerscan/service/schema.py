"""The service's tables, in SQLAlchemy Core. Alembic migrations (migrations/versions) create them;
this module is what the code queries, and a migration test checks the two agree."""

from __future__ import annotations

import datetime

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime.datetime]):
    """Aware UTC datetimes on every backend: SQLite keeps naive text, so it is stored as UTC and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime.datetime | None, dialect: Dialect) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        value = value.astimezone(datetime.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime.datetime | None, dialect: Dialect) -> datetime.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)


metadata = MetaData()

images = Table(
    "images",
    metadata,
    Column("image_digest", String(80), primary_key=True),  # the manifest digest, "sha256:<hex>"
    Column("image_id", String(64), nullable=False, index=True),  # the config digest's hex
    Column("parent_digest", String(80), nullable=False),
    Column("source", Text, nullable=False),  # the spec a worker analyzes
    Column("analysis_status", String(32), nullable=False),
    Column("image_status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),  # claims since it was last queued
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_updated", UTCDateTime, nullable=False),
    Column("analyzed_at", UTCDateTime, nullable=True),
    Column("queued_at", UTCDateTime, nullable=False),  # the queue's order
    Column("worker_id", String(128), nullable=True),
    Column("lease_token", String(64), nullable=True),  # which claim owns the job; a stale claim cannot complete
    Column("lease_expires", UTCDateTime, nullable=True),
    Column("summary", Text, nullable=False, default="{}"),  # JSON object of counts
    Column("manifest", LargeBinary, nullable=False),
    Column("config", LargeBinary, nullable=False),
)
Index("ix_images_queue", images.c.analysis_status, images.c.queued_at)

image_tags = Table(
    "image_tags",
    metadata,
    Column("image_digest", String(80), ForeignKey("images.image_digest"), primary_key=True),
    Column("fulltag", String(512), primary_key=True),  # "registry/repo:tag"
    Column("tag_detected_at", UTCDateTime, nullable=False),
)
Index("ix_image_tags_fulltag", image_tags.c.fulltag)

reports = Table(
    "reports",
    metadata,
    Column("image_digest", String(80), ForeignKey("images.image_digest"), primary_key=True),
    Column("kind", String(32), primary_key=True),  # "anchore" | "layerscan"
    Column("data", LargeBinary, nullable=False),  # zstd
    Column("size", Integer, nullable=False),  # uncompressed bytes
    Column("created_at", UTCDateTime, nullable=False),
)

# Registry credentials a scan request handed over (Harbor's), sealed with the service's key
# (job_credentials.py) for the worker that takes the job; deleted when the job ends.
job_credentials = Table(
    "job_credentials",
    metadata,
    Column("image_digest", String(80), primary_key=True),  # no foreign key: written before the image is
    Column("host", String(255), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(128), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("max_threads", Integer, nullable=False),
    Column("busy", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
)
