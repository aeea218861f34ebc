"""Findings, the report, and the next run's arithmetic."""

from __future__ import annotations

from datetime import time

import pytest

from newsletter.core.preflight import (
    Finding,
    any_time,
    blocking,
    duration,
    report_json,
    report_lines,
    send_seconds,
)


def test_lines_are_aligned_and_a_failure_stands_out():
    findings = [
        Finding("dns.mx", "ok", "example.com receives mail"),
        Finding("public.health", "fail", "could not connect", "run newsletter serve"),
    ]
    assert report_lines(findings) == [
        "ok    dns.mx         example.com receives mail",
        "FAIL  public.health  could not connect: run newsletter serve",
    ]
    assert blocking(findings)
    assert report_json(findings) == {
        "ok": False,
        "checks": [
            {"check": "dns.mx", "status": "ok", "summary": "example.com receives mail", "fix": ""},
            {
                "check": "public.health",
                "status": "fail",
                "summary": "could not connect",
                "fix": "run newsletter serve",
            },
        ],
    }


def test_warnings_and_skips_do_not_block():
    assert not blocking([Finding("a", "warn", "x"), Finding("b", "skip", "y")])


@pytest.mark.parametrize(
    ("emails", "per_request", "rate", "seconds"),
    [(0, 500, 10.0, 0.0), (1001, 500, 10.0, 0.3), (7200, 1, 2.0, 3600.0), (5, 1, None, None)],
)
def test_send_seconds(emails, per_request, rate, seconds):
    assert send_seconds(emails, per_request, rate) == seconds


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.3, "under a second"),
        (42, "42 s"),
        (200, "3 min 20 s"),
        (120, "2 min"),
        (7500, "2 h 5 min"),
        (7200, "2 h"),
    ],
)
def test_duration(seconds, said):
    assert duration(seconds) == said


def test_any_time_lifts_windows_and_skipped_days_only(project):
    courses = project.courses
    lifted = any_time(courses)
    for name, course in courses.items():
        schedule = lifted[name].schedule
        assert (schedule.send_window, schedule.skip_weekdays) == (None, frozenset())
        assert schedule.send_time == course.schedule.send_time
        assert lifted[name].lessons == course.lessons
    assert courses["protect-your-back"].schedule.send_window == (time(6), time(21))
