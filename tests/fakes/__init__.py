"""The fakes the tests send through, in one family.

Over real HTTP on loopback, so the real provider classes talk to them exactly as to the real
services:

* ``server.py`` — what every fake API stands on: pytest-httpserver (plain or threaded),
  ``Recorder`` for a one-endpoint fake, answers shaped as providers shape them, and ``FakeAPI``,
  the base of the provider fakes below (routes, every request kept, ``problems``, ``faults``);
* ``resend.py``, ``brevo.py``, ``ses.py`` — each provider's API as documented: requests checked
  against its schema or service model, idempotency keys honoured as the provider does; with the
  read-only endpoints of the account check (`newsletter preflight`);
* ``postmark.py``, ``sendgrid.py``, ``mailgun.py`` — those providers' account-check endpoints
  (their sending endpoints are faked in their test modules, one endpoint each);
* ``sockets.py`` — Postmark and Resend for the reliability suite's child processes, on a raw
  socket server: faults only a socket can play (a reset connection, a body cut short, a process
  killed while its request is at the provider);
* ``webhooks.py`` — the other direction: each provider's webhook requests, signed as it signs.

In the process, no HTTP:

* ``memory.py`` — ``MemoryProvider`` (``NEWSLETTER_PROVIDER=memory`` in tests only);
* ``inprocess.py`` — providers for `newsletter send` in child processes, chosen with
  ``NEWSLETTER_PROVIDER=tests.fakes:<Class>`` (hence their names here).

``benchmarks/fake_postmark.py`` stays with the benchmarks, which cannot import the tests;
``tests/senders.py`` drives it for the tests that run several senders.
"""

from tests.fakes.inprocess import (
    AppendLogProvider,
    HangingIdempotentProvider,
    HangingProvider,
    InterruptedIdempotentProvider,
    InterruptedProvider,
    SmallBatchPostmark,
    delivered,
)

__all__ = [
    "AppendLogProvider",
    "HangingIdempotentProvider",
    "HangingProvider",
    "InterruptedIdempotentProvider",
    "InterruptedProvider",
    "SmallBatchPostmark",
    "delivered",
]
