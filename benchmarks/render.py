"""Benchmark: compile once, personalise many.

Target (issue 2): at least 50,000 personalised messages (HTML + text) per second on one core.
Run from the repository root:

    .venv/bin/python benchmarks/render.py

Measures, over every message of the repository's project:

* compile: Markdown + Jinja + MJML + CSS inlining for one message (mean; templates already
  loaded, as they are for every message after the first of a run);
* compile-once: one compile plus personalising it for N subscribers (default 10,000), each with
  its own name and signed-looking links, HTML and text;
* naive: what compile-once replaces, a full compile per subscriber (measured on a sample).

The process is pinned to one CPU where the OS allows it, so the figure is per core.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path

from markupsafe import escape

from newsletter.config import load_settings
from newsletter.project import Project
from newsletter.render.renderer import Recipient, Renderer, _Filler

REPO = Path(__file__).resolve().parent.parent
TARGET = 50_000


def recipients(count: int, base_url: str) -> list[Recipient]:
    """Distinct subscribers with token-length links and names that need escaping now and then."""
    names = ("Alex", "Sam", "O'Brien", "Zoë", "Jo & Co", "مريم")
    return [
        Recipient(
            first_name=names[i % len(names)],
            unsubscribe_url=f"{base_url}/u/{secrets.token_urlsafe(32)}",
            manage_url=f"{base_url}/manage/{secrets.token_urlsafe(32)}",
            web_url=f"{base_url}/m/message-{i % 10}",
        )
        for i in range(count)
    ]


def best_of(rounds: int, measure: Callable[[], float]) -> float:
    """The fastest of several rounds: other processes only ever make a round slower."""
    return min(measure() for _ in range(rounds))


def compile_seconds(project: Project, rounds: int) -> float:
    """Seconds to compile one message (mean over all), templates already loaded."""
    ids = [m.id for m in project.content.messages]
    renderer = project.renderer_for()
    for message_id in ids:  # warm-up: Jinja compiles and caches the templates themselves
        renderer.compile(message_id)

    def measure() -> float:
        renderer._cache.clear()
        started = time.perf_counter()
        for message_id in ids:
            renderer.compile(message_id)
        return (time.perf_counter() - started) / len(ids)

    return best_of(rounds, measure)


def compile_once_seconds(project: Project, people: list[Recipient], rounds: int) -> float:
    """Seconds to compile every message once and personalise it for every subscriber."""
    renderer = project.renderer_for()
    ids = [m.id for m in project.content.messages]
    renderer.compile(ids[0])  # templates loaded, as in a real run after its first message

    def measure() -> float:
        renderer._cache.clear()
        started = time.perf_counter()
        for message_id in ids:
            personalise = renderer.compile(message_id).personalise
            for person in people:
                personalise(person)
        return time.perf_counter() - started

    return best_of(rounds, measure)


def personalise_seconds(project: Project, people: list[Recipient], rounds: int) -> float:
    """Seconds to personalise every (already compiled) message for every subscriber."""
    renderer = project.renderer_for()
    compiled = [renderer.compile(m.id) for m in project.content.messages]

    def measure() -> float:
        started = time.perf_counter()
        for message in compiled:
            personalise = message.personalise
            for person in people:
                personalise(person)
        return time.perf_counter() - started

    return best_of(rounds, measure)


def naive_seconds(project: Project, people: list[Recipient], rounds: int) -> float:
    """Seconds for a full compile (Markdown, Jinja, MJML, inlining) per subscriber."""
    renderer: Renderer = project.renderer_for()
    messages = project.content.messages
    renderer.compile(messages[0].id)

    def measure() -> float:
        started = time.perf_counter()
        for i, person in enumerate(people):
            renderer._cache.clear()
            renderer.compile(messages[i % len(messages)].id).personalise(person)
        return time.perf_counter() - started

    return best_of(rounds, measure)


def mjml_per_subscriber_seconds(project: Project, people: list[Recipient], rounds: int) -> float:
    """Seconds for MJML + inlining per subscriber, Jinja done once (DESIGN.md's reference)."""
    renderer = project.renderer_for()
    messages = project.content.messages
    compiled = [renderer.compile(m.id) for m in messages]
    sources = [_Filler.split(c.mjml, renderer._nonce) for c in compiled]

    def measure() -> float:
        started = time.perf_counter()
        for i, person in enumerate(people):
            at = i % len(messages)
            values = tuple(str(escape(v)) for v in astuple(person))
            renderer._mjml_to_html(sources[at].fill_in(values), messages[at])
        return time.perf_counter() - started

    return best_of(rounds, measure)


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity on this OS)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    parser.add_argument("--project", type=Path, default=REPO)
    args = parser.parse_args(argv)

    pinned = pin_to_one_core()
    project = Project(load_settings(args.project))
    n = len(project.content.messages)
    people = recipients(args.subscribers, project.settings.base_url)
    sample = people[: args.naive_sample]
    sent = n * len(people)

    compile_ms = compile_seconds(project, args.rounds * 2) * 1000
    with_compile = sent / compile_once_seconds(project, people, args.rounds)
    personalise_only = sent / personalise_seconds(project, people, args.rounds)
    mjml_each = len(sample) / mjml_per_subscriber_seconds(project, sample, args.rounds)
    naive = len(sample) / naive_seconds(project, sample, args.rounds)
    renderer = project.renderer_for()
    sizes = [
        len(renderer.compile(m.id).personalise(people[0]).html.encode())
        for m in project.content.messages
    ]

    command = shlex.join([".venv/bin/python", "benchmarks/render.py", *sys.argv[1:]])
    print(
        f"`{command}` — {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {pinned}, best of {args.rounds} rounds"
    )
    print()
    print("| measure | result |")
    print("|---|---|")
    print(f"| messages | {n} (HTML {min(sizes) / 1024:.0f}–{max(sizes) / 1024:.0f} KB) |")
    print(f"| compile one message (Markdown, Jinja, MJML, CSS inlining) | {compile_ms:.2f} ms |")
    print(
        f"| **compile once + personalise** ({len(people):,} subscribers × {n} messages, "
        f"HTML + text) | **{with_compile:,.0f} msg/s** |"
    )
    print(f"| personalise only | {personalise_only:,.0f} msg/s |")
    print(
        f"| reference: MJML + inlining per subscriber ({len(sample)} sampled) "
        f"| {mjml_each:,.0f} msg/s |"
    )
    print(
        f"| reference: full compile per subscriber ({len(sample)} sampled) | {naive:,.0f} msg/s |"
    )
    print()
    verdict = "met" if with_compile >= TARGET else "MISSED"
    print(f"Target ≥ {TARGET:,} msg/s on one core: {verdict}.")
    return 0 if with_compile >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
