"""`newsletter check`: one test per check, each fed something deliberately broken.

Every test asserts the exact problem line (file, what, how to fix) on a copy of the real project,
which on its own has no problems at all.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from unittest import mock

import pytest

import newsletter.render.fields
import newsletter.render.renderer
from newsletter.config import load_settings
from newsletter.jobs.check import check_project
from newsletter.jobs.problem import Problem
from newsletter.project import Project

WEEK_1 = "content/protect-your-back/01-shoulder-bridge.md"
WEEK_2 = "content/protect-your-back/02-swan-dive.md"
ISSUE = "content/issues/2027-01-back-care-note.md"
FOOTER = "templates/partials/footer.mjml.j2"
FIX_REF = "point it at a file that exists under content/ (paths are relative to this file)"


def problems(project_dir: Path, **overrides: object) -> list[Problem]:
    return check_project(Project(load_settings(project_dir, **overrides)))


def lines(project_dir: Path, **overrides: object) -> list[str]:
    return [str(p) for p in problems(project_dir, **overrides)]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append_body(project_dir: Path, relative: str, markdown: str) -> None:
    path = project_dir / relative
    path.write_text(
        path.read_text(encoding="utf-8") + "\n" + textwrap.dedent(markdown), encoding="utf-8"
    )


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of ``path`` that contains ``text``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def html_size(project_dir: Path, message_id: str) -> int:
    project = Project(load_settings(project_dir))
    message = project.content.get(message_id)
    compiled = project.renderer.compile(message_id)
    return len(
        compiled.personalise(
            newsletter.render.renderer.sample_recipient(project.settings, "Alex Morgan", message)
        ).html.encode()
    )


def test_the_real_project_is_clean(project_dir: Path) -> None:
    assert problems(project_dir) == []


def test_subject_over_60(project_dir: Path) -> None:
    edit(
        project_dir / WEEK_1,
        'subject: "Week 1: meet your spine, then the Shoulder Bridge"',
        'subject: "Week 1: meet your spine, then the Shoulder Bridge, then much more"',
    )
    assert lines(project_dir) == [
        f"{WEEK_1}: subject is 65 characters (limit 60); shorten it: phones cut long subjects off"
    ]


def test_preheader_over_100(project_dir: Path) -> None:
    edit(project_dir / ISSUE, 'preheader: "', 'preheader: "A longer note this time. ')
    assert lines(project_dir) == [
        f"{ISSUE}: preheader is 116 characters (limit 100); shorten it: inboxes show only the start"
    ]


def _grow(project_dir: Path, target_bytes: int) -> None:
    """Pad the January issue until its HTML is within 300 bytes of ``target_bytes``."""
    issue = "issue-2027-01-build-slowly"
    for _ in range(4):
        missing = target_bytes - html_size(project_dir, issue)
        if abs(missing) < 300:
            return
        # One character of plain prose is one byte of HTML; the paragraph's tags are extra.
        append_body(project_dir, ISSUE, "Lorem ipsum dolor sit amet. " * (missing // 29) + "\n")
    raise AssertionError("could not reach the size")


def test_html_over_102_kb_is_an_error(project_dir: Path) -> None:
    _grow(project_dir, 110 * 1024)
    assert lines(project_dir) == [
        f"{ISSUE}: HTML is 110 KB, over Gmail's ~102 KB clipping limit; shorten the message or "
        "split it: Gmail would hide the footer and unsubscribe link"
    ]


def test_html_between_90_and_102_kb_is_a_warning(project_dir: Path) -> None:
    _grow(project_dir, 96 * 1024)
    (problem,) = problems(project_dir)
    assert problem.severity == "warning"
    assert str(problem) == (
        f"{ISSUE}: warning: HTML is 96 KB, close to Gmail's ~102 KB clipping limit; "
        "trim it before it grows past the limit"
    )


def test_image_without_alt_text(project_dir: Path) -> None:
    append_body(project_dir, WEEK_2, "![](images/plank.png)\n")
    src = "https://protectyourback.example/assets/protect-your-back/images/plank.png"
    assert lines(project_dir) == [
        f"{WEEK_2}: image {src} has no alt text; describe what it shows: ![what it shows]"
        "(file.png), or `alt:` in the front matter (many readers see no images)"
    ]


def test_unknown_mjml_tag(project_dir: Path) -> None:
    edit(
        project_dir / "templates/partials/cta.mjml.j2",
        "  <mj-column>",
        "  <mj-column>\n    <mj-foo>Hi</mj-foo>",
    )
    line = line_of(project_dir / "templates/partials/cta.mjml.j2", "<mj-foo>")
    assert lines(project_dir) == [
        f"templates/partials/cta.mjml.j2:{line}: unknown MJML tag <mj-foo> (mjml-python drops it "
        "silently); fix the tag name (see https://documentation.mjml.io/)"
    ]


def test_unknown_mjml_tag_in_a_jinja_comment_is_fine(project_dir: Path) -> None:
    edit(project_dir / "templates/partials/cta.mjml.j2", "{#-", "{#- <mj-foo> ")
    assert lines(project_dir) == []


def test_broken_relative_link(project_dir: Path) -> None:
    append_body(project_dir, WEEK_2, "See [week nine](09-nothing.md#top).\n")
    assert lines(project_dir) == [f"{WEEK_2}: broken relative link '09-nothing.md#top'; {FIX_REF}"]


def test_broken_relative_image(project_dir: Path) -> None:
    append_body(project_dir, WEEK_2, "![A plank](images/planck.png)\n")
    assert lines(project_dir) == [f"{WEEK_2}: broken relative image 'images/planck.png'; {FIX_REF}"]


def test_broken_front_matter_image(project_dir: Path) -> None:
    edit(project_dir / WEEK_2, "src: images/swan-dive.png", "src: images/swan.png")
    assert lines(project_dir) == [
        f"{WEEK_2}: broken relative image 'images/swan.png' in exercises[0].image.src; {FIX_REF}"
    ]


def test_broken_call_to_action_link(project_dir: Path) -> None:
    edit(project_dir / ISSUE, "05-ten-minute-routine.md", "05-ten-minute.md")
    assert lines(project_dir) == [
        f"{ISSUE}: broken relative call-to-action link "
        f"'../protect-your-back/05-ten-minute.md' in cta.url; {FIX_REF}"
    ]


def test_footer_without_unsubscribe_link_in_html(project_dir: Path) -> None:
    edit(
        project_dir / FOOTER,
        '<a href="{{ sub.unsubscribe_url }}">Unsubscribe</a> &middot; ',
        "",
    )
    fix = 'include partials/footer.mjml.j2 or link <a href="{{ sub.unsubscribe_url }}">'
    assert lines(project_dir) == [
        f"templates/issue.mjml.j2: the HTML has no unsubscribe link; {fix}",
        f"templates/lesson.mjml.j2: the HTML has no unsubscribe link; {fix}",
    ]


def test_text_without_unsubscribe_link(project_dir: Path) -> None:
    edit(project_dir / "templates/base.txt.j2", "Unsubscribe:\n{{ sub.unsubscribe_url }}\n", "")
    fix = "write {{ sub.unsubscribe_url }} into the .txt.j2 template"
    assert lines(project_dir) == [
        f"templates/issue.txt.j2: the text version has no unsubscribe link; {fix}",
        f"templates/lesson.txt.j2: the text version has no unsubscribe link; {fix}",
    ]


def test_missing_postal_address(project_dir: Path) -> None:
    edit(
        project_dir / FOOTER,
        '<p style="margin:8px 0 0 0;">{% include "partials/address.txt.j2" %}</p>',
        "",
    )
    edit(
        project_dir / "templates/base.txt.j2",
        '{% filter wrap %}{% include "partials/address.txt.j2" %}{% endfilter %}',
        "",
    )
    html_fix = "include partials/footer.mjml.j2: the law (CAN-SPAM) requires it"
    text_fix = "write {{ settings.postal_address }} into the .txt.j2 template"
    assert lines(project_dir) == [
        f"templates/issue.mjml.j2: the HTML has no postal address; {html_fix}",
        f"templates/issue.txt.j2: the text version has no postal address; {text_fix}",
        f"templates/lesson.mjml.j2: the HTML has no postal address; {html_fix}",
        f"templates/lesson.txt.j2: the text version has no postal address; {text_fix}",
    ]


def test_template_syntax_left_in_the_output_from_content(project_dir: Path) -> None:
    append_body(project_dir, WEEK_2, "Good luck, {{ sub.first_name }}!\n")
    assert lines(project_dir) == [
        f"{WEEK_2}: template syntax left in the HTML: …erything together. Good luck, "
        "{{ sub.first_name }}! Exercise S…; Markdown is not a template: put literal braces in "
        "`backticks`"
    ]


def test_template_syntax_in_code_is_meant(project_dir: Path) -> None:
    append_body(
        project_dir,
        WEEK_2,
        "Templates say `{{ sub.first_name }}` and `{% if x %}`.\n\n```\n{{ a }}\n```\n",
    )
    assert lines(project_dir) == []


def test_template_syntax_left_in_the_output_from_a_template(project_dir: Path) -> None:
    edit(
        project_dir / "templates/partials/cta.mjml.j2",
        "Ready when you are:",
        "Ready when you are{% raw %} {% endif %}{% endraw %}:",
    )
    found = lines(project_dir)
    assert len(found) == 10  # every message has a call to action
    assert found[0] == (
        "content/issues/2026-12-back-care-note.md: template syntax left in the HTML: …ck "
        "course. Ready when you are {% endif %}: Do today's 10 minut…; a tag in templates/ did "
        "not render: fix it"
    )


def test_subscriber_field_marked_safe(project_dir: Path) -> None:
    edit(project_dir / FOOTER, "{{ sub.unsubscribe_url }}", "{{ sub.unsubscribe_url | safe }}")
    line = line_of(project_dir / FOOTER, "| safe")
    assert lines(project_dir) == [
        f"{FOOTER}:{line}: a subscriber field is marked |safe (subscriber text must always be "
        "escaped); remove |safe: fields are escaped when they are filled in"
    ]


def test_subscriber_field_filtered_or_tested(project_dir: Path) -> None:
    template = project_dir / "templates/lesson.mjml.j2"
    edit(
        template,
        "<p>Hi {{ sub.first_name }},</p>",
        "<p>Hi {{ sub.first_name | title if sub.first_name else 'you' }},</p>",
    )
    where = f"templates/lesson.mjml.j2:{line_of(template, 'Hi {{')}"
    assert lines(project_dir) == [
        f"{where}: a subscriber field is filtered with |title; print {{{{ sub.<field> }}}} "
        "as it is: it is filled in after rendering",
        f"{where}: a condition tests a subscriber field (it is always true while rendering); "
        "subscriber fields can only be printed; first_name already falls back to "
        "`name_fallback`",
    ]
    # (|title happens to leave the slot marker unchanged, so rendering itself succeeds; |upper
    # would not, see test_render.py.)


def test_unescaped_subscriber_field_is_caught_in_the_output(project_dir: Path) -> None:
    # Belt and braces: if personalisation ever stopped escaping, the hostile sample shows it.
    with mock.patch.object(newsletter.render.fields, "escape", lambda value: value):
        found = lines(project_dir)
    assert len(found) == 10
    assert found[0] == (
        "content/issues/2026-12-back-care-note.md: a subscriber name reached the HTML "
        "unescaped; never mark subscriber fields |safe in templates"
    )


def test_unknown_subscriber_field_in_an_unused_branch(project_dir: Path) -> None:
    edit(
        project_dir / FOOTER,
        "<mj-column>",
        "<mj-column>{% if false %}{{ sub.email }}{% endif %}",
    )
    line = line_of(project_dir / FOOTER, "sub.email")
    assert lines(project_dir) == [
        f"{FOOTER}:{line}: sub.email is not a subscriber field; use one of sub.first_name, "
        "sub.unsubscribe_url, sub.manage_url, sub.web_url, sub.session_url, "
        "sub.practice_last_7_days, sub.practice_note, sub.lesson_number, sub.lessons_total"
    ]


def test_syntax_error_in_a_template_no_message_uses(project_dir: Path) -> None:
    (project_dir / "templates/partials/spare.mjml.j2").write_text(
        "<mj-text>\n  {% for x in %}\n</mj-text>\n", encoding="utf-8"
    )
    assert lines(project_dir) == [
        "templates/partials/spare.mjml.j2:2: Expected an expression, got 'end of statement "
        "block'; fix the template (see docs/rendering.md)"
    ]


def test_syntax_error_in_a_used_template_is_reported_once(project_dir: Path) -> None:
    partial = "templates/partials/safety_note.mjml.j2"
    edit(project_dir / partial, "<strong>", "{{ oops( }}<strong>")
    (line,) = lines(project_dir)
    assert line.startswith(f"{partial}:2: unexpected '}}'")


def test_unknown_filter_is_a_template_problem(project_dir: Path) -> None:
    edit(project_dir / "templates/partials/cta.mjml.j2", "{{ cta_url }}", "{{ cta_url | shout }}")
    assert lines(project_dir) == [
        "templates/partials/cta.mjml.j2:6: No filter named 'shout' found; fix the template (see "
        "docs/rendering.md)"
    ]


def test_template_problems_are_reported_with_content_problems(project_dir: Path) -> None:
    edit(project_dir / WEEK_2, "kind: lesson", "kind: lessen")
    (project_dir / "templates/partials/spare.mjml.j2").write_text("{% if %}", encoding="utf-8")
    assert lines(project_dir) == [
        f"{WEEK_2}: kind: Input should be 'lesson' or 'issue'",
        "templates/partials/spare.mjml.j2:1: Expected an expression, got 'end of statement "
        "block'; fix the template (see docs/rendering.md)",
    ]


def test_broken_logo(project_dir: Path) -> None:
    assert lines(project_dir, logo="images/logo.png") == [
        "newsletter.toml: logo 'images/logo.png' is not a file under content/; give a path "
        "relative to content/ (e.g. images/logo.png) or an https:// URL"
    ]
    assert lines(project_dir, logo="protect-your-back/images/plank.png") == []


@pytest.mark.parametrize("missing", ["lesson.mjml.j2", "issue.txt.j2"])
def test_missing_kind_template(project_dir: Path, missing: str) -> None:
    (project_dir / "templates" / missing).unlink()
    found = lines(project_dir)
    assert found == [
        f"templates/{missing}: template not found; fix the template (see docs/rendering.md)"
    ]
