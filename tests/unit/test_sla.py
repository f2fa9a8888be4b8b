"""Business-time arithmetic of casebot/sla.py with the default UK policy.

Calendar: Europe/London, 09:00-17:30 Monday to Friday, GB/ENG bank holidays. Every expected value below was worked
out by hand and is written as a literal UTC datetime. Reminders for 2026:
  * GMT (UTC+0) until Sun 29 Mar 2026 01:00 UTC, then BST (UTC+1) until Sun 25 Oct 2026 01:00 UTC;
    so opening is 09:00 UTC in winter and 08:00 UTC in summer, closing 17:30 / 16:30 UTC.
  * Good Friday Fri 3 Apr, Easter Monday Mon 6 Apr, Christmas Fri 25 Dec, Boxing Day Sat 26 Dec
    (substitute bank holiday Mon 28 Dec).
  * A business day is 8.5 hours.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from casebot.sla import (
    DEFAULT_TARGETS,
    BusinessCalendar,
    CalendarError,
    Deadlines,
    SlaPolicy,
    Target,
    build_policy,
    describe,
    parse_duration,
)

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
CAL = BusinessCalendar()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def uk_policy() -> SlaPolicy:
    return build_policy(CAL, [(name, first, res) for name, (first, res) in DEFAULT_TARGETS.items()])


# --- BusinessCalendar.add ---------------------------------------------------------------------------------------

ADD_CASES = [
    # (id, start, amount, expected)
    ("before-opening", utc(2026, 3, 2, 7, 0), 1 * H, utc(2026, 3, 2, 10, 0)),
    ("during", utc(2026, 3, 3, 10, 0), 4 * H, utc(2026, 3, 3, 14, 0)),
    ("during-spills-to-next-day", utc(2026, 3, 3, 16, 0), 4 * H, utc(2026, 3, 4, 11, 30)),
    ("after-closing", utc(2026, 3, 3, 18, 0), 1 * H, utc(2026, 3, 4, 10, 0)),
    ("friday-evening-to-monday", utc(2026, 3, 6, 18, 0), 1 * H, utc(2026, 3, 9, 10, 0)),
    ("friday-half-hour-left", utc(2026, 3, 6, 17, 0), 1 * H, utc(2026, 3, 9, 9, 30)),
    ("saturday-start", utc(2026, 3, 7, 12, 0), 4 * H, utc(2026, 3, 9, 13, 0)),
    ("sunday-late", utc(2026, 3, 8, 23, 59), 30 * M, utc(2026, 3, 9, 9, 30)),
    # Exact boundaries at 17:30 (the deadline may fall exactly on closing; from closing nothing is left today).
    ("ends-exactly-at-closing", utc(2026, 3, 3, 16, 30), 1 * H, utc(2026, 3, 3, 17, 30)),
    ("one-minute-before-closing", utc(2026, 3, 3, 17, 29), 1 * M, utc(2026, 3, 3, 17, 30)),
    ("starts-exactly-at-closing", utc(2026, 3, 3, 17, 30), 1 * H, utc(2026, 3, 4, 10, 0)),
    ("starts-exactly-at-opening", utc(2026, 3, 3, 9, 0), 8 * H + 30 * M, utc(2026, 3, 3, 17, 30)),
    ("full-week", utc(2026, 3, 2, 9, 0), 5 * (8 * H + 30 * M), utc(2026, 3, 6, 17, 30)),
    # Christmas 2026: Fri 25 Dec and Mon 28 Dec (Boxing Day substitute) are closed.
    ("christmas-eve-evening", utc(2026, 12, 24, 17, 0), 1 * H, utc(2026, 12, 29, 9, 30)),
    ("christmas-eve-full-day", utc(2026, 12, 24, 10, 0), 8 * H + 30 * M, utc(2026, 12, 29, 10, 0)),
    ("christmas-day", utc(2026, 12, 25, 11, 0), 2 * H, utc(2026, 12, 29, 11, 0)),
    ("boxing-day-substitute", utc(2026, 12, 28, 11, 0), 2 * H, utc(2026, 12, 29, 11, 0)),
    # Spring DST (Sun 29 Mar 2026): Friday is GMT, Monday opens at 08:00 UTC.
    ("spring-dst-friday-to-monday", utc(2026, 3, 27, 17, 0), 1 * H, utc(2026, 3, 30, 8, 30)),
    ("spring-dst-weekend", utc(2026, 3, 28, 12, 0), 1 * H, utc(2026, 3, 30, 9, 0)),
    ("summer-before-opening", utc(2026, 6, 1, 7, 30), 1 * H, utc(2026, 6, 1, 9, 0)),
    ("summer-after-closing", utc(2026, 6, 2, 16, 45), 1 * H, utc(2026, 6, 3, 9, 0)),
    # Autumn DST (Sun 25 Oct 2026): Friday is BST (closes 16:30 UTC), Monday opens at 09:00 UTC.
    ("autumn-dst-friday-to-monday", utc(2026, 10, 23, 16, 0), 1 * H, utc(2026, 10, 26, 9, 30)),
    ("autumn-dst-weekend", utc(2026, 10, 24, 12, 0), 1 * H, utc(2026, 10, 26, 10, 0)),
    # Easter 2026: Good Friday 3 Apr and Easter Monday 6 Apr are closed (BST).
    ("easter-thursday-evening", utc(2026, 4, 2, 16, 0), 1 * H, utc(2026, 4, 7, 8, 30)),
    ("good-friday", utc(2026, 4, 3, 10, 0), 1 * H, utc(2026, 4, 7, 9, 0)),
    ("easter-monday", utc(2026, 4, 6, 10, 0), 1 * H, utc(2026, 4, 7, 9, 0)),
    # Zero: an in-hours start is its own deadline; out of hours it rolls to the next opening.
    ("zero-in-hours", utc(2026, 3, 3, 11, 17), dt.timedelta(0), utc(2026, 3, 3, 11, 17)),
    ("zero-saturday", utc(2026, 3, 7, 11, 0), dt.timedelta(0), utc(2026, 3, 9, 9, 0)),
]


@pytest.mark.parametrize(("start", "amount", "expected"), [c[1:] for c in ADD_CASES], ids=[c[0] for c in ADD_CASES])
def test_add(start: dt.datetime, amount: dt.timedelta, expected: dt.datetime) -> None:
    result = CAL.add(start, amount)
    assert result == expected
    assert result.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Same instants, written with other offsets: the result is the same UTC moment and is returned in UTC.
        (dt.datetime(2026, 3, 3, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))), utc(2026, 3, 3, 11, 0)),
        (dt.datetime(2026, 3, 2, 22, 0, tzinfo=ZoneInfo("America/New_York")), utc(2026, 3, 3, 10, 0)),
        (dt.datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Europe/London")), utc(2026, 7, 1, 9, 0)),
    ],
)
def test_add_accepts_any_aware_zone_and_answers_in_utc(start: dt.datetime, expected: dt.datetime) -> None:
    result = CAL.add(start, 1 * H)
    assert result == expected
    assert result.tzinfo is not None and result.utcoffset() == dt.timedelta(0)


def test_add_negative_amount_raises() -> None:
    with pytest.raises(ValueError, match="negative"):
        CAL.add(utc(2026, 3, 3, 10), -1 * M)


def test_add_naive_datetime_raises() -> None:
    with pytest.raises(ValueError, match="aware"):
        CAL.add(dt.datetime(2026, 3, 3, 10, 0), 1 * H)


@pytest.mark.parametrize(
    ("extra", "start", "expected"),
    [
        ((dt.date(2026, 3, 4),), utc(2026, 3, 3, 17, 0), utc(2026, 3, 5, 9, 30)),
        ((dt.date(2026, 3, 4), dt.date(2026, 3, 5)), utc(2026, 3, 3, 17, 0), utc(2026, 3, 6, 9, 30)),
        ((dt.date(2026, 12, 24),), utc(2026, 12, 23, 17, 0), utc(2026, 12, 29, 9, 30)),
        ((), utc(2026, 3, 3, 17, 0), utc(2026, 3, 4, 9, 30)),
    ],
)
def test_add_extra_holidays(extra: tuple[dt.date, ...], start: dt.datetime, expected: dt.datetime) -> None:
    assert BusinessCalendar(extra_holidays=extra).add(start, 1 * H) == expected


def test_extra_workday_opens_a_saturday() -> None:
    cal = BusinessCalendar(extra_workdays=(dt.date(2026, 3, 7),))
    assert cal.add(utc(2026, 3, 6, 17, 0), 1 * H) == utc(2026, 3, 7, 9, 30)


def test_calendar_without_business_days_raises_calendar_error() -> None:
    # Mondays only, no bank holidays: works; then every Monday for over ten years declared a holiday: gives up.
    cal = BusinessCalendar(workdays=(0,), holiday_country="", extra_holidays=())
    assert cal.add(utc(2026, 3, 7, 12), 1 * H) == utc(2026, 3, 9, 10, 0)
    mondays = tuple(dt.date(2026, 3, 9) + dt.timedelta(weeks=w) for w in range(-1, 600))
    with pytest.raises(CalendarError):
        BusinessCalendar(workdays=(0,), holiday_country="", extra_holidays=mondays).add(utc(2026, 3, 3), 1 * H)


# --- business_time_between --------------------------------------------------------------------------------------

BETWEEN_CASES = [
    ("whole-day", utc(2026, 3, 2, 9, 0), utc(2026, 3, 2, 17, 30), 8 * H + 30 * M),
    ("night-only", utc(2026, 3, 2, 18, 0), utc(2026, 3, 3, 8, 59), dt.timedelta(0)),
    ("partial-both-ends", utc(2026, 3, 2, 16, 0), utc(2026, 3, 3, 10, 0), 2 * H + 30 * M),
    ("over-weekend", utc(2026, 3, 6, 17, 0), utc(2026, 3, 9, 9, 30), 1 * H),
    ("weekend-only", utc(2026, 3, 7, 0, 0), utc(2026, 3, 9, 0, 0), dt.timedelta(0)),
    ("end-before-start", utc(2026, 3, 3, 12, 0), utc(2026, 3, 3, 10, 0), dt.timedelta(0)),
    ("end-equals-start", utc(2026, 3, 3, 12, 0), utc(2026, 3, 3, 12, 0), dt.timedelta(0)),
    ("christmas-week", utc(2026, 12, 24, 0, 0), utc(2026, 12, 30, 0, 0), 17 * H),
    ("spring-dst", utc(2026, 3, 27, 12, 0), utc(2026, 3, 30, 12, 0), 9 * H + 30 * M),
    ("spring-dst-full-days", utc(2026, 3, 27, 9, 0), utc(2026, 3, 30, 16, 30), 17 * H),
    ("autumn-dst", utc(2026, 10, 23, 12, 0), utc(2026, 10, 26, 12, 0), 7 * H + 30 * M),
    ("easter", utc(2026, 4, 2, 12, 0), utc(2026, 4, 7, 12, 0), 8 * H + 30 * M),
    ("summer-in-utc", utc(2026, 6, 1, 8, 0), utc(2026, 6, 1, 16, 30), 8 * H + 30 * M),
    ("full-week", utc(2026, 3, 2, 0, 0), utc(2026, 3, 9, 0, 0), 42 * H + 30 * M),
]


@pytest.mark.parametrize(
    ("start", "end", "expected"), [c[1:] for c in BETWEEN_CASES], ids=[c[0] for c in BETWEEN_CASES]
)
def test_business_time_between(start: dt.datetime, end: dt.datetime, expected: dt.timedelta) -> None:
    assert CAL.business_time_between(start, end) == expected


@pytest.mark.parametrize(
    ("start", "amount"),
    [
        (utc(2026, 3, 3, 10, 0), 4 * H),
        (utc(2026, 3, 27, 15, 0), 3 * H),
        (utc(2026, 10, 23, 15, 0), 3 * H),
        (utc(2026, 12, 23, 12, 0), 20 * H),
        (utc(2026, 4, 1, 9, 15), 25 * H + 30 * M),
    ],
)
def test_between_inverts_add_for_in_hours_starts(start: dt.datetime, amount: dt.timedelta) -> None:
    assert CAL.business_time_between(start, CAL.add(start, amount)) == amount


# --- calendar validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timezone": "Europe/Londres"},
        {"timezone": ""},
        {"timezone": "../../etc/passwd"},
        {"start": dt.time(17, 30), "end": dt.time(9, 0)},
        {"start": dt.time(9, 0), "end": dt.time(9, 0)},
        {"workdays": ()},
        {"workdays": (0, 7)},
        {"holiday_country": "XX"},
    ],
)
def test_bad_calendar_raises_calendar_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_holiday_names() -> None:
    assert CAL.holiday_name(dt.date(2026, 12, 28)) == "Boxing Day (observed)"
    assert CAL.holiday_name(dt.date(2026, 4, 3)) == "Good Friday"
    assert CAL.holiday_name(dt.date(2026, 3, 3)) is None
    assert BusinessCalendar(extra_holidays=(dt.date(2026, 3, 3),)).holiday_name(dt.date(2026, 3, 3)) == "holiday"


# --- parse_duration / describe -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "kept"),
    [
        ("30m", 30 * M, "30m"),
        ("10min", 10 * M, "10min"),
        ("4h", 4 * H, "4h"),
        ("1.5h", 90 * M, "1.5h"),
        (" 2 H ", 2 * H, "2 H"),
        ("1d", 8 * H + 30 * M, "1d"),
        ("3d", 25 * H + 30 * M, "3d"),
        ("2bd", 17 * H, "2bd"),
        ("0.5d", 4 * H + 15 * M, "0.5d"),
        ("0h", dt.timedelta(0), "0h"),
    ],
)
def test_parse_duration(text: str, amount: dt.timedelta, kept: str) -> None:
    target = parse_duration(text, CAL)
    assert target.amount == amount
    assert target.text == kept


def test_parse_duration_day_follows_calendar_hours() -> None:
    short = BusinessCalendar(start=dt.time(10, 0), end=dt.time(16, 0))
    assert parse_duration("1d", short).amount == 6 * H


@pytest.mark.parametrize("text", ["", "4", "h4", "4x", "-1h", "4 hours", "1w", "4h30m", "1,5h", "four hours"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(CalendarError):
        parse_duration(text, CAL)


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("1h", "1 hour"),
        ("4h", "4 hours"),
        ("1d", "1 business day"),
        ("3d", "3 business days"),
        ("2bd", "2 business days"),
        ("30m", "30 minutes"),
        ("1m", "1 minute"),
        ("1min", "1 minute"),
        ("1.0h", "1 hour"),
        ("1.50h", "1.5 hours"),
        ("10.0h", "10 hours"),
        ("10h", "10 hours"),
        ("0.5d", "0.5 business days"),
    ],
)
def test_describe(text: str, wording: str) -> None:
    assert describe(parse_duration(text, CAL)) == wording


def test_describe_keeps_unparseable_text() -> None:
    assert describe(Target(text="a fortnight", amount=dt.timedelta(days=14))) == "a fortnight"


# --- SlaPolicy.deadlines with the default UK targets --------------------------------------------------------------

DEADLINE_CASES = [
    # (id, priority, opened_at, first_response_due, resolution_due)
    ("critical", "critical", utc(2026, 3, 2, 10, 0), utc(2026, 3, 2, 11, 0), utc(2026, 3, 2, 14, 0)),
    ("high", "high", utc(2026, 3, 2, 10, 0), utc(2026, 3, 2, 14, 0), utc(2026, 3, 3, 10, 0)),
    ("medium", "medium", utc(2026, 3, 2, 10, 0), utc(2026, 3, 3, 10, 0), utc(2026, 3, 5, 10, 0)),
    ("low", "low", utc(2026, 3, 2, 10, 0), utc(2026, 3, 4, 10, 0), utc(2026, 3, 9, 10, 0)),
    ("critical-friday-night", "critical", utc(2026, 3, 6, 22, 0), utc(2026, 3, 9, 10, 0), utc(2026, 3, 9, 13, 0)),
    ("critical-christmas", "critical", utc(2026, 12, 24, 17, 0), utc(2026, 12, 29, 9, 30), utc(2026, 12, 29, 12, 30)),
    ("critical-spring-dst", "critical", utc(2026, 3, 27, 16, 0), utc(2026, 3, 27, 17, 0), utc(2026, 3, 30, 10, 30)),
    ("high-autumn-dst", "high", utc(2026, 10, 23, 12, 0), utc(2026, 10, 23, 16, 0), utc(2026, 10, 26, 13, 0)),
    ("medium-easter", "medium", utc(2026, 4, 1, 15, 0), utc(2026, 4, 2, 15, 0), utc(2026, 4, 8, 15, 0)),
]


@pytest.mark.parametrize(
    ("priority", "opened", "first", "resolution"),
    [c[1:] for c in DEADLINE_CASES],
    ids=[c[0] for c in DEADLINE_CASES],
)
def test_default_uk_deadlines(priority: str, opened: dt.datetime, first: dt.datetime, resolution: dt.datetime) -> None:
    assert uk_policy().deadlines(priority, opened) == Deadlines(first_response_due=first, resolution_due=resolution)


@pytest.mark.parametrize("priority", ["", "urgent", "Critical"])
def test_deadlines_unknown_priority_raises_key_error(priority: str) -> None:
    with pytest.raises(KeyError):
        uk_policy().deadlines(priority, utc(2026, 3, 2, 10))


def test_default_targets_match_support_policy() -> None:
    policy = uk_policy()
    got = {p: (t.first_response.amount, t.resolution.amount) for p, t in policy.targets.items()}
    assert got == {
        "critical": (1 * H, 4 * H),
        "high": (4 * H, 8 * H + 30 * M),
        "medium": (8 * H + 30 * M, 25 * H + 30 * M),
        "low": (17 * H, 42 * H + 30 * M),
    }
