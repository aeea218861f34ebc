"""Rendering: golden files for the real course, compile-once, escaping, and template errors.

Golden files live in tests/golden/<id>.<persona>.html|txt. After a deliberate change to the
templates or the content, rewrite them with
``pytest tests/render/test_renderer.py --regen-golden`` and review the diff like any other change.
"""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

import markupsafe
import pytest

import newsletter.render.renderer
from newsletter.config import Settings
from newsletter.core.errors import RenderError
from newsletter.files.content import load_content
from newsletter.project import Project
from newsletter.render.renderer import CompiledMessage, Recipient, first_name, sample_recipient
from tests.conftest import REPO

GOLDEN = Path(__file__).parent.parent / "golden"
PERSONAS = {"named": "Alex Morgan", "anonymous": None}
MESSAGE_IDS = sorted(m.id for m in load_content(REPO / "content").messages)
BASE = "https://protectyourback.example"


def compile_message(settings: Settings, message_id: str) -> CompiledMessage:
    return Project(settings).renderer.compile(message_id)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def lesson(project_dir: Path, body: str, *, extra: str = "", name: str = "99-test.md") -> Path:
    """A lesson appended to the real course (position 8, after the closing email)."""
    return write(
        project_dir / "content" / "protect-your-back" / name,
        f"""
        ---
        id: test-lesson
        kind: lesson
        course: protect-your-back
        position: 8
        subject: "A test lesson"
        preheader: "Testing"
        {extra}
        ---
        """
        + textwrap.dedent(body),
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of ``path`` that contains ``text``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def recipient(name: str, base: str = BASE) -> Recipient:
    return Recipient(
        first_name=name,
        unsubscribe_url=f"{base}/u/tok",
        manage_url=f"{base}/manage/tok",
        web_url=f"{base}/m/x",
    )


# -- golden files --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", sorted(PERSONAS))
@pytest.mark.parametrize("message_id", MESSAGE_IDS)
def test_golden(
    settings: Settings, message_id: str, persona: str, request: pytest.FixtureRequest
) -> None:
    project = Project(settings)
    message = project.content.get(message_id)
    email = project.renderer.compile(message_id).personalise(
        sample_recipient(settings, PERSONAS[persona], message)
    )
    for suffix, actual in (("html", email.html), ("txt", email.text)):
        path = GOLDEN / f"{message_id}.{persona}.{suffix}"
        if request.config.getoption("--regen-golden"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            continue
        assert path.exists(), f"{path.name} is missing: run pytest --regen-golden"
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, _first_difference(path.name, expected, actual)


def _first_difference(name: str, expected: str, actual: str) -> str:
    """Where two long one-line HTML files part ways: the whole diff would be unreadable."""
    at = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    return (
        f"{name} differs at character {at}:\n"
        f"  golden: …{expected[max(0, at - 60) : at + 60]!r}\n"
        f"  now:    …{actual[max(0, at - 60) : at + 60]!r}\n"
        "if the change is intended: pytest tests/render/test_renderer.py --regen-golden"
    )


def test_golden_files_have_no_strays() -> None:
    expected = {f"{i}.{p}.{s}" for i in MESSAGE_IDS for p in PERSONAS for s in ("html", "txt")}
    present = {p.name for p in GOLDEN.iterdir() if p.suffix in {".html", ".txt"}}
    assert present == expected


def test_output_is_deterministic_and_carries_no_slot_markers(settings: Settings) -> None:
    # Two renderers have two different random nonces; the output must not depend on them.
    first, second = Project(settings).renderer, Project(settings).renderer
    assert first._nonce != second._nonce
    for message in Project(settings).content.messages:
        a = first.compile(message.id).personalise(sample_recipient(settings, "Sam", message))
        b = second.compile(message.id).personalise(sample_recipient(settings, "Sam", message))
        assert (a.html, a.text) == (b.html, b.text)
        for out in (a.html, a.text):
            assert first._nonce not in out
            assert "@@" not in out


# -- compile once, personalise many ------------------------------------------------------------


def test_mjml_compiles_once_per_message_however_many_subscribers(settings: Settings) -> None:
    project = Project(settings)
    messages = project.content.messages
    with mock.patch.object(
        newsletter.render.renderer, "mjml2html", wraps=newsletter.render.renderer.mjml2html
    ) as spy:
        for message in messages:
            for i in range(250):
                compiled = project.renderer.compile(message.id)
                email = compiled.personalise(recipient(f"Reader{i}"))
                assert f"Hi Reader{i}," in email.html
    assert spy.call_count == len(messages)


def test_personalised_fields_land_where_the_template_puts_them(settings: Settings) -> None:
    compiled = compile_message(settings, "week-1-shoulder-bridge")
    email = compiled.personalise(
        Recipient("Sam", f"{BASE}/u/UNSUB", f"{BASE}/manage/MANAGE", f"{BASE}/m/WEB")
    )
    links = _links(email.html)
    assert f"{BASE}/u/UNSUB" in links
    assert f"{BASE}/manage/MANAGE" in links
    assert f"{BASE}/m/WEB" in links
    assert "Hi Sam," in email.text
    for url in ("u/UNSUB", "manage/MANAGE", "m/WEB"):
        assert f"{BASE}/{url}\n" in email.text
    assert email.subject == "Week 1: meet your spine, then the Shoulder Bridge"


# -- escaping ------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "O'Brien <script>alert(1)</script>&",
    "\"quotes\" & 'apostrophes'",
    "{{ 7*7 }}",
    "{% raw %}x{% endraw %}",
    "@@deadbeef:first_name@@",
    "Zoë 🏃‍♀️ 🦄",
    "مريم",  # Arabic, right to left
    "יעל ‏כהן",  # Hebrew with a right-to-left mark
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_subscriber_text_is_escaped_in_html_and_kept_in_text(settings: Settings, name: str) -> None:
    compiled = compile_message(settings, "week-1-shoulder-bridge")
    email = compiled.personalise(recipient(name))
    # The HTML carries the escaped name, never the raw one where escaping changes it.
    assert f"Hi {markupsafe.escape(name)}," in email.html
    if html.escape(name) != name:
        assert name not in email.html
    # Parsed back, the greeting says exactly the name: nothing evaluated, nothing broken.
    assert f"Hi {name}," in _paragraphs(email.html)
    assert f"Hi {name}," in email.text.splitlines()
    assert "49" not in email.text.split("Hi ", 1)[1].split("\n", 1)[0]


def test_urls_with_special_characters_survive_the_href(settings: Settings) -> None:
    nasty = f'{BASE}/u/a&b"c<d>'
    compiled = compile_message(settings, "week-1-shoulder-bridge")
    email = compiled.personalise(Recipient("Sam", nasty, f"{BASE}/manage/x", f"{BASE}/m/x"))
    assert nasty in _links(email.html)
    assert nasty in email.text


def test_first_name_cleans_what_could_break_a_header_or_greeting() -> None:
    assert first_name("Ann\r\nBcc: evil@example.com", "there") == "AnnBcc:"
    assert first_name("  Zoë  Smith ", "there") == "Zoë"
    assert first_name("\u202eevil", "there") == "evil"  # bidi override dropped
    assert first_name("مريم حسن", "there") == "مريم"
    assert first_name("🏃 Sam", "there") == "🏃"
    assert first_name("", "there") == "there"
    assert first_name(None, "friend") == "friend"
    assert first_name("\r\n\t", "there") == "there"


def test_sample_recipient_with_crlf_name_renders_one_clean_greeting(settings: Settings) -> None:
    project = Project(settings)
    message = project.content.get("week-1-shoulder-bridge")
    email = project.renderer.compile(message.id).personalise(
        sample_recipient(settings, "Ann\r\n<b>Bold</b>", message)
    )
    assert "Hi Ann&lt;b&gt;Bold&lt;/b&gt;," in email.html
    assert "Hi Ann<b>Bold</b>," in email.text
    assert "\r" not in email.text


def test_literal_template_syntax_in_content_is_not_evaluated(
    settings: Settings, project_dir: Path
) -> None:
    lesson(
        project_dir,
        """
        Write {{ x }} and {{ 7*7 }} and {% raw %} and {{ sub.first_name }} literally.

        Also in code: `{{ sub.unsubscribe_url }}` and @@abc:first_name@@.
        """,
    )
    email = compile_message(settings, "test-lesson").personalise(recipient("Sam"))
    for literal in ("{{ x }}", "{{ 7*7 }}", "{% raw %}", "{{ sub.first_name }}"):
        assert html.escape(literal) in email.html
        assert literal in email.text
    assert re.search(r"<code[^>]*>\{\{ sub.unsubscribe_url \}\}</code>", email.html)
    assert "@@abc:first_name@@" in email.text
    assert "Sam literally" not in email.text


def test_front_matter_text_is_escaped(settings: Settings, project_dir: Path) -> None:
    lesson(
        project_dir,
        "Body.\n",
        extra='title: "Tags like <b> & {{ x }}"',
    )
    email = compile_message(settings, "test-lesson").personalise(recipient("Sam"))
    assert "Tags like &lt;b&gt; &amp; {{ x }}" in email.html
    assert "<b> &" not in email.html
    assert "TAGS LIKE <B> & {{ X }}" in email.text


def test_raw_html_in_markdown_is_shown_not_run(settings: Settings, project_dir: Path) -> None:
    lesson(project_dir, "Hello <script>alert(1)</script> <img src=x onerror=alert(1)>\n")
    email = compile_message(settings, "test-lesson").personalise(recipient("Sam"))
    assert "<script>alert" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<img src=x" not in email.html


# -- CSS inlining ------------------------------------------------------------------------------


def test_inline_style_css_is_inlined_while_style_blocks_and_media_queries_stay(
    settings: Settings,
) -> None:
    email = compile_message(settings, "week-1-shoulder-bridge").personalise(recipient("Sam"))
    # .prose p { margin: 0 0 16px 0; } from <mj-style inline="inline">
    assert re.search(r'<p style="[^"]*margin: ?0 0 16px 0', email.html)
    # .prose h2 { color: brand }, .card h4, and .footer a made it into style="" attributes
    assert re.search(r'<h2 [^>]*style="[^"]*color: ?#0f5c4d', email.html)
    assert re.search(r'<h4 style="[^"]*text-transform: ?uppercase', email.html)
    assert re.search(r'<a href="[^"]*/u/tok" style="[^"]*color: ?#5b6b68', email.html)
    # The inline rules are not left behind as a <style> block; MJML's own blocks and @media stay.
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", email.html, re.S))
    assert ".prose p {" not in styles
    assert "@media only screen and (max-width: 480px)" in styles
    assert ".prose h2 { font-size: 19px !important; }" in styles
    assert "mj-column-per-100" in styles


def test_html_stays_well_under_gmails_clipping_limit(settings: Settings) -> None:
    project = Project(settings)
    for message in project.content.messages:
        email = project.renderer.compile(message.id).personalise(recipient("Alexandra"))
        assert len(email.html.encode()) < 60 * 1024, message.id


def test_dark_mode_meta_and_media_query_reach_every_email(settings: Settings) -> None:
    project = Project(settings)
    for message in project.content.messages:
        email = project.renderer.compile(message.id).personalise(recipient("Sam"))
        head = email.html.split("</head>", 1)[0]
        assert '<meta name="color-scheme" content="light dark">' in head, message.id
        assert '<meta name="supported-color-schemes" content="light dark">' in head, message.id
        styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", head, re.S))
        # css-inline must leave the media query in a <style> block, where clients apply it.
        dark = styles.split("@media (prefers-color-scheme: dark)", 1)
        assert len(dark) == 2, message.id
        assert "background-color: #1a2422 !important" in dark[1]


def test_preheader_is_padded_so_the_preview_stops_after_it(settings: Settings) -> None:
    email = compile_message(settings, "week-3-plank").personalise(recipient("Sam"))
    hidden = re.search(r'<div style="display:none[^>]*>(.*?)</div>', email.html, re.S)
    assert hidden is not None
    text = html.unescape(hidden.group(1))
    preheader = "Every stride is a one-legged landing. Here's how to keep your pelvis steady"
    assert text.startswith(preheader)
    padding = text.split("through each one.", 1)[1]
    # U+034F combining grapheme joiner, zero-width non-joiner, no-break space: nothing visible.
    assert padding == "\u034f\u200c\u00a0" * 80


def test_footer_and_header_links_are_44_px_tap_targets(settings: Settings) -> None:
    email = compile_message(settings, "week-1-shoulder-bridge").personalise(recipient("Sam"))
    for url in (f"{BASE}/u/tok", f"{BASE}/manage/tok", f"{BASE}/m/x"):
        found = re.search(rf'<a href="{re.escape(url)}" style="([^"]*)"', email.html)
        assert found is not None, url
        style = dict(
            (k.strip(), v.strip())
            for k, v in (d.split(":", 1) for d in found.group(1).split(";") if ":" in d)
        )
        assert style["display"] == "inline-block"
        vertical = int(style["padding"].split()[0].removesuffix("px"))
        assert 2 * vertical + int(style["line-height"].removesuffix("px")) >= 44, url


def test_text_signature_separator_keeps_its_trailing_space(settings: Settings) -> None:
    email = compile_message(settings, "issue-2027-01-build-slowly").personalise(recipient("Sam"))
    lines = email.text.splitlines()
    assert lines.count("-- ") == 1
    assert "--" not in lines
    # Every other line is still stripped of trailing spaces.
    assert [line for line in lines if line != "-- " and line != line.rstrip()] == []


def test_front_matter_images_get_their_alt_text_in_the_text_version(settings: Settings) -> None:
    project = Project(settings)
    text = project.renderer.compile("week-1-shoulder-bridge").personalise(recipient("Sam")).text
    alt = project.content.get("week-1-shoulder-bridge").exercises[0].image.alt  # type: ignore[union-attr]
    assert f"[Image: {alt}]" in " ".join(text.split())
    welcome = project.renderer.compile("protect-your-back-welcome").personalise(recipient("S"))
    title_alt = project.content.get("protect-your-back-welcome").image.alt  # type: ignore[union-attr]
    squashed = " ".join(welcome.text.split())
    assert f"PROTECT YOUR BACK [Image: {title_alt}]" in squashed


def test_a_missing_picture_leaves_no_alt_text_behind(settings: Settings, project_dir: Path) -> None:
    lesson(project_dir, "Body.\n", extra="image: {src: images/nope.png, alt: Nothing here}")
    email = compile_message(settings, "test-lesson").personalise(recipient("Sam"))
    assert "Nothing here" not in email.text
    assert "Nothing here" not in email.html


def test_headings_get_ids_to_link_to(settings: Settings, project_dir: Path) -> None:
    # The body's first line shares the front matter's indentation; the headings follow it.
    body = "Intro.\n\n## This week's plan\n\nA\n\n### This week's plan\n\nB\n\n## ¿?\n"
    lesson(project_dir, body)
    email = compile_message(settings, "test-lesson").personalise(recipient("Sam"))
    assert '<h2 id="this-weeks-plan"' in email.html
    assert '<h3 id="this-weeks-plan-2"' in email.html
    assert '<h2 id="section"' in email.html


def test_message_url_links_to_another_message_and_fails_on_a_typo(
    settings: Settings, project_dir: Path
) -> None:
    template = project_dir / "templates" / "partials" / "sign_off.mjml.j2"
    edit(template, "<p>{{ message.sign_off }}</p>", "<p>{{ message_url('week-3-plank') }}</p>")
    email = compile_message(settings, "issue-2027-01-build-slowly").personalise(recipient("S"))
    assert f">{BASE}/m/week-3-plank</p>" in email.html
    edit(template, "'week-3-plank'", "'week-3-plonk'")
    with pytest.raises(RenderError) as err:
        compile_message(settings, "issue-2026-12-winter-back-care")
    assert str(err.value) == (
        f"{template}:{line_of(template, 'plonk')}: "
        "message_url: no message with id 'week-3-plonk' in content/"
    )


def test_kicker_counts_only_numbered_lessons(settings: Settings, project_dir: Path) -> None:
    lesson(project_dir, "Body.\n")  # position 8: counted unless it says otherwise
    assert (
        compile_message(settings, "test-lesson")
        .personalise(recipient("S"))
        .text.startswith("Protect your back, lesson 7 of 7,")
    )
    lesson(project_dir, "Body.\n", extra="numbered: false")
    email = compile_message(settings, "test-lesson").personalise(recipient("S"))
    assert email.text.startswith("Protect your back, 1 min read")
    week_2 = compile_message(settings, "week-2-swan-dive").personalise(recipient("S"))
    assert week_2.text.startswith("Protect your back, lesson 2 of 6,")


def test_safety_note_only_where_a_movement_is_taught(settings: Settings, project_dir: Path) -> None:
    lesson(project_dir, "Just reading.\n")
    email = compile_message(settings, "test-lesson").personalise(recipient("S"))
    assert "not medical advice" not in email.html
    assert "not medical advice" not in email.text


def test_course_safety_note_falls_back_to_the_general_one(
    settings: Settings, project_dir: Path
) -> None:
    """A course without templates/courses/<id>/safety.* gets partials/safety_note.*."""
    shutil.rmtree(project_dir / "templates" / "courses")
    email = compile_message(settings, "week-1-shoulder-bridge").personalise(recipient("S"))
    assert "not medical advice" in email.html
    assert "not medical advice" in " ".join(email.text.split())
    assert "Warning signs" not in email.text


def test_this_week_box_links_to_the_first_card_by_default(settings: Settings) -> None:
    email = compile_message(settings, "week-1-shoulder-bridge").personalise(recipient("S"))
    assert '<a href="#exercise-1"' in email.html
    assert 'id="exercise-1"' in email.html


def test_this_week_box_without_cards_or_link_has_no_link(
    settings: Settings, project_dir: Path
) -> None:
    lesson(project_dir, "Body.\n", extra="this_week: {exercise: Walk, dose: Daily, time: 5 min}")
    email = compile_message(settings, "test-lesson").personalise(recipient("S"))
    assert "Walk" in email.html
    assert "Jump to the full instructions" not in email.html


# -- template errors ---------------------------------------------------------------------------


def test_unknown_variable_names_the_template_file_and_line(
    settings: Settings, project_dir: Path
) -> None:
    template = project_dir / "templates" / "lesson.mjml.j2"
    lines = template.read_text(encoding="utf-8").splitlines()
    lines.insert(4, "{{ no_such_thing }}")  # becomes line 5
    template.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RenderError) as err:
        compile_message(settings, "week-1-shoulder-bridge")
    assert str(err.value) == f"{template}:5: 'no_such_thing' is undefined"


def test_unknown_variable_in_a_partial_names_the_partial(
    settings: Settings, project_dir: Path
) -> None:
    partial = project_dir / "templates" / "partials" / "footer.mjml.j2"
    edit(partial, "<mj-column>", "<mj-column>{{ message.no_such_field }}")
    with pytest.raises(RenderError) as err:
        compile_message(settings, "issue-2027-01-build-slowly")
    line = line_of(partial, "no_such_field")
    assert str(err.value) == (
        f"{partial}:{line}: 'newsletter.core.message.Message object' "
        "has no attribute 'no_such_field'"
    )


def test_unknown_subscriber_field_fails_clearly(settings: Settings, project_dir: Path) -> None:
    partial = project_dir / "templates" / "partials" / "cta.mjml.j2"
    edit(partial, "Ready when you are:", "Ready, {{ sub.nickname }}?")
    with pytest.raises(RenderError) as err:
        compile_message(settings, "week-1-shoulder-bridge")
    assert str(err.value) == (
        f"{partial}:{line_of(partial, 'nickname')}: 'sub.nickname' is not a subscriber field "
        "(known: first_name, unsubscribe_url, manage_url, web_url, session_url, "
        "practice_last_7_days, practice_note, lesson_number, lessons_total)"
    )


def test_filtered_subscriber_field_fails_instead_of_leaking_a_marker(
    settings: Settings, project_dir: Path
) -> None:
    edit(
        project_dir / "templates" / "lesson.mjml.j2",
        "<p>Hi {{ sub.first_name }},</p>",
        "<p>Hi {{ sub.first_name | upper }},</p>",
    )
    with pytest.raises(RenderError, match="changed by a template filter"):
        compile_message(settings, "week-1-shoulder-bridge")


def test_printing_sub_itself_fails_clearly(settings: Settings, project_dir: Path) -> None:
    template = project_dir / "templates" / "lesson.mjml.j2"
    edit(template, "<p>Hi ", "<p>{{ sub }} Hi ")
    with pytest.raises(RenderError) as err:
        compile_message(settings, "week-1-shoulder-bridge")
    assert str(err.value).startswith(f"{template}:{line_of(template, '{{ sub }}')}: 'sub' is not")


def test_template_syntax_error_names_file_and_line(settings: Settings, project_dir: Path) -> None:
    partial = project_dir / "templates" / "partials" / "safety_note.mjml.j2"
    edit(partial, "<strong>", "{% if %}<strong>")
    with pytest.raises(RenderError) as err:
        compile_message(settings, "week-1-shoulder-bridge")
    line = line_of(partial, "{% if %}")
    assert (
        str(err.value) == f"{partial}:{line}: Expected an expression, got 'end of statement block'"
    )


def test_type_error_in_a_template_is_a_render_error(settings: Settings, project_dir: Path) -> None:
    edit(project_dir / "templates" / "lesson.mjml.j2", "<p>Hi ", '{{ 1 + "a" }}<p>Hi ')
    with pytest.raises(RenderError, match=r"lesson\.mjml\.j2:\d+: unsupported operand"):
        compile_message(settings, "week-1-shoulder-bridge")


# -- links and images --------------------------------------------------------------------------


def test_relative_links_point_at_web_versions(settings: Settings) -> None:
    compiled = compile_message(settings, "protect-your-back-closing")
    email = compiled.personalise(recipient("Sam"))
    links = _links(email.html)
    for target in (
        "week-5-ten-minute-routine",
        "week-1-shoulder-bridge",
        "week-2-swan-dive",
        "week-3-plank",
        "week-4-calf-raises",
    ):
        assert f"{BASE}/m/{target}" in links
        assert f"({BASE}/m/{target})" in email.text
    assert all(ref.resolved for ref in compiled.references)
    assert not any(".md" in link for link in links)


def test_relative_images_point_at_published_assets(settings: Settings) -> None:
    compiled = compile_message(settings, "week-1-shoulder-bridge")
    srcs = _images(compiled.personalise(recipient("Sam")).html)
    assert srcs == [f"{BASE}/assets/protect-your-back/images/shoulder-bridge.png"]


def test_body_links_keep_anchors_and_broken_ones_are_recorded(
    settings: Settings, project_dir: Path
) -> None:
    lesson(
        project_dir,
        """
        See [the bridge](01-shoulder-bridge.md#steps), [nothing](missing.md),
        ![a plank](images/plank.png), ![gone](images/gone.png),
        [outside](../../newsletter.toml), [a site](https://example.com/x) and [top](#top).
        """,
    )
    compiled = compile_message(settings, "test-lesson")
    email = compiled.personalise(recipient("Sam"))
    assert f"{BASE}/m/week-1-shoulder-bridge#steps" in _links(email.html)
    assert f"{BASE}/assets/protect-your-back/images/plank.png" in _images(email.html)
    broken = {(r.kind, r.target) for r in compiled.references if r.resolved is None}
    assert broken == {
        ("link", "missing.md"),
        ("image", "images/gone.png"),
        ("link", "../../newsletter.toml"),
    }
    assert "https://example.com/x" in _links(email.html)


def test_cta_may_link_to_another_content_file(settings: Settings) -> None:
    compiled = compile_message(settings, "issue-2026-12-winter-back-care")
    email = compiled.personalise(recipient("Sam"))
    target = f"{BASE}/m/week-5-ten-minute-routine"
    assert re.search(rf'<a href="{re.escape(target)}"[^>]*>[^<]*Do today', email.html)
    assert f"Do today's 10 minutes:\n{target}\n" in email.text
    cta = [r for r in compiled.references if r.field == "cta.url"]
    assert [(r.kind, r.resolved) for r in cta] == [("call-to-action link", target)]


def test_cta_anchor_points_into_the_web_version(settings: Settings, project_dir: Path) -> None:
    lesson(project_dir, "## Steps\n\nDo it.\n", extra="cta: {label: Go, url: '#steps'}")
    email = compile_message(settings, "test-lesson").personalise(recipient("Sam"))
    assert f"{BASE}/m/test-lesson#steps" in _links(email.html)


def test_cta_without_a_url_leads_to_the_subscribers_session(settings: Settings) -> None:
    compiled = compile_message(settings, "week-1-shoulder-bridge")
    assert compiled.message.cta is not None and compiled.message.cta.url is None
    session = f"{BASE}/session/protect-your-back/SESSION"
    reader = dataclasses.replace(recipient("Sam"), session_url=session)
    email = compiled.personalise(reader)
    assert re.search(rf'<a href="{re.escape(session)}"[^>]*>[^<]*Do today', email.html)
    assert f"Do today's 10 minutes:\n{session}\n" in email.text
    # Nobody's copy (web version, preview, check): the course's sample session so far.
    sample = compiled.personalise(sample_recipient(settings, None, compiled.message))
    assert f"{BASE}/m/week-1-shoulder-bridge/session" in _links(sample.html)


@pytest.mark.parametrize(
    ("sessions", "words"),
    [
        (0, "your next email will keep count"),
        (1, "logged 1 session in"),
        (2, "logged 2 sessions in"),
        (3, "turning into a habit"),
        (7, "logged 7 sessions in"),
    ],
)
def test_the_practice_note_is_the_courses_wording_for_the_count(
    settings: Settings, sessions: int, words: str
) -> None:
    compiled = compile_message(settings, "week-2-swan-dive")
    reader = dataclasses.replace(recipient("Sam"), practice_last_7_days=sessions)
    email = compiled.personalise(reader)
    assert words in " ".join(email.text.split())
    assert words in " ".join(html.unescape(email.html).split())


def test_the_welcome_has_no_practice_note(settings: Settings) -> None:
    welcome = compile_message(settings, "protect-your-back-welcome")
    email = welcome.personalise(recipient("Sam"))
    assert welcome.practice_notes[0] not in email.text


def test_a_course_without_its_own_wording_gets_the_general_one(
    settings: Settings, project_dir: Path
) -> None:
    (project_dir / "templates/courses/protect-your-back/practice_note.txt.j2").unlink()
    compiled = compile_message(settings, "week-2-swan-dive")
    assert compiled.practice_notes[4] == (
        "You've logged 4 sessions in the last 7 days. That's a habit in the\nmaking: well done."
    )


def test_broken_front_matter_image_is_recorded_and_left_out(
    settings: Settings, project_dir: Path
) -> None:
    lesson(project_dir, "Body.\n", extra="image: {src: images/nope.png, alt: Nothing}")
    compiled = compile_message(settings, "test-lesson")
    assert [(r.field, r.resolved) for r in compiled.references] == [("image.src", None)]
    assert "nope.png" not in compiled.personalise(recipient("Sam")).html


def test_preview_renderer_points_images_at_a_local_folder(settings: Settings) -> None:
    renderer = Project(settings).renderer_for(asset_base="assets")
    email = renderer.compile("week-2-swan-dive").personalise(recipient("Sam"))
    assert _images(email.html) == ["assets/protect-your-back/images/swan-dive.png"]


def test_logo_is_relative_to_the_content_folder(project_dir: Path) -> None:
    from newsletter.config import load_settings

    settings = load_settings(project_dir, logo="protect-your-back/images/plank.png")
    email = compile_message(settings, "issue-2027-01-build-slowly").personalise(recipient("S"))
    assert _images(email.html)[0] == f"{BASE}/assets/protect-your-back/images/plank.png"


# -- helpers -------------------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[str] = []
        self.paragraphs: list[str] = []
        self._in_p = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "a":
            self.links.append(attr.get("href") or "")
        elif tag == "img":
            self.images.append(attr.get("src") or "")
        elif tag == "p":
            self._in_p += 1
            self.paragraphs.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_p -= 1

    def handle_data(self, data: str) -> None:
        if self._in_p:
            self.paragraphs[-1] += data


def _collect(markup: str) -> _Collector:
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    return collector


def _links(markup: str) -> list[str]:
    return _collect(markup).links


def _images(markup: str) -> list[str]:
    return _collect(markup).images


def _paragraphs(markup: str) -> list[str]:
    return [p.strip() for p in _collect(markup).paragraphs]
