"""The on_change rule for deliveries of a message gone from content/: pure."""

from __future__ import annotations

from newsletter.core.courses import Course
from newsletter.core.orphans import Orphan, Resolution, decide
from newsletter.core.plan_diff import Rename, Version
from tests.content_files import schedule

SCHEDULE = schedule()
COURSES = {
    "c": Course(SCHEDULE, ("a", "b2")),
    "pinned": Course(schedule("pinned", on_change="pin"), ("b2",)),
}


def renamed(old: str, new: str, course: str = "c") -> dict[str, Rename]:
    version = Version(new, "lesson", course, 1, f"{course}/{new}.md", "B", "digest")
    return {old: Rename(old, version, "same file and subject")}


def test_remap_moves_the_rows_to_the_renamed_lesson() -> None:
    assert decide("b", "c", renamed("b", "b2"), COURSES) == Resolution(
        "move", "renamed 'b2' (same file and subject; on_change = \"remap\")", "b2"
    )


def test_everything_else_cancels() -> None:
    gone = "'b' is gone from content/"
    assert decide("b", "c", {}, COURSES) == Resolution("cancel", gone)
    assert decide("b", "unknown", renamed("b", "b2"), COURSES) == Resolution("cancel", gone)
    assert decide("b", "c", renamed("b", "x"), COURSES).reason == (
        f"{gone} ('x' has its words, in another course)"
    )
    assert decide("b", "pinned", renamed("b", "b2"), COURSES).reason == (
        f"{gone} (renamed 'b2', same file and subject; on_change = \"pin\" skips it)"
    )
    assert decide("i", None, {}, COURSES) == Resolution("cancel", "issue 'i' is gone from content/")


def test_an_orphan_as_data() -> None:
    orphan = Orphan("b", "c", "c/b.md", {"due": 2, "uncertain": 1}, Resolution("cancel", "gone"))
    assert (orphan.kind, orphan.outstanding) == ("lesson", 3)
    assert orphan.as_dict() == {
        "message_id": "b",
        "kind": "lesson",
        "course": "c",
        "path": "content/c/b.md",
        "outstanding": 3,
        "states": {"due": 2, "uncertain": 1},
        "subscribers": [],
        "action": "cancel",
        "moves_to": None,
        "reason": "gone",
    }
