"""deliveries 'in_flight'; seen_messages.words

A delivery is ``in_flight`` once its request may have been written (a committed write just
before it is): only those rows of a run that died can be ``uncertain``; a row that was claimed
but never put in flight goes back to ``due``. The partial index of the rows claimed, in flight
or uncertain takes the new state in.

``seen_messages.words``: the text of each message the sender has seen, so that the resend guard
recognises a lesson whose id changed along with a few of its words (NULL for the ids seen before;
filled in when they are seen again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_deliveries_in_flight"
OLD_CONDITION = "state = 'sending' OR state = 'uncertain'"
NEW_CONDITION = "state = 'sending' OR state = 'in_flight' OR state = 'uncertain'"
deliveries = sa.table("deliveries", sa.column("state", sa.String))


def _index(condition: str) -> None:
    op.drop_index(INDEX, table_name="deliveries")
    where = sa.text(condition)
    op.create_index(INDEX, "deliveries", ["state"], sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    _index(NEW_CONDITION)
    with op.batch_alter_table("seen_messages") as batch:
        batch.add_column(sa.Column("words", sa.Text(), nullable=True))


def downgrade() -> None:
    # The older code reaps rows left in 'sending' as it did every claimed row: uncertain (or
    # retried through an idempotent provider).
    op.execute(
        sa.update(deliveries).where(deliveries.c.state == "in_flight").values(state="sending")
    )
    _index(OLD_CONDITION)
    with op.batch_alter_table("seen_messages") as batch:
        batch.drop_column("words")
