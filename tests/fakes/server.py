"""What the fake provider APIs stand on: a loopback HTTP server (pytest-httpserver, plain or
threaded), answers as the providers shape them, and ``FakeAPI``, the base of each provider's
fake (``resend.py``, ``brevo.py``, ``ses.py``, and for the account check ``postmark.py``,
``sendgrid.py``, ``mailgun.py``): routes installed on a server, every request
kept, what a request got wrong kept in ``problems``, and faults played one per request.

The real provider classes talk to these over real HTTP, exactly as to the real services.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers, content_type="application/json")


# What a proxy in front of a provider answers when the provider is down.
HTML_502 = Response(
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
    "<hr><center>nginx</center></body></html>",
    502,
    content_type="text/html",
)


class Recorder:
    """A request handler answering from a list of responses (the last one repeats), keeping
    every request it saw: the simplest fake, for one endpoint."""

    def __init__(self, *responses: Response | Callable[[Request], Response]):
        self.responses = list(responses)
        self.requests: list[Request] = []
        self.bodies: list[Any] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        data = request.get_data()
        try:
            self.bodies.append(json.loads(data) if data else None)
        except ValueError:
            self.bodies.append(data)
        answer = self.responses[min(len(self.requests), len(self.responses)) - 1]
        return answer(request) if callable(answer) and not isinstance(answer, Response) else answer  # type: ignore[return-value]


class ThreadedServer:
    """pytest-httpserver handling each request in its own thread, so a request that is held
    (to make the client time out) does not block the retry that follows it."""

    def __init__(self) -> None:
        self.server = HTTPServer(threaded=True)

    def __enter__(self) -> HTTPServer:
        self.server.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()


def threaded_server() -> Iterator[HTTPServer]:
    """Body of a fixture: ``yield from threaded_server()``."""
    with ThreadedServer() as server:
        yield server


@dataclass
class Hold:
    """Hold a request until ``release`` is set: after processing it (the answer is lost on the
    way: the client times out or dies), or before (the provider is still processing it)."""

    release: threading.Event
    processed: bool = True


# A fault played on one request, in arrival order: answer this instead of processing it,
# process it and answer only after this many seconds, or hold it.
Fault = Response | float | Hold


@dataclass(kw_only=True)
class FakeAPI:
    """Base of the fake provider APIs. A subclass lists its ``routes`` (path, method, name of
    the handler method) and calls ``arrived`` first thing in each handler."""

    # A path, or a pattern for paths with an id in them (``/v4/domains/{name}``).
    routes: ClassVar[tuple[tuple[str | re.Pattern[str], str, str], ...]] = ()

    faults: list[Fault] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, server: HTTPServer) -> Self:
        for path, method, handler in self.routes:
            server.expect_request(path, method=method).respond_with_handler(getattr(self, handler))
        return self

    def arrived(self, request: Request, *, faulty: bool = True) -> Fault | None:
        """Keep ``request``; the next fault to play on it (None: behave), when ``faulty``."""
        with self._lock:
            self.requests.append(request)
            return self.faults.pop(0) if faulty and self.faults else None
