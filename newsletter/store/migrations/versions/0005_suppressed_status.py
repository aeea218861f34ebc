"""subscribers.status 'suppressed': active or pending subscribers whose address is suppressed

Until now a bounced (or provider-refused, or synced) address left its subscriber ``active``: the
sender skipped them, but `subscribers show`, `list` and `status` said they were active. Such
subscribers become ``suppressed`` and their running courses stop being due, as a suppression
recorded from now on does (``store.suppressions.suppress``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 1000
subscribers = sa.table(
    "subscribers",
    sa.column("id", sa.Integer),
    sa.column("email_key", sa.Text),
    sa.column("status", sa.String),
)
suppressions = sa.table("suppressions", sa.column("email_hash", sa.String))
enrolments = sa.table(
    "enrolments",
    sa.column("subscriber_id", sa.Integer),
    sa.column("next_due_at", sa.DateTime),
    sa.column("completed_at", sa.DateTime),
    sa.column("left_at", sa.DateTime),
)


def upgrade() -> None:
    # Suppressions are kept by the SHA-256 of the address key, which SQL cannot compute on both
    # databases: the subscribers are read a page at a time and hashed here.
    conn = op.get_bind()
    last = 0
    mailable = subscribers.c.status.in_(("active", "pending"))
    query = sa.select(subscribers.c.id, subscribers.c.email_key).where(mailable)
    while rows := conn.execute(
        query.where(subscribers.c.id > last).order_by(subscribers.c.id).limit(PAGE)
    ).all():
        last = rows[-1].id
        by_hash = {hashlib.sha256(r.email_key.encode()).hexdigest(): r.id for r in rows}
        found = sa.select(suppressions.c.email_hash).where(
            suppressions.c.email_hash.in_(list(by_hash))
        )
        ids = [by_hash[h] for h in conn.execute(found).scalars()]
        if ids:
            _suppress(conn, ids)


def _suppress(conn: sa.Connection, ids: list[int]) -> None:
    conn.execute(
        sa.update(subscribers).where(subscribers.c.id.in_(ids)).values(status="suppressed")
    )
    running = sa.and_(
        enrolments.c.subscriber_id.in_(ids),
        enrolments.c.completed_at.is_(None),
        enrolments.c.left_at.is_(None),
    )
    conn.execute(sa.update(enrolments).where(running).values(next_due_at=None))


def downgrade() -> None:
    # The older code skips suppressed addresses whatever their status says.
    op.execute(
        sa.update(subscribers).where(subscribers.c.status == "suppressed").values(status="active")
    )
