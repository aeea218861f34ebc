"""What every HTTP API provider shares: one session, timeouts, pacing, retries, status handling.

Each provider module keeps three steps apart (django-anymail's split):

* build — pure, easy to test field by field: ``chunks(emails)`` cuts a batch into the emails
  that share one request (the provider's limits and grouping rules), and ``payload(emails)``
  builds that request: method, path, JSON, form or bytes, headers. Every provider names its
  builder ``payload``;
* post — ``HTTPProvider.post``, the network: pacing, 429 with Retry-After, 5xx and connection
  retries, the credentials check;
* parse — ``parse_response(payload, response)``: the answer as one ``SendResult`` per email.

The account check (``account``, for `newsletter preflight`) is the same split for reads: each
provider's ``read_account`` GETs through ``get_json`` and reads the answers with pure
functions; the base turns a refusal or an unreadable answer into a problem of the status and
scrubs every text of it.

What is safe to retry depends on whether the request may have reached the provider. A refused
connection or a connect timeout never did, so it is retried, and when it keeps failing the
batch is handed back untouched (``RequestNotSent``), as is a request that could not even be
built (a setting with a character HTTP does not allow), or one whose turn never came (the
fleet-wide pacer's database failed). A read timeout or a connection dropped mid-answer may have
been delivered: for providers with idempotency keys that is still safe to retry (the key makes
it exactly-once); for the others the emails become ``uncertain``, and the rest of the batch is
not sent (``NoAnswer``): a provider that stops answering does not get every email of the run.

``send_announced`` tells the sender which emails are about to leave, request by request, after
pacing and the moment before the request is written: the ledger records them ``in_flight``
then, so that only emails whose request may have been written can become uncertain.

A batch of several requests keeps up to ``concurrency`` of them in flight at once (inflight.py),
under the same rules: the pacer is thread-safe, and each request is announced, by one thread at
a time, just before it is written.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import requests
from requests.auth import HTTPBasicAuth

from newsletter.config import Settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import (
    NewsletterError,
    NoAnswer,
    ProviderAuthError,
    ProviderError,
    RequestNotSent,
)
from newsletter.providers.base import AccountStatus, InFlight, Issue, Provider
from newsletter.providers.inflight import RequestsInFlight, Withheld, first_error, refused_midway
from newsletter.providers.pacer import Pacer, Pacing
from newsletter.providers.scrub import Scrubber
from newsletter.providers.utils import json_body, json_bytes
from newsletter.providers.wire import (
    Payload,
    all_results,
    never_arrived,
    new_session,
    retry_after_seconds,
    shown_url,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 4  # per request, for 5xx and connection errors
MAX_RATE_LIMIT_WAITS = 8  # per request, for 429s
MAX_WAIT_SECONDS = 120.0  # never sleep longer than this for one 429
# Session headers that carry a credential (Bearer tokens, Postmark's, Brevo's, generic ones).
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-postmark-server-token", "api-key", "x-api-key", "x-auth-token"}
)


class HTTPProvider(Provider):
    """Base of the providers that speak HTTP. Subclasses fill in the class attributes, the
    builder (``payload``, with ``chunks`` when a batch is not simply cut by size) and the
    parser (``parse_response``)."""

    # The variable(s) that hold the credentials, named in error messages.
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
        pacing: Pacing | None = None,
        sleep: Callable[[float], None] = time.sleep,
        concurrency: int | None = None,
    ):
        super().__init__(settings)
        if concurrency is not None:  # else NEWSLETTER_CONCURRENCY or the provider's default
            self.concurrency = concurrency
        self.api_url = api_url.rstrip("/")
        self.session = session or new_session()
        if rate is None:  # NEWSLETTER_RATE_LIMIT, else the provider's own default
            rate = settings.rate_limit if settings.rate_limit is not None else self.default_rate
        # Given at construction, never swapped later: this process's own pace by default.
        self.pacer = pacing(self.name, rate) if pacing else Pacer(rate, sleep=sleep)
        self._sleep = sleep
        # While ``send_announced`` runs: whom to tell, and the emails already announced; the
        # lock makes the requests in flight announce one at a time.
        self._in_flight: InFlight | None = None
        self._announced: set[int] = set()
        self._announcing = threading.Lock()
        # Set when a batch with requests in flight stops: no request of it is written after.
        self._stopping = threading.Event()

    # -- to implement: build and parse ---------------------------------------------------------

    def chunks(self, emails: Sequence[OutgoingEmail]) -> list[Sequence[OutgoingEmail]]:
        """``emails`` cut into the groups that each go in one request: by ``per_request``
        unless the provider has rules of its own (one message per request…)."""
        size = self.emails_per_request()
        return [emails[i : i + size] for i in range(0, len(emails), size)]

    @abstractmethod
    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """The request that sends ``emails`` (one of ``chunks``): pure, no I/O."""

    @abstractmethod
    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        """One result per email of ``payload``, from the provider's answer to it."""

    def auth(self) -> Any:
        """requests' ``auth=`` argument, for providers that use HTTP Basic or a signer."""
        return None

    def read_account(self) -> AccountStatus:
        """The account check's calls and reading (see ``account``): may raise
        ``ProviderError`` for a refusal or an answer without what it needs."""
        return super().account()

    def credentials_refused(self, err: ProviderAuthError) -> Issue:
        """What to say when the account check's credentials are refused (401/403)."""
        return Issue(f"credentials refused (HTTP {err.status})", f"check {self.key_env_var}")

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

    def account(self) -> AccountStatus:
        """``read_account``, never raising for what the provider answered, no credential in
        any text of it (see ``Provider.account``)."""
        try:
            status = self.read_account()
        except ProviderError as err:
            status = AccountStatus.refused(self._unread(err))
        return self.scrubber().status(status)

    def _unread(self, err: ProviderError) -> Issue:
        """Why the account check could not read the account."""
        if isinstance(err, ProviderAuthError) and err.status in (401, 403):
            return self.credentials_refused(err)
        said = " ".join(str(err).split()) or type(err).__name__
        if isinstance(err, ProviderAuthError):  # the provider's own words: the account may not send
            return Issue(said)
        return Issue(
            said, f"check the API URL ({shown_url(self.api_url)}) and the provider's status"
        )

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

    def send_announced(
        self, emails: Sequence[OutgoingEmail], in_flight: InFlight
    ) -> list[SendResult]:
        """``send_batch``, calling ``in_flight`` before each request is written, with the
        emails it carries that were not announced before (a request split after the provider's
        answer carries emails announced already)."""
        self._in_flight, self._announced = in_flight, set()
        try:
            return self.send_batch(emails)
        finally:
            self._in_flight = None

    def _announce(self, payload: Payload, maybe_arrived: bool) -> None:
        with self._announcing:
            fresh = [e for e in payload.emails if e.delivery_id not in self._announced]
            if self._stopping.is_set() and not maybe_arrived and len(fresh) == len(payload.emails):
                # Its batch stopped while it waited for its turn: never written, handed back.
                # (Not a request that may have arrived, nor one re-sending emails announced
                # already: those are in flight, and finish.)
                raise Withheld(f"{self.name}: not sent: the batch was stopped")
            if self._in_flight is None:
                return
            if fresh:
                self._in_flight(fresh)  # raises RequestNotSent when they must not go
                self._announced.update(e.delivery_id for e in fresh)

    def _send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        payloads = self._build(emails)
        self._stopping.clear()
        if self.concurrency > 1 and len(payloads) > 1:
            in_flight = RequestsInFlight(
                self.name, self.post, self._unanswered, self._stopping.set, self.concurrency
            )
            return in_flight.send(payloads, emails)
        return self._send_in_turn(payloads, emails)

    def _send_in_turn(
        self, payloads: Sequence[Payload], emails: Sequence[OutgoingEmail]
    ) -> list[SendResult]:
        """The batch's requests one after another."""
        results: list[SendResult] = []
        for number, payload in enumerate(payloads, start=1):
            try:
                answers = self.post(payload)
            except RequestNotSent as err:
                # The earlier requests of the batch did go out: their answers must be kept.
                raise type(err)(str(err), answered=[*results, *err.answered]) from err
            except ProviderAuthError as err:
                if not results:
                    raise
                return refused_midway(err, results, emails)
            results.extend(answers)
            if number < len(payloads) and self._unanswered(answers):
                # The provider may be hanging: the rest of the batch is not sent (and stays
                # due), rather than each request waiting out its timeout to end uncertain.
                raise NoAnswer(first_error(answers) or f"{self.name}: no answer", answered=results)
        return results

    def _unanswered(self, results: Sequence[SendResult]) -> bool:
        """Whether a request went unanswered in a way that leaves emails uncertain."""
        return not self.idempotent and any(r.outcome == "uncertain" for r in results)

    def build_requests(self, emails: Sequence[OutgoingEmail]) -> list[Payload]:
        """Every request of a batch, built before the first is sent."""
        return [self.payload(chunk) for chunk in self.chunks(emails)]

    def _build(self, emails: Sequence[OutgoingEmail]) -> list[Payload]:
        try:
            return self.build_requests(emails)
        except NewsletterError:  # a refusal of ours (UnsupportedFeature…) says what is wrong
            raise
        except Exception as err:  # nothing has left this machine: the emails are handed back
            log.debug("%s: building the request failed", self.name, exc_info=True)
            raise RequestNotSent(
                f"{self.name}: the request could not be built ({type(err).__name__})"
            ) from err

    def post(self, payload: Payload) -> list[SendResult]:
        """Send one request, retrying what is safe to retry; one result per email, with no
        credential in its error text (nor in a ProviderError raised). Raises
        ``RequestNotSent`` when the request cannot have reached the provider."""
        try:
            results = self._post(payload)
        except ProviderError as err:
            self.scrubber().error(err)
            raise
        scrub = self.scrubber()
        return [scrub.result(r) for r in results]

    def _post(self, payload: Payload) -> list[SendResult]:
        attempts = rate_waits = 0
        # Whether an earlier attempt may have reached the provider and got no answer.
        maybe_arrived = False
        while True:
            given_up = self._take_turn(payload, maybe_arrived, self.pacer.wait)
            if given_up:
                return given_up
            self._announce(payload, maybe_arrived)
            try:
                response = self._request(payload)
            except requests.RequestException as err:
                attempts += 1
                never_left = never_arrived(err)
                if not never_left and not (self.idempotent or self.repeatable):
                    return all_results(
                        payload, "uncertain", f"{self.name}: no answer ({_reason(err)})"
                    )
                maybe_arrived = maybe_arrived or not never_left
                if attempts >= MAX_ATTEMPTS:
                    if not maybe_arrived:
                        raise RequestNotSent(
                            f"{self.name}: could not connect to {shown_url(self.api_url)} "
                            f"({_reason(err)})"
                        ) from None
                    return self._given_up(payload, f"{self.name}: no answer ({_reason(err)})")
                self._backoff(attempts)
                continue
            status = response.status_code
            self._check_credentials(response)
            if status == 429:
                rate_waits += 1
                if rate_waits > MAX_RATE_LIMIT_WAITS:
                    return all_results(
                        payload, "retry", f"{self.name}: still rate limited (HTTP 429)"
                    )
                wait = partial(self._wait_for_rate_limit, response, rate_waits)
                given_up = self._take_turn(payload, maybe_arrived, wait)
                if given_up:
                    return given_up
                continue
            if status >= 500:
                attempts += 1
                if attempts >= MAX_ATTEMPTS:
                    detail = response.text[:200]
                    return all_results(payload, "retry", f"{self.name}: HTTP {status}: {detail}")
                self._backoff(attempts)
                continue
            return self.parse_response(payload, response)

    def _take_turn(
        self, payload: Payload, maybe_arrived: bool, wait: Callable[[], None]
    ) -> list[SendResult]:
        """Wait for the pacer (``wait``). The fleet-wide pacer keeps its schedule in the
        database: if that fails, the request is not written (again) and its emails are handed
        back (``RequestNotSent``), unless an earlier attempt may have arrived: then the answer
        to give up with. Nothing when the turn came."""
        try:
            wait()
        except NewsletterError as err:
            if maybe_arrived:
                return self._given_up(payload, f"{self.name}: no answer, then pacing failed")
            raise RequestNotSent(f"{self.name}: not sent: pacing failed ({err})") from err
        return []

    def _given_up(self, payload: Payload, error: str) -> list[SendResult]:
        """Every attempt at a request that may have arrived got no answer: retried with the
        same key on a later run by an idempotent provider, uncertain for any other (a later
        run would batch the emails differently, under another key)."""
        return all_results(payload, "retry" if self.idempotent else "uncertain", error)

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET a JSON document (a suppression list page…) with the same pacing, credentials
        check and 429 handling as sending. Reads are always safe to retry. ``path`` is appended
        to the API base URL; ``headers`` go with this request only. Raises ``ProviderError``
        (scrubbed) when no usable answer came."""
        try:
            return self._get_json(path, params, headers or {})
        except ProviderError as err:
            self.scrubber().error(err)
            raise

    def _get_json(
        self, path: str, params: Mapping[str, Any] | None, headers: Mapping[str, str]
    ) -> Any:
        where = path.partition("?")[0]  # a query (a paging link) may hold an address
        attempts = rate_waits = 0
        while True:
            self.pacer.wait()
            log.info("%s GET %s", self.name, where)
            request = requests.Request(
                "GET", self.api_url + path, params=params, headers=dict(headers)
            )
            prepared = self._prepare(request)
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

    def _request(self, payload: Payload) -> requests.Response:
        log.info(
            "%s %s %s (%d emails)", self.name, payload.method, payload.path, len(payload.emails)
        )
        data, headers = payload.data, payload.headers
        if payload.json is not None and data is None and payload.files is None:
            data = json_bytes(payload.json)  # as requests' json= would, with a faster encoder
            headers = {"Content-Type": "application/json", **headers}
        request = requests.Request(
            payload.method,
            self.api_url + payload.path,
            data=data,
            files=payload.files,
            headers=headers,
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


def _reason(err: Exception) -> str:
    return type(err).__name__
