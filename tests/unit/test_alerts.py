"""Alerts and wording of casebot/alerts.py with the default UK policy (see test_sla_clocks.py for the calendar).

Defaults: reminder shares (0.75,), quiet priorities medium and low, escalation for critical and high. Every
expected moment was worked out by hand and is a literal UTC datetime (all of March 2026 before the 29th is GMT).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casebot.alerts import (
    Alert,
    ClockName,
    ClockView,
    alerts_due,
    describe_overdue,
    explain,
    format_local,
    next_alert_at,
    promise,
    time_left,
)
from casebot.case import Priority
from casebot.sla import DEFAULT_TARGETS, BusinessCalendar, Pause, Plan, SlaPolicy, build_policy

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
CAL = BusinessCalendar()
C, HI, MED, LOW = Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.LOW
ENTERPRISE = Plan("Enterprise", clients=("@bigcorp.example",), out_of_hours=frozenset({C, MED}))
PARIS = BusinessCalendar(timezone="Europe/Paris", holiday_country="FR", holiday_subdivision=None)
POLICY: SlaPolicy = build_policy(CAL, [(n, a, b) for n, (a, b) in DEFAULT_TARGETS.items()], plans=(ENTERPRISE,))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def view(priority: Priority, opened: dt.datetime, plan: Plan | None = None, pauses: tuple[Pause, ...] = (),
         responded: bool = False) -> ClockView:
    d = POLICY.deadlines(priority, opened, plan, pauses)
    return ClockView(priority, plan, opened, None if responded else d.first_response_due, d.resolution_due, pauses)


def kinds(alerts: list[Alert]) -> list[tuple[str, str, float]]:
    return [(a.kind, a.target, a.threshold) for a in alerts]


# Critical opened Mon 2 Mar 2026 10:00: first response due 11:00 (75 % at 10:45), resolution due 14:00 (75 % at 13:00).
CRIT = view(C, utc(2026, 3, 2, 10))
FR: ClockName = "first_response"
RES: ClockName = "resolution"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 3, 2, 10, 0), []),
        (utc(2026, 3, 2, 10, 44), []),
        (utc(2026, 3, 2, 10, 45), [("reminder", FR, 0.75)]),
        (utc(2026, 3, 2, 10, 59), [("reminder", FR, 0.75)]),
        (utc(2026, 3, 2, 11, 0), [("breach", FR, 1.0), ("escalation", FR, 1.0)]),
        (utc(2026, 3, 2, 13, 0), [("breach", FR, 1.0), ("escalation", FR, 1.0), ("reminder", RES, 0.75)]),
        # Down from 10:00 to 20:00: the latest state only, breaches and escalations, never the reminders as well.
        (utc(2026, 3, 2, 20, 0), [("breach", FR, 1.0), ("escalation", FR, 1.0), ("breach", RES, 1.0),
                                  ("escalation", RES, 1.0)]),
    ],
)
def test_alerts_due_critical(now: dt.datetime, expected: list[tuple[str, str, float]]) -> None:
    assert kinds(alerts_due(POLICY, CRIT, now)) == expected


def test_alert_moments_and_dues() -> None:
    assert alerts_due(POLICY, CRIT, utc(2026, 3, 2, 10, 50)) == [
        Alert("reminder", FR, 0.75, due=utc(2026, 3, 2, 11), at=utc(2026, 3, 2, 10, 45))
    ]
    # After downtime the breach is dated at the deadline, not at the scan.
    assert alerts_due(POLICY, CRIT, utc(2026, 3, 3, 9), escalate=frozenset()) == [
        Alert("breach", FR, 1.0, due=utc(2026, 3, 2, 11), at=utc(2026, 3, 2, 11)),
        Alert("breach", RES, 1.0, due=utc(2026, 3, 2, 14), at=utc(2026, 3, 2, 14)),
    ]


def test_responded_and_resolved_clocks_are_silent() -> None:
    responded = view(C, utc(2026, 3, 2, 10), responded=True)
    assert kinds(alerts_due(POLICY, responded, utc(2026, 3, 2, 13))) == [("reminder", RES, 0.75)]
    done = ClockView(C, None, utc(2026, 3, 2, 10), None, None)
    assert alerts_due(POLICY, done, utc(2026, 3, 9)) == []
    assert next_alert_at(POLICY, done, utc(2026, 3, 2, 10)) is None


# High Mon 2 Mar 10:00, shares 0.5/0.75/0.9. First response 4 h, due 14:00: 12:00, 13:00, 13:36.
# Resolution 8.5 h, due Tue 3 Mar 10:00: 4.25 h -> Mon 14:15; 6.375 h -> Mon 16:22:30; 7.65 h -> Mon 17:30 is 7.5 h,
# then 9 min on Tue -> Tue 09:09.
SHARES = (0.5, 0.75, 0.9)
HIGH = view(HI, utc(2026, 3, 2, 10))
HIGH_CHAIN = [
    (utc(2026, 3, 2, 12, 0), [("reminder", FR, 0.5)]),
    (utc(2026, 3, 2, 13, 0), [("reminder", FR, 0.75)]),
    (utc(2026, 3, 2, 13, 36), [("reminder", FR, 0.9)]),
    (utc(2026, 3, 2, 14, 0), [("breach", FR, 1.0), ("escalation", FR, 1.0)]),
    (utc(2026, 3, 2, 14, 15), [("reminder", RES, 0.5)]),
    (utc(2026, 3, 2, 16, 22, 30), [("reminder", RES, 0.75)]),
    (utc(2026, 3, 3, 9, 9), [("reminder", RES, 0.9)]),
    (utc(2026, 3, 3, 10, 0), [("breach", RES, 1.0), ("escalation", RES, 1.0)]),
]


def walk(v: ClockView, after: dt.datetime, shares: tuple[float, ...] = (0.75,)) -> list[tuple[dt.datetime, list[
        tuple[str, str, float]]]]:
    """Follow next_alert_at as the scan would; at each stop, what alerts_due has that the previous stop had not."""
    steps: list[tuple[dt.datetime, list[tuple[str, str, float]]]] = []
    seen = kinds(alerts_due(POLICY, v, after, shares))
    for _ in range(50):
        moment = next_alert_at(POLICY, v, after, shares)
        if moment is None:
            return steps
        now = kinds(alerts_due(POLICY, v, moment, shares))
        steps.append((moment, [k for k in now if k not in seen]))
        seen, after = now, moment
    raise AssertionError("next_alert_at never ran out")


def test_next_alert_chain_yields_each_alert_once() -> None:
    steps = walk(HIGH, utc(2026, 3, 2, 10), SHARES)
    assert steps == HIGH_CHAIN
    flat = [k for _, new in steps for k in new]
    assert len(flat) == len(set(flat))


def test_next_alert_at_from_between_thresholds() -> None:
    assert next_alert_at(POLICY, HIGH, utc(2026, 3, 2, 12, 30), SHARES) == utc(2026, 3, 2, 13)
    assert next_alert_at(POLICY, HIGH, utc(2026, 3, 2, 17, 0), SHARES) == utc(2026, 3, 3, 9, 9)
    assert next_alert_at(POLICY, HIGH, utc(2026, 3, 3, 10, 0), SHARES) is None
    assert next_alert_at(POLICY, HIGH, utc(2026, 3, 9, 0, 0), SHARES) is None


def test_downtime_gets_latest_state_and_each_share_once() -> None:
    # Down from Mon 12:30 to Tue 09:30: the scan then sends the first-response breach and the 90 % reminder, once.
    assert kinds(alerts_due(POLICY, HIGH, utc(2026, 3, 3, 9, 30), SHARES)) == [
        ("breach", FR, 1.0), ("escalation", FR, 1.0), ("reminder", RES, 0.9)]
    assert walk(HIGH, utc(2026, 3, 3, 9, 30), SHARES) == [HIGH_CHAIN[-1]]


# Medium (quiet) Mon 2 Mar 10:00: first response due Tue 3 Mar 10:00 (75 % = 6 h 22.5 min -> Mon 16:22:30);
# resolution (25.5 h) due Thu 5 Mar 10:00 (75 % = 19 h 7.5 min: Mon 7.5 + Tue 8.5 + 3 h 7.5 min -> Wed 12:07:30).
MEDIUM = view(MED, utc(2026, 3, 2, 10))


def test_medium_chain() -> None:
    assert walk(MEDIUM, utc(2026, 3, 2, 10)) == [
        (utc(2026, 3, 2, 16, 22, 30), [("reminder", FR, 0.75)]),
        (utc(2026, 3, 3, 10, 0), [("breach", FR, 1.0)]),  # medium does not escalate
        (utc(2026, 3, 4, 12, 7, 30), [("reminder", RES, 0.75)]),
        (utc(2026, 3, 5, 10, 0), [("breach", RES, 1.0)]),
    ]


@pytest.mark.parametrize(
    ("now", "expected", "next_at"),
    [
        # Down since Mon 16:00; back at Tue 03:00: nothing at 3 a.m., the reminder waits for the 09:00 opening.
        (utc(2026, 3, 3, 3, 0), [], utc(2026, 3, 3, 9, 0)),
        (utc(2026, 3, 3, 9, 0), [("reminder", FR, 0.75)], utc(2026, 3, 3, 10, 0)),
        # Back on Wed 4 Mar 03:00 after the breach: the breach (not the reminder) at the opening.
        (utc(2026, 3, 4, 3, 0), [], utc(2026, 3, 4, 9, 0)),
        (utc(2026, 3, 4, 9, 0), [("breach", FR, 1.0)], utc(2026, 3, 4, 12, 7, 30)),
        # A Saturday scan waits for Monday's opening.
        (utc(2026, 3, 7, 12, 0), [], utc(2026, 3, 9, 9, 0)),
        (utc(2026, 3, 9, 9, 0), [("breach", FR, 1.0), ("breach", RES, 1.0)], None),
        # Closing itself is open for mail; a minute later it is quiet, and the same state at the next opening is
        # nothing new.
        (utc(2026, 3, 3, 17, 30), [("breach", FR, 1.0)], utc(2026, 3, 4, 12, 7, 30)),
        (utc(2026, 3, 3, 17, 31), [], utc(2026, 3, 4, 9, 0)),
    ],
)
def test_quiet_priority_at_night(now: dt.datetime, expected: list[tuple[str, str, float]],
                                 next_at: dt.datetime | None) -> None:
    assert kinds(alerts_due(POLICY, MEDIUM, now)) == expected
    assert next_alert_at(POLICY, MEDIUM, now) == next_at


def test_non_quiet_priority_at_night() -> None:
    assert kinds(alerts_due(POLICY, CRIT, utc(2026, 3, 3, 3, 0), escalate=frozenset())) == [
        ("breach", FR, 1.0), ("breach", RES, 1.0)]
    assert kinds(alerts_due(POLICY, MEDIUM, utc(2026, 3, 3, 3, 0), quiet=frozenset())) == [("reminder", FR, 0.75)]


def test_24x7_priority_is_never_quiet() -> None:
    # Enterprise covers medium 24x7: opened Sun 3 Jan 2027 02:00, first response 8.5 h -> 10:30 (75 % at 08:22:30),
    # resolution 25.5 h -> Mon 4 Jan 03:30 (75 % = 19 h 7.5 min -> Sun 21:07:30).
    v = view(MED, utc(2027, 1, 3, 2), ENTERPRISE)
    assert v.first_response_due == utc(2027, 1, 3, 10, 30)
    assert v.resolution_due == utc(2027, 1, 4, 3, 30)
    assert kinds(alerts_due(POLICY, v, utc(2027, 1, 3, 8, 30))) == [("reminder", FR, 0.75)]
    assert walk(v, utc(2027, 1, 3, 2)) == [
        (utc(2027, 1, 3, 8, 22, 30), [("reminder", FR, 0.75)]),
        (utc(2027, 1, 3, 10, 30), [("breach", FR, 1.0)]),
        (utc(2027, 1, 3, 21, 7, 30), [("reminder", RES, 0.75)]),
        (utc(2027, 1, 4, 3, 30), [("breach", RES, 1.0)]),
    ]


def test_shares_measure_resolution_without_paused_time() -> None:
    # High Mon 2 Mar 10:00 paused Mon 16:00-Tue 11:00: resolution due Tue 13:30; 75 % = 6 h 22.5 min of unpaused
    # business time: Mon 10-16 = 6 h, then 22.5 min from Tue 11:00 -> Tue 11:22:30.
    v = view(HI, utc(2026, 3, 2, 10), pauses=(Pause(utc(2026, 3, 2, 16), utc(2026, 3, 3, 11)),), responded=True)
    assert v.resolution_due == utc(2026, 3, 3, 13, 30)
    assert alerts_due(POLICY, v, utc(2026, 3, 3, 11, 22)) == []
    assert alerts_due(POLICY, v, utc(2026, 3, 3, 11, 22, 30)) == [
        Alert("reminder", RES, 0.75, due=utc(2026, 3, 3, 13, 30), at=utc(2026, 3, 3, 11, 22, 30))]
    assert next_alert_at(POLICY, v, utc(2026, 3, 3, 11)) == utc(2026, 3, 3, 11, 22, 30)


def test_paused_resolution_clock_is_silent() -> None:
    v = view(HI, utc(2026, 3, 2, 10), pauses=(Pause(utc(2026, 3, 2, 11)),), responded=True)
    assert v.resolution_due is None
    assert alerts_due(POLICY, v, utc(2026, 3, 9)) == []
    assert next_alert_at(POLICY, v, utc(2026, 3, 2, 11)) is None


def test_raise_after_pause_is_breached_at_once() -> None:
    # Medium Mon 2 Mar 10:00 paused Mon 12:00-Tue 12:00, raised to critical at Tue 14:00: resolution due Tue 14:00.
    pauses = (Pause(utc(2026, 3, 2, 12), utc(2026, 3, 3, 12)),)
    v = view(C, utc(2026, 3, 2, 10), pauses=pauses, responded=True)
    assert kinds(alerts_due(POLICY, v, utc(2026, 3, 3, 14))) == [("breach", RES, 1.0), ("escalation", RES, 1.0)]


@pytest.mark.parametrize("shares", [(1.0,), (0.0,), (0.5, 1.5), (-0.1,)])
def test_bad_shares(shares: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        alerts_due(POLICY, CRIT, utc(2026, 3, 2, 10), shares)


# --- wording -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "calendar", "text"),
    [
        (utc(2026, 12, 29, 11, 30), CAL, "11:30 on Tuesday 29 December 2026, UK time"),
        (utc(2026, 7, 1, 9, 0), CAL, "10:00 on Wednesday 1 July 2026, UK time"),
        (utc(2026, 3, 29, 0, 59), CAL, "00:59 on Sunday 29 March 2026, UK time"),
        (utc(2026, 3, 29, 1, 0), CAL, "02:00 on Sunday 29 March 2026, UK time"),
        (utc(2026, 7, 1, 9, 0), PARIS, "11:00 on Wednesday 1 July 2026, Europe/Paris time"),
    ],
)
def test_format_local(value: dt.datetime, calendar: BusinessCalendar, text: str) -> None:
    assert format_local(value, calendar) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (2 * H + 15 * M, "2 hours 15 minutes left"),
        (1 * H, "1 hour left"),
        (1 * M, "1 minute left"),
        (dt.timedelta(seconds=30), "less than a minute left"),
        (dt.timedelta(seconds=119), "1 minute left"),
        (dt.timedelta(0), "due now"),
        (-(8 * H + 30 * M) - 30 * M, "overdue by 1 business day 30 minutes"),
        (-(17 * H), "overdue by 2 business days"),
        (-(9 * H + 45 * M), "overdue by 1 business day 1 hour 15 minutes"),
        (-dt.timedelta(seconds=5), "overdue by less than a minute"),
    ],
)
def test_describe_overdue(delta: dt.timedelta, text: str) -> None:
    assert describe_overdue(delta) == text


def test_describe_overdue_without_business_days() -> None:
    assert describe_overdue(10 * H, day_length=None) == "10 hours left"


def test_time_left_counts_business_time() -> None:
    # Due Tue 3 Mar 10:00; at Mon 17:00 half an hour today and an hour tomorrow are left; at Tue 11:00, 1 h overdue.
    assert time_left(POLICY, HI, utc(2026, 3, 3, 10), utc(2026, 3, 2, 17)) == 90 * M
    assert time_left(POLICY, HI, utc(2026, 3, 3, 10), utc(2026, 3, 3, 11)) == -1 * H
    assert time_left(POLICY, C, utc(2027, 1, 3, 6), utc(2027, 1, 3, 2), ENTERPRISE) == 4 * H


@pytest.mark.parametrize(
    ("priority", "at", "plan", "expected"),
    [
        (HI, utc(2026, 7, 1, 9), None, {
            "opened_at": "2026-07-01T10:00:00+01:00", "clock_starts": "2026-07-01T10:00:00+01:00",
            "first_response_due": "2026-07-01T14:00:00+01:00", "resolution_due": "2026-07-02T10:00:00+01:00"}),
        (C, utc(2026, 12, 26, 12), None, {
            "opened_at": "2026-12-26T12:00:00+00:00", "clock_starts": "2026-12-29T09:00:00+00:00",
            "first_response_due": "2026-12-29T10:00:00+00:00", "resolution_due": "2026-12-29T13:00:00+00:00"}),
        (C, utc(2027, 1, 3, 2), ENTERPRISE, {
            "opened_at": "2027-01-03T02:00:00+00:00", "clock_starts": "2027-01-03T02:00:00+00:00",
            "first_response_due": "2027-01-03T03:00:00+00:00", "resolution_due": "2027-01-03T06:00:00+00:00"}),
    ],
)
def test_promise(priority: Priority, at: dt.datetime, plan: Plan | None, expected: dict[str, str]) -> None:
    assert promise(POLICY, priority, at, plan) == expected


# --- explain -----------------------------------------------------------------------------------------------------


def test_explain_christmas_pause() -> None:
    # Medium Wed 23 Dec 2026 16:00, paused Thu 24 Dec 10:00 - Tue 29 Dec 10:00 (see test_sla_clocks "over-christmas").
    lines = explain(POLICY, MED, utc(2026, 12, 23, 16), None, [Pause(utc(2026, 12, 24, 10), utc(2026, 12, 29, 10))],
                    utc(2026, 12, 30, 12))
    text = "\n".join(lines)
    assert "within business hours: the clock starts at once" in text
    assert "Wed 23 Dec 2026: counts 16:00-17:30, 1 h 30 min." in lines
    assert "Thu 24 Dec 2026: counts 09:00-17:30, 8 h 30 min; resolution clock paused 10:00-17:30, 7 h 30 min." in lines
    assert "bank holiday (Christmas Day)" in text
    assert "bank holiday (Boxing Day (observed))" in text
    assert "weekend" in text
    assert "removes 8 h 30 min of counted time from the resolution clock; the rest was outside business hours" in text
    assert ("Resolution due 16:00 on Thursday 31 December 2026, UK time: 25 h 30 min counted from 16:00 on Wednesday "
            "23 December 2026, UK time, not counting paused time = 1 h 30 min (Wed 23 Dec 2026) + 1 h (Thu 24 Dec "
            "2026) + 7 h 30 min (Tue 29 Dec 2026) + 8 h 30 min (Wed 30 Dec 2026) + 7 h (Thu 31 Dec 2026)") in text
    assert "First response due 16:00 on Thursday 24 December 2026, UK time" in text
    assert lines[-1] == ("At 12:00 on Wednesday 30 December 2026, UK time: first response overdue by 1 business day "
                         "4 hours 30 minutes; resolution 1 business day 4 hours left.")


def test_explain_out_of_hours_and_new_year() -> None:
    lines = explain(POLICY, HI, utc(2026, 12, 31, 18), None, [], None)
    text = "\n".join(lines)
    assert ("outside business hours (after closing): the clock starts at the next opening, 09:00 on Monday 4 January "
            "2027, UK time") in text
    assert ("Fri 1 Jan 2027: bank holiday (New Year's Day); Sat 2 Jan 2027 - Sun 3 Jan 2027: weekend: "
            "not counted.") in lines
    assert "Resolution due 17:30 on Monday 4 January 2027, UK time" in text  # exactly at closing


def test_explain_24x7_and_open_pause() -> None:
    lines = explain(POLICY, C, utc(2027, 1, 3, 2), ENTERPRISE, [Pause(utc(2027, 1, 3, 3))], utc(2027, 1, 3, 4))
    text = "\n".join(lines)
    assert "24x7 cover for critical: the clock starts at once and every hour counts" in text
    assert "Paused since 03:00 on Sunday 3 January 2027, UK time and still paused" in text
    assert "(1 h of counted time not counted so far)" in text
    assert "1 h of 4 h counted before the pause, 3 h left when it resumes" in text
    assert "First response due 03:00 on Sunday 3 January 2027, UK time" in text


def test_explain_weekend_arrival() -> None:
    text = "\n".join(explain(POLICY, C, utc(2026, 3, 7, 12), None, [], None))
    assert "outside business hours (weekend): the clock starts at the next opening, 09:00 on Monday 9 March" in text


def test_naive_now_raises() -> None:
    with pytest.raises(ValueError, match="aware"):
        alerts_due(POLICY, CRIT, dt.datetime(2026, 3, 2, 10))
    with pytest.raises(ValueError, match="aware"):
        next_alert_at(POLICY, CRIT, dt.datetime(2026, 3, 2, 10))


@settings(max_examples=30, deadline=None)
@given(
    opened=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31),
                        timezones=st.just(dt.UTC)).map(lambda d: d.replace(second=0, microsecond=0)),
    priority=st.sampled_from(list(Priority)),
    plan=st.sampled_from([None, ENTERPRISE]),
    shares=st.sets(st.sampled_from([0.25, 0.5, 0.75, 0.9]), max_size=3).map(lambda s: tuple(sorted(s))),
)
def test_chain_property(opened: dt.datetime, priority: Priority, plan: Plan | None, shares: tuple[float, ...]) -> None:
    """Walking next_alert_at from the opening meets every share and both breaches once each, in order, and ends."""
    v = view(priority, opened, plan)
    steps = walk(v, opened, shares)
    flat = [k for _, new in steps for k in new if k[0] != "escalation"]
    expected = {(kind, target, share) for target in (FR, RES)
                for kind, share in [("reminder", s) for s in shares] + [("breach", 1.0)]}
    assert sorted(flat) == sorted(expected)
    moments = [m for m, _ in steps]
    assert moments == sorted(moments) and len(set(moments)) == len(moments)
    assert all(new for _, new in steps)  # every stop brings something new
