"""Commands that start things: init (a new project), new lesson (the next lesson of a course)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from newsletter.cli.app import AppContext
from newsletter.jobs.init import QUESTIONS, Answers, answer_problem, default_answer, init_project
from newsletter.jobs.new_lesson import new_lesson


def _answer_options(func: Any) -> Any:
    for field in reversed(QUESTIONS):
        func = click.option(f"--{field.replace('_', '-')}", field, help=QUESTIONS[field][1])(func)
    return func


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_answer_options
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: take the default for every answer.")
def init(folder: Path, yes: bool, **given: str | None) -> None:
    """Start a new project in FOLDER: settings, a course of four emails, its schedule, neutral
    templates, .env (a fresh secret key), .env.example, .gitignore and a README.

    Asks for what it needs, unless given as options or --yes (made-up but valid values, to
    change in newsletter.toml later). Never overwrites a file: an existing one stops it before
    anything is written.

    \b
    Example:  newsletter init rust-course --name "Rust in six weeks" --timezone Europe/Berlin
    Example:  newsletter init my-course --yes
    """
    answers: dict[str, str] = {}
    for field, (_, question) in QUESTIONS.items():
        default = default_answer(field, folder, answers)
        value = given.get(field)
        if value is None:
            value = default if yes else _ask(field, question, default)
        answers[field] = value
    written = init_project(folder, Answers(**answers))
    click.echo(f"created {folder}: {len(written)} files")
    click.echo(f"next:    cd {folder} && newsletter check && newsletter preview --all --open")


def _ask(field: str, question: str, default: str) -> str:
    def checked(value: str) -> str:
        problem = answer_problem(field, value)
        if problem:
            raise click.BadParameter(problem)  # click says it and asks again
        return value

    return str(click.prompt(question, default=default, value_proc=checked))


@click.group()
def new() -> None:
    """Add something to the project from a template: `new lesson`."""


@new.command("lesson")
@click.argument("course")
@click.argument("title")
@click.pass_obj
def lesson(app: AppContext, course: str, title: str) -> None:
    """Add the next lesson of COURSE, titled TITLE, with its front matter.

    It takes the next position and the id COURSE-<title in lowercase, with dashes>; an id that
    is taken or a file that exists is refused.

    Example:  newsletter new lesson rust-basics "Ownership and borrowing"
    """
    made = new_lesson(app.project, course, title)
    relative = made.path.relative_to(app.settings.project_dir)
    click.echo(f"wrote {relative}: id {made.message_id}, position {made.position}")


COMMANDS = (init, new)
