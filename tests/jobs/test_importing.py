"""CSV import and export: formats people really have, every kind of bad row, and round trips."""

from __future__ import annotations

import io
import string
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import Settings
from newsletter.core.courses import Timing
from newsletter.core.errors import ImportProblem, StoreError
from newsletter.files.schedules import load_schedules
from newsletter.jobs.importing import ImportReport, export_csv, import_csv
from newsletter.jobs.subscriptions import enrol_subscriber
from newsletter.store import Store
from newsletter.store.schema import enrolments, events, metadata, subscribers, suppressions
from newsletter.store.stopping import forget, unsubscribe
from newsletter.store.subscribers import add_subscriber, get_subscriber
from newsletter.store.suppressions import suppress

COURSE = "protect-your-back"
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def timing(settings: Settings) -> Timing:
    return Timing(load_schedules(settings.schedules_dir), settings.default_timezone)


def write(folder: Path, text: str | bytes, name: str = "list.csv") -> Path:
    path = folder / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def run(store: Store, timing: Timing, path: Path, **kwargs: Any) -> ImportReport:
    with store.write() as conn:
        return import_csv(conn, path, timing=timing, now=kwargs.pop("now", NOW), **kwargs)


def problems(store: Store, timing: Timing, path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ImportProblem) as err:
        run(store, timing, path, **kwargs)
    assert str(err.value) == "\n".join(err.value.problems)
    return err.value.problems


def everyone(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(subscribers).order_by(subscribers.c.id)).all())


def snapshot(store: Store) -> dict[str, list[Any]]:
    """Every row of every table except the import log in events."""
    with store.read() as conn:
        found = {t.name: list(conn.execute(sa.select(t)).all()) for t in metadata.sorted_tables}
    found["events"] = [e for e in found["events"] if e.type != "imported"]
    return found


# --- good files -----------------------------------------------------------------------------


def test_import_reads_every_column(store: Store, timing: Timing, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        " Email , NAME ,Timezone,Course,Subscribed_At,Tags,City,Plan\n"
        "sam@example.com,Sam  O'Brien,Europe/Berlin,protect-your-back,2026-01-31,"
        "5k; trail|5k,Leeds,\n"
        "ann+news@bücher.example,,,,2025-06-01T09:30:00+02:00,,,gold\n",
    )
    report = run(store, timing, path)
    assert (report.added, report.enrolled, report.invalid, report.skipped) == (2, 1, 0, [])
    sam, ann = everyone(store)
    assert (sam.email, sam.name, sam.timezone) == (
        "sam@example.com",
        "Sam O'Brien",
        "Europe/Berlin",
    )
    assert sam.created_at == datetime(2026, 1, 31, tzinfo=UTC)
    assert (sam.tags, sam.attributes, sam.status) == (["5k", "trail"], {"city": "Leeds"}, "active")
    assert (ann.email, ann.name, ann.timezone) == ("ann+news@bücher.example", None, None)
    assert ann.created_at == datetime(2025, 6, 1, 7, 30, tzinfo=UTC)
    assert (ann.tags, ann.attributes) == ([], {"plan": "gold"})
    with store.read() as conn:
        (row,) = conn.execute(sa.select(enrolments)).all()
    assert (row.subscriber_id, row.course, row.enrolled_at, row.position) == (
        sam.id,
        COURSE,
        NOW,
        0,
    )
    assert row.next_due_at is not None


def test_course_option_enrols_rows_without_a_course(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    path = write(tmp_path, "email,course\na@example.com,\nb@example.com,protect-your-back\n")
    assert run(store, timing, path, course=COURSE).enrolled == 2
    with pytest.raises(StoreError, match="unknown course 'nope'"):
        run(store, timing, path, course="nope")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("\ufeffemail;name\r\nsam@example.com;Sam\r\n", id="excel-bom-semicolon"),
        pytest.param("email\tname\nsam@example.com\tSam\n", id="tab"),
        pytest.param('"email","name"\r\n"sam@example.com","Sam"\r\n', id="all-quoted"),
        pytest.param("email,name\n\nsam@example.com,Sam\n,\n", id="blank-lines"),
        pytest.param("name;email;\nSam;sam@example.com;\n", id="trailing-delimiter"),
    ],
)
def test_spreadsheet_exports(store: Store, timing: Timing, tmp_path: Path, content: str) -> None:
    assert run(store, timing, write(tmp_path, content)).added == 1
    (sam,) = everyone(store)
    assert (sam.email, sam.name, sam.attributes) == ("sam@example.com", "Sam", {})


