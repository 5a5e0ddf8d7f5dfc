"""The first schema: images, their tags, their reports, and the workers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from layerscan.service.schema import UTCDateTime

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("image_digest", sa.String(80), primary_key=True),
        sa.Column("image_id", sa.String(64), nullable=False),
        sa.Column("parent_digest", sa.String(80), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("analysis_status", sa.String(32), nullable=False),
        sa.Column("image_status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_updated", UTCDateTime, nullable=False),
        sa.Column("analyzed_at", UTCDateTime, nullable=True),
        sa.Column("queued_at", UTCDateTime, nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("lease_token", sa.String(64), nullable=True),
        sa.Column("lease_expires", UTCDateTime, nullable=True),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("manifest", sa.LargeBinary, nullable=False),
        sa.Column("config", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_images_image_id", "images", ["image_id"])
    op.create_index("ix_images_queue", "images", ["analysis_status", "queued_at"])
    op.create_table(
        "image_tags",
        sa.Column("image_digest", sa.String(80), sa.ForeignKey("images.image_digest"), primary_key=True),
        sa.Column("fulltag", sa.String(512), primary_key=True),
        sa.Column("tag_detected_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_image_tags_fulltag", "image_tags", ["fulltag"])
    op.create_table(
        "reports",
        sa.Column("image_digest", sa.String(80), sa.ForeignKey("images.image_digest"), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("max_threads", sa.Integer, nullable=False),
        sa.Column("busy", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("reports")
    op.drop_index("ix_image_tags_fulltag", "image_tags")
    op.drop_table("image_tags")
    op.drop_index("ix_images_queue", "images")
    op.drop_index("ix_images_image_id", "images")
    op.drop_table("images")
