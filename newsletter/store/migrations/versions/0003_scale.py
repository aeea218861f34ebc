"""fleet-wide pacing, partial indexes that page in id order, room for long provider names

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The indexes the sender pages through, replaced: ordered by time *and id* (SQLite indexes end
# with the rowid anyway; PostgreSQL's do not, and without the id it sorts every row due at the
# same instant, often all of them, for each page), and partial. The ledger keeps every email
# ever sent, but the sender only looks for rows still waiting or in flight, and webhooks only
# for rows a provider accepted: rows outside an index's condition cost it nothing to write.
OLD_INDEXES = (
    ("enrolments", "ix_enrolments_next_due_at", ["next_due_at"]),
    ("deliveries", "ix_deliveries_state_next_attempt_at", ["state", "next_attempt_at"]),
    ("deliveries", "ix_deliveries_provider_message_id", ["provider_message_id"]),
)
NEW_INDEXES = (
    (
        "enrolments",
        "ix_enrolments_next_due_at_id",
        ["next_due_at", "id"],
        "next_due_at IS NOT NULL",
    ),
    ("deliveries", "ix_deliveries_due", ["next_attempt_at", "id"], "state = 'due'"),
    (
        "deliveries",
        "ix_deliveries_in_flight",
        ["state"],
        "state = 'sending' OR state = 'uncertain'",
    ),
    (
        "deliveries",
        "ix_deliveries_provider_message_id",
        ["provider_message_id"],
        "provider_message_id IS NOT NULL",
    ),
)
# Provider names may be a dotted path ("package.module:Class", 100 characters and more).
# SQLite does not enforce VARCHAR lengths, so only PostgreSQL needs the change.
WIDENED = (("deliveries", "provider"), ("events", "source"), ("suppressions", "source"))


def upgrade() -> None:
    op.create_table(
        "pacing",
        sa.Column("provider", sa.String(length=200), nullable=False),
        sa.Column("next_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_pacing")),
    )
    for table, name, _columns in OLD_INDEXES:
        op.drop_index(name, table_name=table)
    for table, name, columns, condition in NEW_INDEXES:
        where = sa.text(condition)
        op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)
    if op.get_bind().dialect.name == "postgresql":
        for table, column in WIDENED:
            op.alter_column(
                table, column, type_=sa.String(length=200), existing_type=sa.String(length=32)
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in WIDENED:
            op.alter_column(
                table, column, type_=sa.String(length=32), existing_type=sa.String(length=200)
            )
    for table, name, _columns, _condition in NEW_INDEXES:
        op.drop_index(name, table_name=table)
    for table, name, columns in OLD_INDEXES:
        op.create_index(name, table, columns)
    op.drop_table("pacing")
