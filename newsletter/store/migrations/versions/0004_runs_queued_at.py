"""runs.queued_at: when a send run finished queueing

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.store.schema

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: an in-place ALTER TABLE on both databases.
    queued_at = newsletter.store.schema.UTCDateTime(timezone=True)
    op.add_column("runs", sa.Column("queued_at", queued_at, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite rebuilds the table
        batch.drop_column("queued_at")
