"""What every HTTP API provider shares: one session, timeouts, pacing, retries, status handling.

A provider subclass keeps three steps apart (as django-anymail does):

* ``build_requests(emails)`` — pure: the request(s) for a batch, easy to test field by field;
* ``HTTPProvider.call`` — the network: pacing, 429 with Retry-After, 5xx and connection retries;
* ``parse_response(call, response)`` — the provider's answer as one ``SendResult`` per email.

What is safe to retry depends on whether the request may have reached the provider. A refused
connection or a connect timeout never did, so it is retried, and when it keeps failing the
batch is handed back untouched (``RequestNotSent``), as is a request that could not even be
built (a setting with a character HTTP does not allow). A read timeout or a connection dropped
mid-answer may have been delivered: for providers with idempotency keys that is still safe to
retry (the key makes it exactly-once); for the others the emails become ``uncertain``.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import random
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth

from newsletter import __version__
from newsletter.config import Settings
from newsletter.core.email import Outcome, OutgoingEmail, SendResult
from newsletter.core.errors import NewsletterError, ProviderAuthError, ProviderError, RequestNotSent
from newsletter.providers.base import Provider
from newsletter.providers.scrub import Scrubber

log = logging.getLogger(__name__)

USER_AGENT = f"newsletter/{__version__} (+https://github.com/newsletter)"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 4  # per request, for 5xx and connection errors
MAX_RATE_LIMIT_WAITS = 8  # per request, for 429s
MAX_WAIT_SECONDS = 120.0  # never sleep longer than this for one 429
# Session headers that carry a credential (Bearer tokens, Postmark's, Brevo's, generic ones).
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-postmark-server-token", "api-key", "x-api-key", "x-auth-token"}
)


@dataclass
class Call:
    """One HTTP request to the provider, for the emails it carries."""

    method: str
    path: str  # appended to the API base URL
    emails: Sequence[OutgoingEmail]
    json: Any = None
    data: Any = None  # form fields (Mailgun)
    files: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Pacer:
    """Client-side pacing: at most ``rate`` requests per second from this process.

    Several processes sending through one account each need a share of the provider's limit;
    ``newsletter.jobs.pacing`` has a pacer shared through the database for that.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        # No early return when unpaced: a hold() after a 429 must still be waited out.
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)

    def hold(self, seconds: float) -> None:
        """The provider asked us to back off: nobody in this process sends before then."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


class HTTPProvider(Provider):
    """Base of the providers that speak HTTP. Subclasses fill in the class attributes and the
    two pure steps."""

    # Settings attribute names that hold the base URL and the key (for error messages).
    default_api_url: ClassVar[str]
    key_env_var: ClassVar[str]
    default_rate: ClassVar[float | None] = None  # requests per second; None = unpaced
    # True when repeating the very same request cannot deliver twice (it carries an idempotency
    # key) although the provider is not ``idempotent`` across runs (its keys expire, or a later
    # run may batch the emails differently): a read timeout is then retried, not "uncertain".
    repeatable: ClassVar[bool] = False

    def __init__(
        self,
        settings: Settings,
        *,
        api_url: str,
        rate: float | None = None,
        session: requests.Session | None = None,
        pacer: Pacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(settings)
        self.api_url = api_url.rstrip("/")
        self.session = session or _new_session()
        self.pacer = pacer or Pacer(rate if rate is not None else self.default_rate, sleep=sleep)
        self._sleep = sleep

    # -- to implement ----------------------------------------------------------------------

    @abstractmethod
    def build_requests(self, emails: Sequence[OutgoingEmail]) -> list[Call]:
        """The HTTP requests that send ``emails`` (one per provider batch)."""

    @abstractmethod
    def parse_response(self, call: Call, response: requests.Response) -> list[SendResult]:
        """One result per email of ``call``, from the provider's answer to it."""

    def auth(self) -> Any:
        """requests' ``auth=`` argument, for providers that use HTTP Basic or a signer."""
        return None

    def secret_values(self) -> list[str]:
        """Every credential this provider holds, kept out of error text by ``scrubber``.

        By default what goes on the wire: the values of the session's credential headers (and
        the token of ``Bearer <token>``) and HTTP Basic ``user:password`` and password. A
        provider that holds others (a signer's secret key) adds them."""
        found = [
            str(value)
            for name, value in self.session.headers.items()
            if name.lower() in CREDENTIAL_HEADERS and value
        ]
        found += [value.split(" ", 1)[1] for value in found if " " in value]
        auth = self.auth()
        if isinstance(auth, HTTPBasicAuth):
            auth = (auth.username, auth.password)
        if isinstance(auth, tuple) and len(auth) == 2:
            found += [f"{auth[0]}:{auth[1]}", str(auth[1])]
        return found

    def scrubber(self) -> Scrubber:
        # Built when needed, not once: credentials from a provider chain (AWS) may rotate.
        return Scrubber.of(self.secret_values())

    # -- shared ----------------------------------------------------------------------------

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Every request of the batch (see ``Provider.send_batch``); no credential in any
        error it returns or raises, whatever a subclass built them from."""
        try:
            results = self._send_batch(emails)
        except ProviderError as err:
            scrub = self.scrubber()
            scrub.error(err)
            if isinstance(err, RequestNotSent):  # the earlier requests' answers, kept
                err.answered = [scrub.result(r) for r in err.answered]
            raise
        scrub = self.scrubber()
        return [scrub.result(r) for r in results]

    def _send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        results: list[SendResult] = []
        for call in self._build(emails):
            try:
                results.extend(self.call(call))
            except RequestNotSent as err:
                # The earlier requests of the batch did go out: their answers must be kept.
                raise RequestNotSent(str(err), answered=results) from err
            except ProviderAuthError as err:
                if not results:
                    raise
                # Earlier requests of this batch were accepted: raising would hand them back to
                # the ledger as unsent. Record them; the rest waits, and the next batch meets
                # the same refusal and stops the run.
                answered = {r.delivery_id for r in results}
                results.extend(
                    SendResult(e.delivery_id, "retry", error=str(err))
                    for e in emails
                    if e.delivery_id not in answered
                )
                break
        return results

    def _build(self, emails: Sequence[OutgoingEmail]) -> list[Call]:
        try:
            return self.build_requests(emails)
        except NewsletterError:  # a refusal of ours (UnsupportedFeature…) says what is wrong
            raise
        except Exception as err:  # nothing has left this machine: the emails are handed back
            log.debug("%s: building the request failed", self.name, exc_info=True)
            raise RequestNotSent(
                f"{self.name}: the request could not be built ({type(err).__name__})"
            ) from err

    def call(self, call: Call) -> list[SendResult]:
        """Send one request, retrying what is safe to retry; one result per email, with no
        credential in its error text (nor in a ProviderError raised). Raises
        ``RequestNotSent`` when the request cannot have reached the provider."""
        try:
            results = self._call(call)
        except ProviderError as err:
            self.scrubber().error(err)
            raise
        scrub = self.scrubber()
        return [scrub.result(r) for r in results]

    def _call(self, call: Call) -> list[SendResult]:
        attempts = rate_waits = 0
        while True:
            self.pacer.wait()
            try:
                response = self._request(call)
            except requests.RequestException as err:
                attempts += 1
                never_arrived = _never_arrived(err)
                if not never_arrived and not (self.idempotent or self.repeatable):
                    return all_results(
                        call, "uncertain", f"{self.name}: no answer ({_reason(err)})"
                    )
                if attempts >= MAX_ATTEMPTS:
                    if never_arrived:
                        raise RequestNotSent(
                            f"{self.name}: could not connect to {_shown(self.api_url)} "
                            f"({_reason(err)})"
                        ) from None
                    return all_results(call, "retry", f"{self.name}: {_reason(err)}")
                self._backoff(attempts)
                continue
            status = response.status_code
            self._check_credentials(response)
            if status == 429:
                rate_waits += 1
                if rate_waits > MAX_RATE_LIMIT_WAITS:
                    return all_results(call, "retry", f"{self.name}: still rate limited (HTTP 429)")
                self._wait_for_rate_limit(response, rate_waits)
                continue
            if status >= 500:
                attempts += 1
                if attempts >= MAX_ATTEMPTS:
                    detail = response.text[:200]
                    return all_results(call, "retry", f"{self.name}: HTTP {status}: {detail}")
                self._backoff(attempts)
                continue
            return self.parse_response(call, response)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a JSON document (a suppression list page…) with the same pacing, credentials
        check and 429 handling as sending. Reads are always safe to retry. ``path`` is appended
        to the API base URL. Raises ``ProviderError`` (scrubbed) when no usable answer came."""
        try:
            return self._get_json(path, params)
        except ProviderError as err:
            self.scrubber().error(err)
            raise

    def _get_json(self, path: str, params: Mapping[str, Any] | None) -> Any:
        where = path.partition("?")[0]  # a query (a paging link) may hold an address
        attempts = rate_waits = 0
        while True:
            self.pacer.wait()
            log.info("%s GET %s", self.name, where)
            prepared = self._prepare(requests.Request("GET", self.api_url + path, params=params))
            try:
                response = self._send(prepared)
            except requests.RequestException as err:
                attempts += 1
                if attempts >= MAX_ATTEMPTS:
                    raise ProviderError(f"{self.name}: GET {where}: {_reason(err)}") from None
                self._backoff(attempts)
                continue
            status = response.status_code
            self._check_credentials(response)
            if status == 429 and rate_waits < MAX_RATE_LIMIT_WAITS:
                rate_waits += 1
                self._wait_for_rate_limit(response, rate_waits)
                continue
            if status >= 500 and attempts + 1 < MAX_ATTEMPTS:
                attempts += 1
                self._backoff(attempts)
                continue
            body = json_body(response) if status < 400 else None
            if body is None:
                raise ProviderError(
                    f"{self.name}: GET {where}: HTTP {status}: {response.text[:200]}",
                    status=status,
                    body=response.text[:500],
                )
            return body

    def _check_credentials(self, response: requests.Response) -> None:
        if response.status_code in (401, 403):
            raise ProviderAuthError(
                f"{self.name} refused the credentials (HTTP {response.status_code}): check "
                f"{self.key_env_var}",
                status=response.status_code,
                body=response.text[:500],
            )

    def _request(self, call: Call) -> requests.Response:
        log.info("%s %s %s (%d emails)", self.name, call.method, call.path, len(call.emails))
        request = requests.Request(
            call.method,
            self.api_url + call.path,
            json=call.json,
            data=call.data,
            files=call.files,
            headers=call.headers,
        )
        return self._send(self._prepare(request))

    def _prepare(self, request: requests.Request) -> requests.PreparedRequest:
        """The request as it would go on the wire (session headers, auth and signature added).

        Apart from sending (what ``Session.request`` does in one step), because whatever fails
        here (a header value with a leading space or a line break, a malformed URL, a signer
        error) fails before anything was written to the network."""
        request.auth = self.auth()
        try:
            return self.session.prepare_request(request)
        except Exception as err:
            # Never the exception's text: requests quotes the offending header value (a key).
            log.debug("%s: preparing the request failed: %s", self.name, type(err).__name__)
            raise RequestNotSent(
                f"{self.name}: the request could not be built ({type(err).__name__}): check "
                f"{self.key_env_var} and the API URL for spaces or control characters"
            ) from None

    def _send(self, prepared: requests.PreparedRequest) -> requests.Response:
        # As Session.request does: proxies and certificates from the environment (REQUESTS_CA…).
        settings = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
        return self.session.send(prepared, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **settings)

    def _backoff(self, attempt: int) -> None:
        # Exponential with full jitter, so a fleet of workers does not retry in lockstep.
        self._sleep(random.uniform(0, min(8.0, 0.5 * 2**attempt)))

    def _wait_for_rate_limit(self, response: requests.Response, attempt: int) -> None:
        wait = retry_after_seconds(response.headers)
        if wait is None:
            wait = min(MAX_WAIT_SECONDS, 2.0**attempt)
        wait = min(MAX_WAIT_SECONDS, wait) + random.uniform(0, 0.25)
        # INFO, not WARNING: a 429 waited out is part of a successful run, and cron mails
        # whatever reaches stderr; one that never ends is reported as an error by the run.
        log.info("%s: rate limited, waiting %.1f s", self.name, wait)
        self.pacer.hold(wait)

    def close(self) -> None:
        self.session.close()


