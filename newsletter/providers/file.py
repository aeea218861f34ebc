"""The default provider: each email becomes an ``.eml`` file in the outbox folder.

It lets the whole tool run without any provider account (``make demo``), and lets an author
open real messages in a mail client. File names come from the ledger row, and each file is
written to a temporary name and renamed into place, so a retry after a crash rewrites the same
file instead of adding a second one: this provider is idempotent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from newsletter.config import Settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.providers.base import AccountStatus, Provider
from newsletter.providers.mime import build_mime


class FileProvider(Provider):
    name = "file"
    batch_size: ClassVar[int] = 100
    idempotent: ClassVar[bool] = True

    def __init__(self, settings: Settings):
        super().__init__(settings)
        assert settings.outbox_dir is not None
        self.outbox = settings.outbox_dir

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        self.outbox.mkdir(parents=True, exist_ok=True)
        results = []
        for email in emails:
            try:
                path = self._write(email)
            except OSError as err:  # disk full, permissions: try again on a later run
                results.append(SendResult(email.delivery_id, "retry", error=f"outbox: {err}"))
            else:
                results.append(SendResult(email.delivery_id, "sent", path.name))
        return results

    def account(self) -> AccountStatus:
        # No account and no domain: emails are files, so this provider can always "send".
        return AccountStatus(
            summary=f"no account: each email is written to {self.outbox}",
            can_send=True,
            domain_detail="nothing is sent, so no domain is verified",
        )

    def path_for(self, email: OutgoingEmail) -> Path:
        return self.outbox / f"{email.delivery_id:08d}-{email.message_id}.eml"

    def _write(self, email: OutgoingEmail) -> Path:
        data = build_mime(email, self.sender).as_bytes()
        target = self.path_for(email)
        fd, tmp = tempfile.mkstemp(dir=self.outbox, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                # No fsync: a killed process loses nothing (the kernel has the data); only a
                # power cut could, and this provider is for development and demos.
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target
