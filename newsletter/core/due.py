"""What is due: a lesson whose time has come, a retry of an earlier ledger row, or a
broadcast's recipient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DueItem:
    """Something to send now: a lesson whose time has come, or a retry of an earlier row."""

    subscriber_id: int
    email: str
    name: str | None
    timezone: str
    message_id: str
    course: str | None
    position: int | None
    due_at: datetime
    enrolment_id: int | None = None  # set for new lessons
    delivery_id: int | None = None  # set for rows already in the ledger
    broadcast_id: int | None = None
    pin: tuple[str, ...] | None = None  # lesson order to record on an enrolment that has none
