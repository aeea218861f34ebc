"""Bad input: CSV files, front matter, schedule files and settings as people (and tools) really
write them. Each malformed input gets one clear line per problem naming the file (and line or
field), exit 1, and leaves the database exactly as it was. Never a traceback.

Commands run in this process through click's runner (the real CLI, the real database file):
these inputs are about parsing, not about processes, and hypothesis runs many of them.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsletter.core.errors import ContentError
from newsletter.files.content import parse_message
from newsletter.files.schedules import parse_schedule
from newsletter.store.schema import subscribers
from tests.reliability.conftest import ENROL, iso, snapshot

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def names(store) -> dict[str, str | None]:
    with store.read() as conn:
        return dict(conn.execute(sa.select(subscribers.c.email, subscribers.c.name)).all())


def assert_refused(result, *lines: str, code: int = 1) -> None:
    """Exit ``code`` (2: a configuration error) and exactly these ``error:`` lines (one per
    problem); no traceback, no output."""
    assert result.exit_code == code, result.output
    assert result.output.splitlines() == [f"error: {line}" for line in lines]


# -- CSV imports -----------------------------------------------------------------------------------


BAD_CSV = {
    "utf-16": (
        "email,name\nzoe@example.com,Zoë\n".encode("utf-16"),
        "not UTF-8 text (byte 0xFF); save it as UTF-8 and import again",
    ),
    "latin-1": (
        "email,name\nzoe@example.com,Zoë\n".encode("latin-1"),
        "not UTF-8 text (byte 0xEB); save it as UTF-8 and import again",
    ),
    "pipe-delimited": (
        b"email|name\npipe@example.com|Pipe\n",
        "no 'email' column in the header (found 'email|name')",
    ),
    "no-header": (
        b"ana@example.com,Ana\n",
        "no 'email' column in the header (found 'ana@example.com', 'ana')",
    ),
    "empty": (b"", "the file is empty; expected a header row with 'email'"),
    "huge-field": (
        b"email,name\nhuge@example.com," + b"x" * 20_000 + b"\n",
        ":2: column 'name' is too large (20,000 bytes; at most 10 KB)",
    ),
    "huge-record": (
        b'email,name\nbig@example.com,"' + b"a" * 200_000 + b'"\n',
        "not a readable CSV file: field larger than field limit (131072) (the record starting "
        "on line 2)",
    ),
    # Without the closing quote, everything after it would silently become one name.
    "unterminated-quote": (
        b'email,name\nann@example.com,"Ann\nbob@example.com,Bob\n',
        "not a readable CSV file: unexpected end of data (the record starting on line 2)",
    ),
    "text-after-quote": (
        b'email,name\nann@example.com,"Ann"ie\n',
        "not a readable CSV file: ',' expected after '\"' (the record starting on line 2)",
    ),
}


@pytest.mark.parametrize("case", BAD_CSV, ids=str)
def test_malformed_csv_files_are_refused_whole(case, cli, store, tmp_path):
    data, problem = BAD_CSV[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    before = snapshot(store)
    result = cli("subscribers", "import", str(path), "--now", iso(ENROL))
    separator = "" if problem.startswith(":") else ": "
    assert_refused(result, f"{path}{separator}{problem}")
    assert snapshot(store) == before


def test_every_bad_row_is_named_and_none_is_imported(cli, store, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(
        "email,name,timezone,course\n"
        "ok@example.com,Ok,,\n"
        "not-an-email,Bad,,\n"
        ",Nobody,,\n"
        "ok@example.com,Again,,\n"
        "tz@example.com,Tz,Mars/Olympus_Mons,\n"
        "course@example.com,Course,,no-such-course\n"
        "extra@example.com,Extra,,,surplus\n",
        encoding="utf-8",
    )
    before = snapshot(store)
    result = cli("subscribers", "import", str(path), "--now", iso(ENROL))
    assert_refused(
        result,
        f"{path}:3: invalid email address 'not-an-email': An email address must have an @-sign.",
        f"{path}:4: email is empty",
        f"{path}:5: duplicate address ok@example.com (first on line 2)",
        f"{path}:6: unknown timezone 'Mars/Olympus_Mons' (use an IANA name such as Europe/Berlin)",
        f"{path}:7: unknown course 'no-such-course' (known: protect-your-back)",
        f"{path}:8: has 5 fields but the header has 4",
    )
    assert snapshot(store) == before


ODD_BUT_FINE = {
    "utf-8-bom": "email,name\nzoe@example.com,Zoë\n".encode("utf-8-sig"),
    "semicolons": b'email;name\nzoe@example.com;"Zo\xc3\xab; the second"\n',
    "tabs": b"email\tname\nzoe@example.com\tZo\xc3\xab\n",
    "crlf": b"email,name\r\nzoe@example.com,Zo\xc3\xab\r\n",
    "cr-only": b"email,name\rzoe@example.com,Zo\xc3\xab\r",
    "quoted-newline": b'email,name\nzoe@example.com,"Zo\xc3\xab\r\nBcc: eve@evil.example"\n',
    "control-characters": b"email,name\nzoe@example.com,Zo\x00\xc3\xab\x07\x1b[31m\n",
    "doubled-quotes": b'email,name\nzoe@example.com,"Zo\xc3\xab ""Z"" Smith"\n',
}
EXPECTED_NAMES = {
    "semicolons": "Zoë; the second",
    "quoted-newline": "Zoë Bcc: eve@evil.example",  # one line: it will be a header
    "control-characters": "Zoë[31m",  # no NUL, bell or escape reaches a greeting or header
    "doubled-quotes": 'Zoë "Z" Smith',
}


@pytest.mark.parametrize("case", ODD_BUT_FINE, ids=str)
def test_odd_but_valid_csv_files_import_exactly(case, cli, store, tmp_path):
    path = tmp_path / f"{case}.csv"
    path.write_bytes(ODD_BUT_FINE[case])
    result = cli("subscribers", "import", str(path), "--now", iso(ENROL))
    assert result.exit_code == 0, result.output
    assert names(store) == {"zoe@example.com": EXPECTED_NAMES.get(case, "Zoë")}


cells = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@FUZZ
@given(
    rows=st.lists(st.lists(cells, min_size=1, max_size=5), max_size=6),
    header=st.sampled_from(["email,name", "email;name;timezone", "name,email,course", "x,y"]),
    raw=st.binary(max_size=200),
)
@example(rows=[], header="email,name", raw=b'"\n\x00\xff')
def test_any_csv_either_imports_cleanly_or_changes_nothing(cli, store, tmp_path, rows, header, raw):
    """Whatever the file holds: exit 0, or exit 1 with ``error: FILE…`` lines and no change."""
    out = io.StringIO()
    delimiter = ";" if ";" in header else ","
    csv.writer(out, delimiter=delimiter).writerows([header.split(delimiter), *rows])
    path = tmp_path / "fuzz.csv"
    path.write_bytes(out.getvalue().encode() + raw)
    before = snapshot(store)
    result = cli("subscribers", "import", str(path), "--now", iso(ENROL))
    if result.exit_code == 0:
        assert all(
            name is None or (name.isprintable() and name == name.strip())
            for name in names(store).values()
        )
    else:
        assert result.exit_code == 1
        assert all(line.startswith(f"error: {path}") for line in result.output.splitlines())
        assert snapshot(store) == before


# -- front matter ----------------------------------------------------------------------------------

FRONT = "id: zz-bad-issue\nkind: issue\nsubject: A subject\npreheader: A preheader\n"
BAD_FRONT_MATTER = {
    "wrong-type": (
        FRONT + "date: next tuesday\n",
        "{path}: date: Input should be a valid date or datetime, invalid character in year",
    ),
    "missing-field": (
        FRONT.replace("subject: A subject\n", ""),
        "{path}: subject: is required",
    ),
    "misspelt-field": (
        FRONT + "tagz: [a]\n",
        "{path}: tagz: is not a known field (did you mean 'tags'?)",
    ),
    "not-a-mapping": (
        "- just\n- a list\n",
        "{path}:2: front matter must be a mapping of field: value",
    ),
    "bad-yaml": (
        FRONT + "title: [unclosed\n",
        "{path}:7: invalid YAML front matter: expected ',' or ']', but got '<stream end>'",
    ),
    "deeply-nested": (
        FRONT + "tags: " + "[" * 5000 + "]" * 5000 + "\n",
        "{path}: invalid YAML front matter: nested too deeply",
    ),
    "huge": (
        FRONT + "title: " + "x" * 70_000 + "\n",
        "{path}: front matter is over 64 KB: keep it to the fields, and write the email below "
        "the closing '---'",
    ),
    "alias-bomb": (
        FRONT + "a: &a [x, x]\nb: [*a, *a]\n",
        "{path}:7: invalid YAML front matter: aliases (*name) are not allowed: write the value out",
    ),
    "subject-with-newline": (
        FRONT.replace("A subject", '"Hello\\r\\nBcc: eve@evil.example"'),
        "{path}: subject: must be a single line",
    ),
}


@pytest.mark.parametrize("case", BAD_FRONT_MATTER, ids=str)
def test_bad_front_matter_stops_send_before_anything_is_written(case, cli, store, project_dir):
    text, problem = BAD_FRONT_MATTER[case]
    path = project_dir / "content" / "issues" / "zz-bad.md"
    path.write_text(f"---\n{text}---\nThe body.\n", encoding="utf-8")
    before = snapshot(store)
    result = cli("send", "--now", iso(ENROL))
    assert_refused(result, problem.format(path=path))
    assert snapshot(store) == before


def test_a_content_file_that_is_not_utf8(cli, store, project_dir):
    path = project_dir / "content" / "issues" / "zz-latin1.md"
    path.write_bytes(f"---\n{FRONT}---\nCaf\xe9.\n".encode("latin-1"))
    before = snapshot(store)
    assert_refused(
        cli("send", "--now", iso(ENROL)), f"{path}: not UTF-8 text: save the file as UTF-8"
    )
    assert snapshot(store) == before


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "kind",
                "subject",
                "preheader",
                "course",
                "position",
                "date",
                "tags",
                "cta",
                "image",
                "exercises",
                "title",
                "other",
            ]
        ),
        yaml_values,
    ),
    text=st.text(max_size=80),
)
def test_any_front_matter_is_a_message_or_a_content_error(fields, text):
    import yaml

    for raw in (yaml.safe_dump(fields, allow_unicode=True), text):
        try:
            parse_message(Path("content/x.md"), f"---\n{raw}\n---\nBody.\n")
        except ContentError as err:
            assert err.problems and all(p.startswith("content/x.md") for p in err.problems)


# -- schedules, time zones and settings ------------------------------------------------------------

SCHEDULE = 'title = "Protect your back"\ndescription = "A course"\nfirst_lesson = "on-enrolment"\n'
BAD_SCHEDULES = {
    "impossible-time": (
        SCHEDULE + 'weekday = "monday"\nsend_time = "25:00"\n',
        "send_time: must be HH:MM (got '25:00')",
    ),
    "sixty-minutes": (
        SCHEDULE + 'weekday = "monday"\nsend_time = "07:60"\n',
        "send_time: must be HH:MM (got '07:60')",
    ),
    "window-backwards": (
        SCHEDULE + 'weekday = "monday"\nsend_time = "07:00"\nsend_window = ["21:00", "06:00"]\n',
        "send_window: end 06:00 must be after start 21:00",
    ),
    "time-outside-window": (
        SCHEDULE + 'weekday = "monday"\nsend_time = "05:00"\nsend_window = ["06:00", "21:00"]\n',
        "send_time: 05:00 is outside send_window 06:00-21:00 (the end is exclusive)",
    ),
    "no-day-left": (
        SCHEDULE + 'every_days = 1\nsend_time = "07:00"\nskip_weekdays = '
        '["monday","tuesday","wednesday","thursday","friday","saturday","sunday"]\n',
        "skip_weekdays: skips every day of the week: nothing could be sent",
    ),
    "unknown-weekday": (
        SCHEDULE + 'weekday = "funday"\nsend_time = "07:00"\n',
        "weekday: unknown weekday 'funday' (use one of monday, tuesday, wednesday, thursday, "
        "friday, saturday, sunday)",
    ),
    "deeply-nested": (
        SCHEDULE + 'weekday = "monday"\nsend_time = "07:00"\nx = ' + "[" * 3000 + "]" * 3000 + "\n",
        "invalid TOML: nested too deeply",
    ),
}


@pytest.mark.parametrize("case", BAD_SCHEDULES, ids=str)
def test_bad_schedules_stop_send_before_anything_is_written(case, cli, store, project_dir):
    text, problem = BAD_SCHEDULES[case]
    path = project_dir / "schedules" / "protect-your-back.toml"
    path.write_text(text, encoding="utf-8")
    before = snapshot(store)
    result = cli("send", "--now", iso(ENROL))
    assert_refused(result, f"{path}: {problem}")
    assert snapshot(store) == before


def test_an_unknown_timezone_is_refused_and_nothing_is_added(cli, store):
    before = snapshot(store)
    result = cli("subscribers", "add", "tz@example.com", "--timezone", "Europe/Atlantis")
    assert_refused(
        result, "unknown timezone 'Europe/Atlantis' (use an IANA name such as Europe/Berlin)"
    )
    assert snapshot(store) == before


def test_an_unknown_default_timezone_is_a_config_error(cli, store):
    before = snapshot(store)
    result = cli("send", "--now", iso(ENROL), env={"NEWSLETTER_DEFAULT_TIMEZONE": "Mars/Base"})
    assert_refused(
        result,
        "default_timezone: unknown timezone 'Mars/Base' (use an IANA name such as Europe/Berlin) "
        "(set key 'default_timezone' in newsletter.toml or env NEWSLETTER_DEFAULT_TIMEZONE)",
        code=2,
    )
    assert snapshot(store) == before


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "right/Europe/London"])
def test_a_zone_file_that_is_no_iana_zone_is_refused_everywhere(cli, store, tmp_path, zone):
    """ZoneInfo opens these (they are files under /usr/share/zoneinfo), but lessons would then
    follow the server's own clock setting, a "-00" placeholder, or leap-second time."""
    before = snapshot(store)
    message = f"unknown timezone {zone!r} (use an IANA name such as Europe/Berlin)"
    result = cli("subscribers", "add", "tz@example.com", "--timezone", zone)
    assert_refused(result, message)
    source = tmp_path / "zones.csv"
    source.write_text(f"email,timezone\ntz@example.com,{zone}\n", encoding="utf-8")
    assert_refused(cli("subscribers", "import", str(source)), f"{source}:2: {message}")
    result = cli("status", env={"NEWSLETTER_DEFAULT_TIMEZONE": zone})
    assert_refused(
        result,
        f"default_timezone: {message} (set key 'default_timezone' in newsletter.toml or env "
        "NEWSLETTER_DEFAULT_TIMEZONE)",
        code=2,
    )
    assert snapshot(store) == before