def retry_after_seconds(headers: Any, now: Callable[[], float] = time.time) -> float | None:
    """How long the provider asked us to wait, from whichever header it uses.

    ``Retry-After`` (seconds or an HTTP date), ``X-RateLimit-Reset`` (SendGrid: epoch seconds),
    ``ratelimit-reset`` (Resend: seconds) and ``x-sib-ratelimit-reset`` (Brevo: seconds).
    """
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                parsed = None  # garbage: fall through to the other headers
            if parsed is not None:
                if parsed.tzinfo is None:  # "-0000": UTC by RFC 5322
                    parsed = parsed.replace(tzinfo=datetime.UTC)
                return max(0.0, parsed.timestamp() - now())
    for name in ("ratelimit-reset", "x-sib-ratelimit-reset", "X-RateLimit-Reset"):
        value = headers.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        # An epoch timestamp is far larger than any sane wait in seconds.
        return max(0.0, number - now()) if number > 1e9 else max(0.0, number)
    return None


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or None when the body is not JSON (a proxy's HTML error page…)."""
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def all_results(call: Call, outcome: Outcome, error: str) -> list[SendResult]:
    """The same outcome for every email in ``call``: the request as a whole succeeded or failed."""
    return [SendResult(e.delivery_id, outcome, error=error) for e in call.emails]


def excerpt(response: requests.Response) -> str:
    """The start of a response body on one line, for an error message."""
    return " ".join(response.text[:200].split())


def as_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment``, read as UTC when the provider sent it without an offset."""
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _never_arrived(err: requests.RequestException) -> bool:
    """True when the request certainly did not reach the provider."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    if isinstance(err, requests.ConnectionError):
        text = repr(err)
        return any(
            s in text for s in ("NewConnectionError", "Connection refused", "NameResolution")
        )
    return False


def _shown(url: str) -> str:
    """``url`` without any user:password part, for a message."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _reason(err: Exception) -> str:
    return type(err).__name__


def _new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    # A pool as large as the batch concurrency we could ever use; no urllib3-level retries:
    # every retry decision is made above, where we know whether it is safe.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
