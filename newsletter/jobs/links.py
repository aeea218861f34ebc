"""`newsletter check --links`: every external link of every email and archive page, fetched.

Links are read from the rendered emails (as the sample subscriber gets them) and from the
archive pages (`build-archive`), so those in templates and front matter count too. Each
address is fetched once per run, however many emails carry it (the in-memory ``fetched`` map
is the cache; nothing is kept between runs, so a fixed link is seen fixed at once), by a pool of
threads, with a timeout: ``HEAD`` first, and ``GET`` where ``HEAD`` gets an error (some sites
refuse ``HEAD`` with 405, 403 or 404 while the page is fine). Redirects are followed, to tell a
moved page from a dead one.

Reported, by file and line (the content file that spells the link out, else the template):
broken links (no answer, or 400 and up) as errors; redirects to another host and plain http
as warnings. Links to ``base_url`` are left to `newsletter preflight`.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests

from newsletter.core.errors import ContentError, RenderError
from newsletter.core.links import Fetched, Site, external_links, link_problems, locate
from newsletter.core.message import Message
from newsletter.files.folders import walk
from newsletter.jobs.archive import public_page
from newsletter.jobs.problem import Problem
from newsletter.project import Project
from newsletter.render.renderer import sample_recipient

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds to connect, and again to read
WORKERS = 8
USER_AGENT = "newsletter-link-check"
Fetch = Callable[[str], Fetched]


def check_links(
    project: Project, *, timeout: float = TIMEOUT, workers: int = WORKERS
) -> list[Problem]:
    """One problem per broken, moved or plain-http link, at each place it is written."""
    try:
        project.validate()
    except ContentError:
        return []  # `check` reports those; there is nothing to render
    sites = link_sites(project)
    with Fetcher(timeout) as fetch:
        fetched = fetch_all(sites, fetch, workers)
    problems = []
    for url, where in sites.items():
        for problem in link_problems(fetched[url]):
            for site in where:
                problems.append(Problem(str(site), problem.what, problem.fix, problem.severity))
    return sorted(problems, key=lambda p: _order(p.path))


def link_sites(project: Project) -> dict[str, list[Site]]:
    """Each external link → where it is written (each place once)."""
    own_host = urlsplit(project.settings.base_url).hostname or ""
    templates = _texts(project, walk(project.settings.templates_dir))
    found: dict[str, dict[Site, None]] = defaultdict(dict)
    for message in project.content.messages:
        sources = [*_texts(project, [message.path]), *templates]
        for url in _message_links(project, message, own_host):
            site = locate(url, sources) or Site(_relative(project, message.path))
            found[url].setdefault(site)
    return {url: list(where) for url, where in found.items()}


def _message_links(project: Project, message: Message, own_host: str) -> list[str]:
    """The message's external links in the email and on its archive page."""
    try:
        compiled = project.renderer.compile(message.id)
    except RenderError:
        return []  # `check` reports it
    email = compiled.personalise(sample_recipient(project.settings, None, message)).html
    page = public_page(project, project.renderer, message)
    return list(dict.fromkeys(external_links(email, own_host) + external_links(page, own_host)))


def _texts(project: Project, paths: Iterable[Path]) -> list[tuple[str, str]]:
    texts = []
    for path in paths:
        try:
            texts.append((_relative(project, path), project.folders.check(path).read_text("utf-8")))
        except (ContentError, OSError, UnicodeDecodeError):
            continue  # reported by `check` itself; here it only cannot say where a link is
    return texts


def _relative(project: Project, path: Path) -> str:
    root = project.settings.project_dir
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _order(site: str) -> tuple[str, int]:
    path, _, line = site.rpartition(":")
    return (path, int(line)) if line.isdigit() else (site, 0)


def fetch_all(urls: Iterable[str], fetch: Fetch, workers: int) -> dict[str, Fetched]:
    """Every address fetched once, ``workers`` at a time."""
    unique = list(dict.fromkeys(urls))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(unique) or 1))) as pool:
        return dict(zip(unique, pool.map(fetch, unique), strict=True))


class Fetcher:
    """Fetches one address; one ``requests`` session per thread (sessions are not thread-safe)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        for session in self._sessions:
            session.close()

    def __call__(self, url: str) -> Fetched:
        session = self._session()
        try:
            answer = self._head_then_get(session, url)
        except requests.exceptions.SSLError:
            return Fetched(url, error="TLS failed (an invalid or expired certificate?)")
        except requests.exceptions.Timeout:
            return Fetched(url, error=f"no answer within {self.timeout:g} s")
        except requests.exceptions.TooManyRedirects:
            return Fetched(url, error="too many redirects")
        except requests.exceptions.RequestException as err:
            log.debug("fetching %s: %s", url, err)
            return Fetched(url, error="could not connect")
        return Fetched(url, answer.status_code, answer.url)

    def _head_then_get(self, session: requests.Session, url: str) -> requests.Response:
        answer = session.head(url, timeout=self.timeout, allow_redirects=True)
        if answer.status_code >= 400:
            # Refused HEAD (405, 501, and some sites' 403 or 404): ask the way a browser does.
            answer = session.get(url, timeout=self.timeout, allow_redirects=True, stream=True)
            answer.close()  # the status is all we need, not the body
        return answer

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            with self._lock:
                self._sessions.append(session)
        return session