def test_quotes_and_embedded_newlines(store: Store, timing: Timing, tmp_path: Path) -> None:
    content = (
        'email,name,note\na@example.com,"Smith, Jr.","two\nlines, ""quoted"""\nbad-address,B,\n'
    )
    path = write(tmp_path, content)
    # The bad row starts on physical line 4: the quoted newline made record 2 two lines long.
    assert problems(store, timing, path) == [
        f"{path}:4: invalid email address 'bad-address': An email address must have an @-sign."
    ]
    report = run(store, timing, path, skip_invalid=True)
    assert report.added == 1
    (a,) = everyone(store)
    assert (a.name, a.attributes) == ("Smith, Jr.", {"note": 'two\nlines, "quoted"'})


def test_header_only_imports_nothing(store: Store, timing: Timing, tmp_path: Path) -> None:
    report = run(store, timing, write(tmp_path, "email,name\n"))
    assert (report.added, report.skipped) == (0, [])


# --- bad files and bad rows -----------------------------------------------------------------


def test_every_bad_row_is_listed_and_nothing_is_imported(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    rows = [
        "email,name,timezone,course,subscribed_at,status",
        "good@example.com,Good,,,,",  # line 2
        "not-an-address,,,,,",
        ",No Email,,,,",
        "tz@example.com,,Mars/Olympus,,,",
        "course@example.com,,,no-such-course,,",
        "date@example.com,,,,31/01/2026,",
        "future@example.com,,,,2030-01-01,",
        "GOOD@example.com,Twice,,,,",  # line 9: same address as line 2
        "status@example.com,,,,,vip",
        "many@example.com,,Nowhere,nope,,",
        "extra@example.com,,,,,,surplus",
    ]
    path = write(tmp_path, "\n".join(rows) + "\n")
    assert problems(store, timing, path) == [
        f"{path}:3: invalid email address 'not-an-address': An email address must have an @-sign.",
        f"{path}:4: email is empty",
        f"{path}:5: unknown timezone 'Mars/Olympus' (use an IANA name such as Europe/Berlin)",
        f"{path}:6: unknown course 'no-such-course' (known: protect-your-back)",
        f"{path}:7: subscribed_at '31/01/2026' is not an ISO date or date-time",
        f"{path}:8: subscribed_at '2030-01-01' is in the future",
        f"{path}:9: duplicate address GOOD@example.com (first on line 2)",
        f"{path}:10: status 'vip' must be active, pending, unsubscribed, complained, bounced or "
        "suppressed",
        f"{path}:11: unknown timezone 'Nowhere' (use an IANA name such as Europe/Berlin); "
        "unknown course 'nope' (known: protect-your-back)",
        f"{path}:12: has 7 fields but the header has 6",
    ]
    assert everyone(store) == []


def test_skip_invalid_imports_the_good_rows_and_reports_the_rest(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    path = write(
        tmp_path, "email,timezone\na@example.com,\nbad,\nb@example.com,Nowhere\nc@example.com,\n"
    )
    report = run(store, timing, path, skip_invalid=True)
    assert (report.added, report.invalid) == (2, 2)
    assert [line.split(": ")[0] for line in report.skipped] == [f"{path}:3", f"{path}:4"]
    assert [s.email for s in everyone(store)] == ["a@example.com", "c@example.com"]


def test_case_insensitive_duplicates_in_one_file(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    path = write(tmp_path, "email\nA@B.com\na@b.com\n")
    assert problems(store, timing, path) == [
        f"{path}:3: duplicate address a@b.com (first on line 2)"
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", "the file is empty; expected a header row with 'email'", id="empty"),
        pytest.param(b"\xef\xbb\xbf\n\n", "the file is empty", id="bom-and-blank-lines"),
        pytest.param(b"name,mail\nSam,sam@example.com\n", "no 'email' column", id="no-email"),
        pytest.param(
            "email,name\nzoë@example.com,Zoë\n".encode("latin-1"),
            "not UTF-8 text (byte 0xEB); save it as UTF-8 and import again",
            id="latin-1",
        ),
        pytest.param(b"email,Email\na@b.com,a@b.com\n", "column 'email' appears twice", id="twice"),
    ],
)
def test_file_level_problems_are_one_line(
    store: Store, timing: Timing, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = write(tmp_path, content)
    (line,) = problems(store, timing, path, skip_invalid=True)
    assert line.startswith(f"{path}") and expected in line


def test_latin_1_late_in_a_big_file_still_imports_nothing(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    good = "".join(f"r{i}@example.com,Runner\n" for i in range(3000))
    path = write(tmp_path, ("email,name\n" + good + "zoë@example.com,Zoë\n").encode("latin-1"))
    (line,) = problems(store, timing, path, skip_invalid=True)
    assert "not UTF-8" in line
    assert everyone(store) == []


def test_huge_fields(store: Store, timing: Timing, tmp_path: Path) -> None:
    big = "x" * (10 * 1024 + 1)
    path = write(tmp_path, f"email,bio\na@example.com,{big}\nb@example.com,short\n")
    assert problems(store, timing, path) == [
        f"{path}:2: column 'bio' is too large (10,241 bytes; at most 10 KB)"
    ]
    huge = write(tmp_path, f"email,bio\na@example.com,{'y' * 200_000}\n", name="huge.csv")
    (line,) = problems(store, timing, huge, skip_invalid=True)
    assert line.startswith(f"{huge}: not a readable CSV file: field larger than field limit")


def test_missing_file(store: Store, timing: Timing, tmp_path: Path) -> None:
    (line,) = problems(store, timing, tmp_path / "nope.csv")
    assert line == f"{tmp_path / 'nope.csv'}: cannot read: No such file or directory"


# --- existing and suppressed addresses ------------------------------------------------------


def test_importing_twice_changes_nothing(store: Store, timing: Timing, tmp_path: Path) -> None:
    path = write(tmp_path, "email,name,tags\nsam@example.com,Sam,a\nann@example.com,Ann,\n")
    run(store, timing, path, course=COURSE)
    before = snapshot(store)
    report = run(store, timing, path, course=COURSE, now=datetime(2027, 1, 5, tzinfo=UTC))
    assert (report.added, report.already, report.enrolled) == (0, 2, 0)
    assert snapshot(store) == before


def test_existing_subscribers_are_left_alone_but_enrolled(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    with store.write() as conn:
        add_subscriber(conn, "Sam@example.com", now=NOW, name="Sam")
    path = write(tmp_path, "email,name\nsam@EXAMPLE.com,Samuel\n")
    report = run(store, timing, path, course=COURSE)
    assert (report.added, report.already, report.enrolled) == (0, 1, 1)
    (sam,) = everyone(store)
    assert (sam.email, sam.name) == ("Sam@example.com", "Sam")
    with store.read() as conn:
        assert conn.execute(sa.select(enrolments.c.course)).scalars().all() == [COURSE]


def test_suppressed_and_forgotten_addresses_are_skipped_not_errors(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    with store.write() as conn:
        gone = add_subscriber(conn, "gone@example.com", now=NOW)
        unsubscribe(conn, gone, NOW)
        forgotten = add_subscriber(conn, "forgotten@example.com", now=NOW)
        forget(conn, forgotten, NOW)
        suppress(conn, "bounced@example.com", "bounced", "ses", NOW)
    content = (
        "email\nnew@example.com\nGONE@example.com\nforgotten@example.com\nbounced@example.com\n"
    )
    path = write(tmp_path, content)
    report = run(store, timing, path, course=COURSE)
    assert (report.added, report.suppressed, report.invalid) == (1, 3, 0)
    assert report.skipped == [
        f"{path}:3: GONE@example.com is suppressed (unsubscribed); skipped",
        f"{path}:4: forgotten@example.com was forgotten; skipped",
        f"{path}:5: bounced@example.com is suppressed (bounced); skipped",
    ]
    emails = [s.email for s in everyone(store)]
    assert emails == ["gone@example.com", None, "new@example.com"]
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(enrolments)).scalar() == 1


def test_unsubscribed_rows_stay_unsubscribed(store: Store, timing: Timing, tmp_path: Path) -> None:
    path = write(tmp_path, "email,status\nann@example.com,Unsubscribed\nbob@example.com,pending\n")
    report = run(store, timing, path, course=COURSE)
    assert (report.added, report.enrolled) == (2, 1)
    ann, bob = everyone(store)
    assert (ann.status, ann.unsubscribed_at, bob.status) == ("unsubscribed", NOW, "pending")
    with store.read() as conn:
        (sup,) = conn.execute(sa.select(suppressions)).all()
        assert conn.execute(sa.select(enrolments.c.subscriber_id)).scalars().all() == [bob.id]
    assert (sup.email, sup.reason, sup.source) == ("ann@example.com", "unsubscribed", "import")
    with pytest.raises(StoreError, match="cannot be added again"), store.write() as conn:
        add_subscriber(conn, "ann@example.com", now=NOW)


def test_import_is_chunked_and_logged_once(
    store: Store, timing: Timing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("newsletter.jobs.importing.CHUNK", 7)
    rows = "".join(f"r{i}@example.com\n" for i in range(50))
    path = write(tmp_path, "email\n" + rows + "r3@example.com\n")
    assert len(problems(store, timing, path)) == 1  # the duplicate comes after 7 chunks
    assert everyone(store) == []
    report = run(store, timing, path, course=COURSE, skip_invalid=True)
    assert (report.added, report.enrolled) == (50, 50)
    with store.read() as conn:
        logged = conn.execute(sa.select(events.c.type, events.c.data)).all()
    assert logged == [("imported", {"added": 50, "already": 0, "enrolled": 50})]


# --- export ---------------------------------------------------------------------------------


def exported(store: Store) -> str:
    out = io.StringIO()
    with store.read() as conn:
        export_csv(conn, out)
    return out.getvalue()


def test_export_columns(store: Store, timing: Timing, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name,timezone,tags,subscribed_at,plan,city\n"
        "sam@example.com,Sam,Europe/Berlin,a|b,2026-01-31T10:00:00Z,gold,\n"
        "ann@example.com,,,,,,Leeds\n"
        "zed@example.com,,,,,,\n",
    )
    run(store, timing, path, course=COURSE)
    with store.write() as conn:
        forget(conn, get_subscriber(conn, "zed@example.com"), NOW)
    assert exported(store) == (
        "email,name,timezone,status,courses,created_at,tags,city,plan\n"
        "sam@example.com,Sam,Europe/Berlin,active,protect-your-back,2026-01-31T10:00:00Z,a;b,,gold\n"
        "ann@example.com,,,active,protect-your-back,2026-12-01T08:00:00Z,,Leeds,\n"
    )


_printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
_key = st.text(string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=12).filter(
    lambda k: (
        k not in {"email", "name", "timezone", "course", "courses", "tags", "status"}
        and k not in {"subscribed_at", "created_at"}
    )
)
_value = st.text(_printable, min_size=1, max_size=40).map(str.strip).filter(bool)
_tag = st.text(string.ascii_letters + string.digits + "-_ .é", min_size=1, max_size=10)


@st.composite
def _people(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    return [
        {
            "name": draw(st.none() | st.text(_printable, max_size=30)),
            "timezone": draw(st.sampled_from([None, "Asia/Kolkata", "America/St_Johns"])),
            "attributes": draw(st.dictionaries(_key, _value, max_size=3)),
            "tags": draw(st.lists(_tag.map(str.strip).filter(bool), max_size=3, unique=True)),
            "created_at": draw(
                st.datetimes(datetime(2000, 1, 1), datetime(2026, 11, 30), timezones=st.just(UTC))
            ),
        }
        for _ in range(count)
    ]


@pytest.fixture
def scratch_stores() -> Iterator[tuple[Store, Store, Path]]:
    with tempfile.TemporaryDirectory() as folder:
        first, second = Store(f"sqlite:///{folder}/a.db"), Store(f"sqlite:///{folder}/b.db")
        yield first, second, Path(folder)
        first.dispose()
        second.dispose()


def _clear(*stores: Store) -> None:
    for store in stores:
        with store.write() as conn:
            for t in reversed(metadata.sorted_tables):
                conn.execute(t.delete())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(people=_people())
def test_export_then_import_round_trips(
    people: list[dict[str, Any]], scratch_stores: tuple[Store, Store, Path], timing: Timing
) -> None:
    _round_trip(people, scratch_stores, timing)


# Starts of cells that a spreadsheet reads as formulas, and quotes that could be mistaken for
# the export's own neutralising quote.
_TAG_STARTS = st.sampled_from(["=", "+", "-", "@", "'", "'=", "''-"])  # no list separators
_FORMULA_STARTS = _TAG_STARTS | st.just("=cmd|' /C calc'!A0")


@st.composite
def _formula_people(draw: st.DrawFn) -> list[dict[str, Any]]:
    people = draw(_people())
    for person in people:
        person["name"] = draw(_FORMULA_STARTS) + (person["name"] or "")
        person["attributes"] = {
            k: draw(_FORMULA_STARTS) + v for k, v in person["attributes"].items()
        }
        person["tags"] = list(dict.fromkeys(draw(_TAG_STARTS) + t for t in person["tags"]))
    return people


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(people=_formula_people())
def test_formula_like_cells_round_trip_exactly(
    people: list[dict[str, Any]], scratch_stores: tuple[Store, Store, Path], timing: Timing
) -> None:
    """Names, attributes and tags that start like formulas (neutralised on export) import back
    as they were: nothing is lost, and no quote is added."""
    _round_trip(people, scratch_stores, timing)


def _round_trip(
    people: list[dict[str, Any]], scratch_stores: tuple[Store, Store, Path], timing: Timing
) -> None:
    first, second, folder = scratch_stores
    _clear(first, second)
    with first.write() as conn:
        for i, person in enumerate(people):
            sub = add_subscriber(
                conn,
                f"p{i}@example.com",
                now=NOW,
                name=person["name"],
                timezone=person["timezone"],
                attributes=person["attributes"],
                tags=person["tags"],
            )
            conn.execute(
                sa.update(subscribers)
                .where(subscribers.c.id == sub.id)
                .values(created_at=person["created_at"])
            )
            enrol_subscriber(conn, sub, COURSE, timing, NOW)
    csv_text = exported(first)
    path = write(folder, csv_text, name="round.csv")
    assert run(second, timing, path).added == len(people)
    fields = ("email", "name", "timezone", "status", "attributes", "tags", "created_at")
    assert [tuple(getattr(r, f) for f in fields) for r in everyone(second)] == [
        tuple(getattr(r, f) for f in fields) for r in everyone(first)
    ]
    assert exported(second) == csv_text


def test_an_unsubscribed_subscriber_is_never_enrolled_again(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    with store.write() as conn:  # unsubscribed by some other tool that left no suppression row
        sub = add_subscriber(conn, "old@example.com", now=NOW)
        conn.execute(sa.update(subscribers).values(status="unsubscribed"))
    path = write(tmp_path, "email\nold@example.com\n")
    report = run(store, timing, path, course=COURSE)
    assert (report.already, report.suppressed, report.enrolled) == (0, 1, 0)
    assert report.skipped == [f"{path}:2: old@example.com is suppressed (unsubscribed); skipped"]
    assert everyone(store)[0].id == sub.id


# -- CSV injection: nothing exported starts a formula -----------------------------------------

HOSTILE_NAMES = ["=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(A1)", "'=already quoted"]


def test_export_neutralises_every_formula_cell(store: Store, timing: Timing) -> None:
    import csv

    with store.write() as conn:
        for i, name in enumerate(HOSTILE_NAMES):
            add_subscriber(
                conn, f"p{i}@example.com", now=NOW, name=name, attributes={"=evil": "-1"}
            )
        add_subscriber(conn, "-dash@example.com", now=NOW, name="Dash", tags=["@team"])
    rows = list(csv.reader(io.StringIO(exported(store))))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c[:1] in set("=+-@\t\r")], cells
    names = [row[1] for row in rows[1:]]
    assert names == ["'" + name for name in HOSTILE_NAMES] + ["Dash"]
    assert rows[0][-1] == "'=evil"  # the attribute's column name too
    assert rows[-1][0] == "'-dash@example.com" and rows[-1][6] == "'@team"


def test_import_never_turns_a_tab_formula_into_a_formula(
    store: Store, timing: Timing, tmp_path: Path
) -> None:
    path = write(tmp_path, 'email,name,note\nann@example.com,"\t=1+1","\r@SUM(A1)"\n')
    run(store, timing, path)
    (ann,) = everyone(store)
    assert (ann.name, ann.attributes) == ("'=1+1", {"note": "'@SUM(A1)"})


def test_import_takes_off_the_exports_quotes(store: Store, timing: Timing, tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.com,'-Ann\nbob@example.com,'Tis Bob\n")
    run(store, timing, path)
    assert [r.name for r in everyone(store)] == ["-Ann", "'Tis Bob"]
