"""One error tree for the whole package.

The CLI turns any ``NewsletterError`` into a one-line message on stderr and exit code 1 (2 for a
``ConfigError``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class NewsletterError(Exception):
    """Base of every error a user can cause or fix."""


class ConfigError(NewsletterError):
    """A setting is missing or invalid; the message names the key and its env var."""


class ContentError(NewsletterError):
    """One or more content, template or schedule files are invalid.

    Carries every problem found, so an author fixes them all in one go instead of one per run.
    """

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class RenderError(NewsletterError):
    """A template failed to render; the message names the template file and line."""


class WouldOverwrite(NewsletterError):
    """A file to be created (`init`, `new lesson`) already exists; nothing was written."""


class StoreError(NewsletterError):
    """The subscriber store refused an operation (unknown subscriber, bad state change, …)."""


class ImportProblem(NewsletterError):
    """A CSV import found bad rows; ``problems`` lists each with its line number."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ProviderError(NewsletterError):
    """An email provider answered with an error.

    ``status`` is the HTTP status (None when the request never got an answer) and ``body`` the
    provider's response text, kept for the log and the ledger's ``last_error``.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        self.status = status
        self.body = body
        super().__init__(message)


class ProviderAuthError(ProviderError):
    """The provider rejected our credentials: stop the whole run, retrying cannot help."""


class UnsupportedFeature(ProviderError):
    """The provider cannot do what was asked (e.g. a sandbox mode it does not have)."""


class RequestNotSent(ProviderError):
    """The request never left this machine: it could not be built (a setting holds a character
    HTTP does not allow, a malformed URL) or no connection could be made. None of its emails
    can have arrived, so the sender hands them back untouched instead of guessing.

    ``answered``: the results of the batch's earlier requests, which did reach the provider."""

    def __init__(self, message: str, *, answered: Sequence[Any] = ()):
        super().__init__(message)
        self.answered = list(answered)


class NoAnswer(RequestNotSent):
    """A request of the batch got no answer from a provider without idempotency keys: its
    emails are ``uncertain`` (in ``answered``, with the earlier requests' answers), and the
    batch's later requests were not sent. The sender stops sending through that provider for
    the run: the rest stays due, rather than every email of the run ending uncertain."""
