"""Reading the moments providers send, in every form they use (core/timestamps.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsletter.core.timestamps import parse_timestamp

TEN = datetime(2026, 12, 20, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1796000000.5, datetime.fromtimestamp(1796000000.5, UTC)),  # SES, SendGrid: epoch
        (1796000000, datetime.fromtimestamp(1796000000, UTC)),
        ("2026-12-20T10:00:00Z", TEN),  # ISO 8601 with Z
        ("2026-12-20T11:00:00+01:00", TEN),  # an offset: converted to UTC
        ("2026-12-20 10:00:00.000+00", TEN),  # Resend: a bare "+00"
        ("2026-12-20T10:00:00", TEN),  # no offset: UTC
        ("2026-12-20", datetime(2026, 12, 20, tzinfo=UTC)),  # Brevo: sometimes only a day
        ("Sun, 20 Dec 2026 10:00:00 UTC", TEN),  # Mailgun: RFC 2822
        ("Sun, 20 Dec 2026 05:00:00 -0500", TEN),
        (None, None),
        ("", None),
        ("soon", None),
        (True, None),  # JSON true is no moment
        (1e20, None),  # out of range
    ],
)
def test_every_form_reads_as_aware_utc(value: object, expected: datetime | None) -> None:
    got = parse_timestamp(value)
    assert got == expected
    if got is not None:
        assert got.utcoffset() is not None and got.tzinfo == UTC
