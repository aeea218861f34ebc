"""practice: the days a subscriber did today's session (one row per subscriber per local day)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.store.schema

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = newsletter.store.schema.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "practice",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("subscriber_id", ID, nullable=False),
        sa.Column("course", sa.String(length=80), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_practice_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice")),
        sa.UniqueConstraint(
            "subscriber_id", "local_day", name=op.f("uq_practice_subscriber_id_local_day")
        ),
    )


def downgrade() -> None:
    op.drop_table("practice")
