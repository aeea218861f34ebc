"""The links of an email: which are external, where each is written, and what a fetch of one
says about it. Pure: the fetching is in jobs/links.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "img": "src"}.get(tag)
        value = dict(attrs).get(wanted) if wanted else None
        if value:
            self.found.append(value.strip())


def external_links(html: str, own_host: str) -> list[str]:
    """Every http(s) link and image of ``html`` on a host other than ``own_host`` (our own
    pages are `preflight`'s business), in order, each once."""
    parser = _Links()
    parser.feed(html)
    found: dict[str, None] = {}
    for url in parser.found:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname and parts.hostname != own_host:
            found.setdefault(url)
    return list(found)


@dataclass(frozen=True)
class Site:
    """Where a link is written: a file of the project, and the line when it is known."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"


def locate(url: str, sources: Sequence[tuple[str, str]]) -> Site | None:
    """The first of ``sources`` ((path, text) pairs) that spells ``url`` out, and its line.
    Markdown percent-encodes some characters of a link, so the decoded form is looked for
    too."""
    for path, text in sources:
        for spelling in dict.fromkeys((url, unquote(url))):
            at = text.find(spelling)
            if at >= 0:
                return Site(path, text.count("\n", 0, at) + 1)
    return None


@dataclass(frozen=True)
class Fetched:
    """What fetching a link found: the final status and address, or why there was none."""

    url: str
    status: int | None = None
    final_url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LinkProblem:
    what: str
    fix: str
    severity: str  # "error" (broken) or "warning"


def link_problems(fetched: Fetched) -> Iterable[LinkProblem]:
    """What is wrong with a link: broken (an error, an answer of 400 or more), moved to another
    host, or plain http."""
    url = fetched.url
    if fetched.error is not None:
        yield LinkProblem(f"broken link {url}: {fetched.error}", "fix or remove it", "error")
    elif fetched.status is not None and fetched.status >= 400:
        yield LinkProblem(
            f"broken link {url}: it answers {fetched.status}", "fix or remove it", "error"
        )
    elif fetched.final_url and _host(fetched.final_url) != _host(url):
        yield LinkProblem(
            f"link {url} redirects to another host: {fetched.final_url}",
            "link to where it leads, if that is the right page",
            "warning",
        )
    if urlsplit(url).scheme == "http":
        yield LinkProblem(f"plain http link {url}", "use https:// if the site has it", "warning")


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
