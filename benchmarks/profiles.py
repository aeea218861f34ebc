"""Where the time goes (issue 16, item 8): one send path run in this process under pyinstrument,
summed up in a few lines for docs/benchmarks.md.

    python benchmarks/profiles.py PATH URL [--limit N]

PATH is one of ``PATHS``; URL the database (the suite gives a synthetic SQLite one). The
provider is the one the environment configures (NEWSLETTER_PROVIDER and its settings, as for
`newsletter send`; the suite points them at its fakes), except for ``dry-run`` and
``no-transport`` (workloads.py's provider that accepts everything at once). Prints the top
functions by cumulative time (the run itself, what wraps it and what only passes a call on
left out) and by their own time, each as a share of the whole run.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.frame import Frame
from synthetic import NOW  # benchmarks/ is on sys.path when run as a script
from workloads import Accepting

from newsletter.config import load_settings
from newsletter.jobs.sending import SendOptions, SendRun
from newsletter.project import Project
from newsletter.providers import get_provider
from newsletter.providers.base import Provider
from newsletter.store import Store

REPO = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789abcdef"
PATHS = ("dry-run", "no-transport", "postmark", "file", "ses", "sendgrid", "mailgun")
CUMULATIVE = 8  # lines of the top functions by cumulative time
OWN = 5  # lines of the top functions by their own time
WRAPPER = 0.95  # a function holding more of the run than this only wraps it: left out
# A function whose time is almost all one callee's only passes the call on: the callee's line
# says the same, so the caller's is left out (a chain of such wrappers would fill the lines).
PASS_ON = 0.95


@dataclass
class Line:
    name: str  # function (file:line)
    total: float  # seconds with the function on the stack, each stack counted once
    own: float  # seconds in the function itself
    passed_on: float = 0.0  # seconds of calls that went almost all to one callee

    def passes_on(self) -> bool:
        return self.passed_on >= PASS_ON * self.total


def profile(path: str, url: str, limit: int | None) -> tuple[float, int, Frame | None]:
    """Seconds, emails and the call tree of one `send` of ``path``."""
    settings = load_settings(REPO, secret_key=SECRET, database_url=url)
    project = Project(settings)
    provider: Provider = (
        Accepting(settings) if path in ("dry-run", "no-transport") else get_provider(settings)
    )
    run = SendRun(project, Store(url), provider)
    gc.freeze()  # as `newsletter send` does before its run (cli/sending.py)
    profiler = Profiler(interval=0.001)
    profiler.start()
    report = run.run(NOW, SendOptions(limit=limit, dry_run=path == "dry-run"))
    session = profiler.stop()
    assert report.ok, report.summary()
    emails = report.rendered if path == "dry-run" else report.sent
    return session.duration, emails, session.root_frame()


def lines(root: Frame) -> list[Line]:
    """Every function of the tree with its cumulative and own time."""
    found: dict[str, Line] = {}

    def walk(frame: Frame, above: frozenset[str]) -> None:
        name = f"{frame.function} ({frame.code_position_short()})"
        line = found.setdefault(name, Line(name, 0.0, 0.0))
        if name not in above:  # a recursive call is already counted by its caller
            line.total += frame.time
            if any(c.time >= PASS_ON * frame.time for c in frame.children if not c.is_synthetic):
                line.passed_on += frame.time
        for child in frame.children:
            if child.is_synthetic:  # "[self]": the time spent in the frame itself
                line.own += child.time
            else:
                walk(child, above | {name})

    walk(root, frozenset())
    return list(found.values())


def summary(path: str, seconds: float, emails: int, root: Frame | None) -> Iterator[str]:
    yield f"{path}: {emails:,} emails in {seconds:.2f} s under the profiler"
    if root is None or not root.time:
        return
    whole = root.time
    every = lines(root)
    inner = [x for x in every if x.total < WRAPPER * whole and not x.passes_on()]
    yield "  cumulative:"
    for x in sorted(inner, key=lambda x: -x.total)[:CUMULATIVE]:
        yield f"    {x.total / whole:4.0%}  {x.name}"
    yield "  own time:"
    for x in sorted(every, key=lambda x: -x.own)[:OWN]:
        yield f"    {x.own / whole:4.0%}  {x.name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", choices=PATHS)
    parser.add_argument("url", help="the database")
    parser.add_argument("--limit", type=int, default=None, help="send at most this many")
    args = parser.parse_args(argv)
    print("\n".join(summary(args.path, *profile(args.path, args.url, args.limit))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
