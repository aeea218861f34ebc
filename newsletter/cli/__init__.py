"""The command line. The only package that imports click.

Commands are thin: parse flags, call one library function, print (``formats/`` holds what needs
more than a line). Each lives in a module of this package by topic and is registered on the
root group below; what they share is in ``app.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter.cli import (
    broadcasts,
    content,
    init,
    orphans,
    preflight,
    providers,
    sending,
    simulate,
    subscribers,
    web,
)
from newsletter.cli.app import (
    PROJECT_HELP,
    VERBOSE_HELP,
    AppContext,
    NewsletterGroup,
    configure_logging,
)
from newsletter.clock import Clock


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def _register() -> None:
    for module in (
        init,
        content,
        sending,
        orphans,
        preflight,
        subscribers,
        simulate,
        providers,
        broadcasts,
        web,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