@FUZZ
@given(text=st.text(max_size=200))
@example(text='send_time = 07:00:30\nweekday = "monday"')
@example(text="send_window = [1, 2, 3]")
def test_any_schedule_file_is_a_schedule_or_a_content_error(text):
    try:
        parse_schedule(Path("schedules/course.toml"), (SCHEDULE + text).encode())
    except ContentError as err:
        assert all(p.startswith("schedules/course.toml") for p in err.problems)


@pytest.mark.parametrize(
    ("zone", "spring_forward"),
    [("Europe/Berlin", "2027-03-28"), ("America/New_York", "2027-03-14")],
)
def test_a_send_time_that_does_not_exist_on_the_dst_day_still_sends_once(
    zone, spring_forward, cli, store, project, project_dir
):
    """02:30 does not exist on the day clocks jump from 02:00 to 03:00; the lesson still goes
    out that day, once, and the course keeps its rhythm afterwards."""
    from datetime import UTC, datetime

    from tests.factories import enrolled

    path = project_dir / "schedules" / "protect-your-back.toml"
    path.write_text(SCHEDULE + 'every_days = 1\nsend_time = "02:30"\nmin_gap_hours = 20\n')
    day = datetime.fromisoformat(spring_forward).replace(tzinfo=UTC)
    enrolled(store, project, "dst@example.com", day - timedelta(days=2), timezone=zone)
    moment = day - timedelta(days=2)
    while moment < day + timedelta(days=2):  # cron every two hours, across the change
        assert cli("send", "--now", iso(moment)).exit_code == 0
        moment += timedelta(hours=2)
    from tests.reliability.conftest import ledger_rows

    rows = ledger_rows(store)
    assert [r.position for r in rows] == list(range(len(rows)))  # each lesson once, in order
    local = ZoneInfo(zone)
    due = {r.due_at.astimezone(local).date(): r.due_at.astimezone(local) for r in rows}
    assert len(due) == len(rows)  # never two on one local day
    # On the day itself 02:30 is skipped over: the lesson is due at the first real instant after.
    on_the_day = due[day.date()]
    assert (on_the_day.hour, on_the_day.minute) == (3, 30), on_the_day
    assert all(r.sent_at - r.due_at < timedelta(hours=2) for r in rows[1:])
