"""Commands for the author's content: check, preview, list."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path

import click

from newsletter.cli.app import AppContext, json_option
from newsletter.jobs.check import check_project
from newsletter.jobs.orphans import check_problems
from newsletter.jobs.preview import write_previews


@click.command()
@click.option("--strict", is_flag=True, help="Treat warnings as problems too (exit 1).")
@click.option(
    "--links",
    is_flag=True,
    help="Also fetch every external link (network): broken, moved to another host, plain http.",
)
@click.pass_obj
def check(app: AppContext, strict: bool, links: bool) -> None:
    """Validate content, templates and schedules, and lint every rendered email.

    Renders each message for sample subscribers (with a name, without one, and one named
    O'Brien <script>&) and reports what breaks real emails, one line per problem on stderr:
    the file, what is wrong, how to fix it. When the project has a database, also warns of
    deliveries still waiting on a message gone from content/ (-v: for whom). With --links,
    fetches every external link of the emails and archive pages once (HEAD, else GET; 8 at a
    time, 10 s each) and reports each broken one as a problem, a redirect to another host or a
    plain http link as a warning, by file and line. Exit code 0 when clean (warnings alone do
    not fail unless --strict), 1 otherwise.

    \b
    Example:  newsletter check
    Example:  newsletter check --links
    """
    project = app.project
    # The ledger too, when there is one: deliveries held by a message gone from content/.
    problems = check_project(project) + check_problems(app.settings, project, app.verbose > 0)
    if links:
        # Imported here: the link checker pulls in the archive's feed and HTTP libraries,
        # which no other command of this module needs (`--help` stays quick).
        from newsletter.jobs.links import check_links

        problems += check_links(project)
    for problem in problems:
        click.echo(str(problem), err=True)
    failing = [p for p in problems if strict or p.severity == "error"]
    if failing:
        raise click.exceptions.Exit(1)
    if app.verbose:
        click.echo(f"ok: {len(project.content.messages)} messages checked")


@click.command()
@click.argument("message_id", required=False)
@click.option("--all", "all_messages", is_flag=True, help="Preview every message.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="preview",
    show_default=True,
    help="Folder to write <id>.html, <id>.txt, the images and (with --all) index.html into.",
)
@click.option("--name", default=None, help="Subscriber name to personalise with (default none).")
@click.option("--open", "open_browser", is_flag=True, help="Open the result in a browser.")
@click.pass_obj
def preview(
    app: AppContext,
    message_id: str | None,
    all_messages: bool,
    out_dir: Path,
    name: str | None,
    open_browser: bool,
) -> None:
    """Write a message's HTML and text exactly as a subscriber gets them.

    Images are copied next to the files, so the previews open offline; links point at the
    public site as in a real email.

    \b
    Examples:  newsletter preview week-1-shoulder-bridge --name Sam --open
               newsletter preview --all --out /tmp/previews
    """
    if bool(message_id) == all_messages:
        raise click.UsageError("give one MESSAGE_ID or --all")
    project = app.project
    project.validate()
    ids = [m.id for m in project.content.messages] if all_messages else [str(message_id)]
    written = write_previews(project, ids, out_dir, name)
    target = out_dir / "index.html" if len(written) > 1 else written[0]
    click.echo(str(target))
    if open_browser:
        webbrowser.open(target.resolve().as_uri())


@click.command("list")
@json_option
@click.pass_obj
def list_messages(app: AppContext, as_json: bool) -> None:
    """List the messages in content/: id, kind, course, position, subject.

    Example:  newsletter list --json
    """
    messages = sorted(
        app.project.content.messages,
        key=lambda m: (m.kind, m.course or "", m.position or 0, m.id),
    )
    rows = [
        {
            "id": m.id,
            "kind": m.kind,
            "course": m.course,
            "position": m.position,
            "subject": m.subject,
        }
        for m in messages
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        position = "" if r["position"] is None else str(r["position"])
        click.echo(
            f"{r['id']:<32} {r['kind']:<7} {r['course'] or '-':<20} {position:>3}  {r['subject']}"
        )


COMMANDS = (check, preview, list_messages)
