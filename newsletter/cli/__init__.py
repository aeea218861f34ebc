"""The command line. The only package that imports click.

Commands are thin: parse flags, call one library function, print (``formats/`` holds what needs
more than a line). Each lives in a module of this package by topic and is named in ``COMMANDS``
below, with the first sentence of its help: the root group imports a command's module only
when that command is run, so `newsletter --help` starts in a blink. What they share is in
``app.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter.cli.app import (
    PROJECT_HELP,
    VERBOSE_HELP,
    AppContext,
    LazyCommand,
    LazyGroup,
    configure_logging,
)
from newsletter.clock import Clock


def _lazy(target: str, summary: str) -> LazyCommand:
    return LazyCommand(f"newsletter.cli.{target}", summary)


# Every command: where it lives, and the first sentence of its help (a test checks they match).
COMMANDS = {
    "init": _lazy(
        "init:init",
        "Start a new project in FOLDER: settings, a course of four emails, its schedule, neutral "
        "templates, .env (a fresh secret key), .env.example, .gitignore and a README.",
    ),
    "new": _lazy("init:new", "Add something to the project from a template: `new lesson`."),
    "check": _lazy(
        "content:check",
        "Validate content, templates and schedules, and lint every rendered email.",
    ),
    "preview": _lazy(
        "content:preview", "Write a message's HTML and text exactly as a subscriber gets them."
    ),
    "list": _lazy(
        "content:list_messages",
        "List the messages in content/: id, kind, course, position, subject.",
    ),
    "due": _lazy(
        "sending:due",
        "List what `send` would deliver now: subscriber, message, their local time.",
    ),
    "send": _lazy(
        "sending:send",
        "Send what is due through the configured provider, recording each in the ledger.",
    ),
    "status": _lazy(
        "sending:status_command",
        "Per course: enrolled, active, paused, completed; per lesson: sent, failed, uncertain, "
        "what the provider reported, and how many recipients practised before their next lesson.",
    ),
    "uncertain": _lazy(
        "sending:uncertain",
        "List emails whose send was interrupted, so nobody knows if they arrived.",
    ),
    "sync": _lazy(
        "sending:sync",
        "Pull bounces, complaints and unsubscribes from the provider into the suppression list.",
    ),
    "orphans": _lazy(
        "orphans:orphans_command",
        "List deliveries still waiting on a lesson or issue that is gone from content/.",
    ),
    "preflight": _lazy(
        "preflight:preflight",
        "Check that mail will arrive: one line per check, exit 1 when one fails.",
    ),
    "subscribers": _lazy(
        "subscribers:subscribers",
        "Manage subscribers: add, import, export, list, show, pause, resume, unsubscribe, forget.",
    ),
    "simulate": _lazy(
        "simulate:simulate",
        "Replay the schedules for some weeks and check every promise they make.",
    ),
    "test-send": _lazy(
        "providers:test_send",
        "Send one message to one address through the configured provider, to see it for real.",
    ),
    "broadcast": _lazy(
        "broadcasts:broadcast",
        "Send a newsletter issue to everybody (or an audience), withdraw it, or list broadcasts.",
    ),
    "build-archive": _lazy(
        "broadcasts:build_archive_command",
        "Write a static web archive of past issues, with an Atom and an RSS feed.",
    ),
    "plan": _lazy(
        "broadcasts:plan_command",
        "Show who gets what, and when, after a change to content/ or schedules/.",
    ),
    "serve": _lazy(
        "web:serve",
        "Run the web side: live preview for the author, subscriber pages and provider webhooks.",
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="NEWSLETTER_PROJECT_DIR",
    default=".",
    show_default=True,
    help=PROJECT_HELP,
)
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.version_option(package_name="newsletter")
@click.pass_context
def main(ctx: click.Context, project_dir: Path, verbose: int) -> None:
    """Drip courses and newsletters from files kept in git.

    \b
    Start with:  newsletter check
    Then:        newsletter preview --all --open

    -v and --project work before or after the command: `newsletter send -v`.
    """
    configure_logging(verbose)
    # The command's clock is read here, once (see clock.py); its --now, if any, pins it.
    ctx.obj = app = AppContext(project_dir=project_dir, verbose=verbose, clock=Clock.at(None))
    ctx.call_on_close(app.close)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
