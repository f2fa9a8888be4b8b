"""SLA clocks of casebot/sla.py: plans (24x7 cover, target overrides), pauses, priority changes, properties.

Default UK policy: Europe/London, 09:00-17:30 Mon-Fri, England and Wales bank holidays; targets first response /
resolution: critical 1h/4h, high 4h/1d, medium 1d/3d, low 2d/5d; a business day is 8 h 30 min. Every expected
value is worked out by hand from a calendar and written as a literal UTC datetime. Reminders:
  * GMT = UTC until Sun 29 Mar 2026 01:00 UTC; BST = UTC+1 until Sun 25 Oct 2026 01:00 UTC; BST again from
    Sun 28 Mar 2027 01:00 UTC. Opening 09:00 local = 09:00 UTC in winter, 08:00 UTC in summer.
  * Closed: Fri 25 Dec 2026 (Christmas), Mon 28 Dec 2026 (Boxing Day substitute), Fri 1 Jan 2027 (New Year),
    Fri 26 Mar 2027 (Good Friday), Mon 29 Mar 2027 (Easter Monday).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casebot.case import Priority
from casebot.sla import (
    DEFAULT_TARGETS,
    PRIORITIES,
    BusinessCalendar,
    Deadlines,
    Pause,
    Plan,
    PlanError,
    PriorityTargets,
    SlaPolicy,
    Target,
    build_policy,
    parse_duration,
)

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
CAL = BusinessCalendar()
C, HI, MED, LOW = Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.LOW


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def targets(first: str, resolution: str) -> PriorityTargets:
    return PriorityTargets(parse_duration(first, CAL), parse_duration(resolution, CAL))


ENTERPRISE = Plan("Enterprise", clients=("@BigCorp.example", "cto@partner.example"), out_of_hours=frozenset({C}),
                  oncall="oncall@support.example")
ENHANCED = Plan("Enhanced", clients=("@small.example",), targets={C: targets("30m", "2h")})
ALL_HOURS = Plan("All hours", clients=("@night.example",), out_of_hours=frozenset({C, HI}))
POLICY: SlaPolicy = build_policy(CAL, [(n, a, b) for n, (a, b) in DEFAULT_TARGETS.items()],
                                 plans=(ENTERPRISE, ENHANCED, ALL_HOURS))


def test_priorities_alias_case_priorities() -> None:
    from casebot import case

    assert PRIORITIES is case.PRIORITIES
    assert PRIORITIES == ("critical", "high", "medium", "low")


def test_targets_keyed_by_priority_and_plain_strings_still_work() -> None:
    assert set(POLICY.targets) == set(Priority)
    assert POLICY.targets["high"] is POLICY.targets[HI]


# --- deadlines without plans ------------------------------------------------------------------------------------

DEADLINES = [
    # (id, priority, opened_at, first_response_due, resolution_due)
    ("before-0900", HI, utc(2026, 3, 3, 7, 0), utc(2026, 3, 3, 13, 0), utc(2026, 3, 3, 17, 30)),
    ("after-1730", C, utc(2026, 3, 3, 18, 0), utc(2026, 3, 4, 10, 0), utc(2026, 3, 4, 13, 0)),
    ("exactly-0900-due-at-closing", MED, utc(2026, 3, 4, 9, 0), utc(2026, 3, 4, 17, 30), utc(2026, 3, 6, 17, 30)),
    ("exactly-1730-starts-next-morning", C, utc(2026, 3, 4, 17, 30), utc(2026, 3, 5, 10, 0), utc(2026, 3, 5, 13, 0)),
    ("low-multi-day", LOW, utc(2026, 3, 2, 13, 0), utc(2026, 3, 4, 13, 0), utc(2026, 3, 9, 13, 0)),
    ("weekend-arrival", HI, utc(2026, 3, 7, 11, 0), utc(2026, 3, 9, 13, 0), utc(2026, 3, 9, 17, 30)),
    ("christmas-2026", MED, utc(2026, 12, 24, 12, 0), utc(2026, 12, 29, 12, 0), utc(2026, 12, 31, 12, 0)),
    ("new-year-2027", HI, utc(2026, 12, 31, 15, 0), utc(2027, 1, 4, 10, 30), utc(2027, 1, 4, 15, 0)),
    ("easter-2027-and-dst", C, utc(2027, 3, 25, 17, 0), utc(2027, 3, 30, 8, 30), utc(2027, 3, 30, 11, 30)),
    ("spring-dst-2027-multi-day", MED, utc(2027, 3, 24, 12, 0), utc(2027, 3, 25, 12, 0), utc(2027, 3, 31, 11, 0)),
    ("spring-dst-2026-weekend", C, utc(2026, 3, 28, 14, 0), utc(2026, 3, 30, 9, 0), utc(2026, 3, 30, 12, 0)),
    ("autumn-dst-2026-low", LOW, utc(2026, 10, 22, 10, 0), utc(2026, 10, 26, 11, 0), utc(2026, 10, 29, 11, 0)),
]


@pytest.mark.parametrize(("priority", "opened", "first", "resolution"), [c[1:] for c in DEADLINES],
                         ids=[c[0] for c in DEADLINES])
def test_deadlines(priority: Priority, opened: dt.datetime, first: dt.datetime, resolution: dt.datetime) -> None:
    got = POLICY.deadlines(priority, opened)
    assert got == Deadlines(first, resolution)
    assert got.first_response_due.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("opened", "start"),
    [
        (utc(2026, 3, 3, 7, 0), utc(2026, 3, 3, 9, 0)),  # before opening
        (utc(2026, 3, 3, 9, 0), utc(2026, 3, 3, 9, 0)),  # exactly at opening
        (utc(2026, 3, 3, 17, 29), utc(2026, 3, 3, 17, 29)),
        (utc(2026, 3, 3, 17, 30), utc(2026, 3, 4, 9, 0)),  # exactly at closing: nothing left today
        (utc(2026, 3, 6, 20, 0), utc(2026, 3, 9, 9, 0)),  # Friday night
        (utc(2026, 12, 24, 18, 0), utc(2026, 12, 29, 9, 0)),  # Christmas
        (utc(2027, 3, 25, 18, 0), utc(2027, 3, 30, 8, 0)),  # Easter 2027, then BST
        (dt.datetime(2026, 7, 1, 8, 30, tzinfo=ZoneInfo("Europe/London")), utc(2026, 7, 1, 8, 0)),
    ],
)
def test_clock_start_business_hours(opened: dt.datetime, start: dt.datetime) -> None:
    got = POLICY.clock_start(HI, opened)
    assert got == start
    assert got.utcoffset() == dt.timedelta(0)


def test_unknown_priority_raises_key_error() -> None:
    with pytest.raises(KeyError):
        POLICY.deadlines("urgent", utc(2026, 3, 2, 10))
    with pytest.raises(KeyError):
        SlaPolicy(CAL).deadlines(C, utc(2026, 3, 2, 10))  # no targets at all


def test_naive_opened_at_raises() -> None:
    with pytest.raises(ValueError, match="aware"):
        POLICY.deadlines(C, dt.datetime(2026, 3, 2, 10))


# --- plans -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "plan"),
    [
        ("ops@bigcorp.example", "Enterprise"),
        ("Ops@BIGCORP.Example", "Enterprise"),
        ("  cto@partner.example ", "Enterprise"),
        ("someone@partner.example", None),  # only the exact address is listed for partner.example
        ("a@eu.bigcorp.example", None),  # @domain is that domain only, not its subdomains
        ("x@small.example", "Enhanced"),
        ("x@night.example", "All hours"),
        ("nobody@elsewhere.example", None),
        ("not-an-address", None),
        ("", None),
    ],
)
def test_plan_for(address: str, plan: str | None) -> None:
    found = POLICY.plan_for(address)
    assert (found.name if found else None) == plan


def test_plan_for_first_match_in_order() -> None:
    first = Plan("First", clients=("@shared.example",))
    second = Plan("Second", clients=("boss@shared.example",))
    policy = SlaPolicy(CAL, POLICY.targets, plans=(first, second))
    assert policy.plan_for("boss@shared.example") is first


@pytest.mark.parametrize("client", ["bigcorp.example", "@", "a@", "a@b@c", "two words@x.example"])
def test_plan_rejects_bad_clients(client: str) -> None:
    with pytest.raises(PlanError):
        Plan("Bad", clients=(client,))


def test_plan_rejects_unknown_priority() -> None:
    with pytest.raises(PlanError, match="urgent"):
        Plan("Bad", out_of_hours=frozenset({"urgent"}))  # type: ignore[arg-type]


def test_targets_for_plan_override_else_default() -> None:
    assert POLICY.targets_for(C, ENHANCED).first_response.amount == 30 * M
    assert POLICY.targets_for(HI, ENHANCED) is POLICY.targets[HI]
    assert POLICY.targets_for(C) is POLICY.targets[C]
    assert POLICY.targets_for("critical", ENTERPRISE) is POLICY.targets[C]


def test_is_24x7() -> None:
    assert POLICY.is_24x7(C, ENTERPRISE)
    assert POLICY.is_24x7("critical", ENTERPRISE)
    assert not POLICY.is_24x7(HI, ENTERPRISE)
    assert not POLICY.is_24x7(C, None)
    assert not POLICY.is_24x7(C, ENHANCED)


PLAN_DEADLINES = [
    # (id, priority, plan, opened_at, clock_start, first_response_due, resolution_due)
    ("enterprise-critical-sunday-0200", C, ENTERPRISE, utc(2027, 1, 3, 2, 0), utc(2027, 1, 3, 2, 0),
     utc(2027, 1, 3, 3, 0), utc(2027, 1, 3, 6, 0)),
    ("enterprise-high-is-business-hours", HI, ENTERPRISE, utc(2027, 1, 3, 2, 0), utc(2027, 1, 4, 9, 0),
     utc(2027, 1, 4, 13, 0), utc(2027, 1, 4, 17, 30)),
    ("enterprise-critical-christmas-day", C, ENTERPRISE, utc(2026, 12, 25, 10, 0), utc(2026, 12, 25, 10, 0),
     utc(2026, 12, 25, 11, 0), utc(2026, 12, 25, 14, 0)),
    # 24x7 high: "1d" is still 8 h 30 min, counted round the clock (Sat 20:00 + 8.5 h = Sun 04:30).
    ("24x7-high-1d-is-8h30-wall", HI, ALL_HOURS, utc(2026, 12, 12, 20, 0), utc(2026, 12, 12, 20, 0),
     utc(2026, 12, 13, 0, 0), utc(2026, 12, 13, 4, 30)),
    # Across the DST nights every real hour counts once (the local clock jumps, UTC does not).
    ("24x7-spring-dst-night", C, ENTERPRISE, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 0, 30),
     utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 4, 30)),
    ("24x7-autumn-dst-night", C, ENTERPRISE, utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 0, 30),
     utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 4, 30)),
    # Enhanced overrides critical to 30m / 2h, in business hours: first response exactly at closing.
    ("enhanced-override", C, ENHANCED, utc(2026, 3, 2, 17, 0), utc(2026, 3, 2, 17, 0), utc(2026, 3, 2, 17, 30),
     utc(2026, 3, 3, 10, 30)),
]


@pytest.mark.parametrize(("priority", "plan", "opened", "start", "first", "resolution"),
                         [c[1:] for c in PLAN_DEADLINES], ids=[c[0] for c in PLAN_DEADLINES])
def test_plan_deadlines(priority: Priority, plan: Plan, opened: dt.datetime, start: dt.datetime,
                        first: dt.datetime, resolution: dt.datetime) -> None:
    assert POLICY.clock_start(priority, opened, plan) == start
    assert POLICY.deadlines(priority, opened, plan) == Deadlines(first, resolution)


# --- pauses ------------------------------------------------------------------------------------------------------

PAUSES = [
    # (id, priority, plan, opened_at, pauses, resolution_due); first-response deadlines never move (checked below).
    # high Mon 2 Mar 10:00 unpaused: resolution Tue 10:00. Paused Mon 16:00-Tue 11:00 removes 1.5 h + 2 h:
    # counted Mon 10-16 = 6 h, resumes Tue 11:00, 2.5 h left -> Tue 13:30.
    ("over-a-night", HI, None, utc(2026, 3, 2, 10), [Pause(utc(2026, 3, 2, 16), utc(2026, 3, 3, 11))],
     utc(2026, 3, 3, 13, 30)),
    # medium Thu 5 Mar 10:00 unpaused: resolution Tue 10 Mar 10:00. Paused Fri 17:00-Mon 10:00 removes only
    # Fri 0.5 h + Mon 1 h (the weekend never counted) -> Tue 11:30.
    ("over-a-weekend", MED, None, utc(2026, 3, 5, 10), [Pause(utc(2026, 3, 6, 17), utc(2026, 3, 9, 10))],
     utc(2026, 3, 10, 11, 30)),
    ("inside-a-weekend-removes-nothing", MED, None, utc(2026, 3, 5, 10),
     [Pause(utc(2026, 3, 7, 10), utc(2026, 3, 8, 20))], utc(2026, 3, 10, 10, 0)),
    # high opened Sat 7 Mar 10:00, paused Sat 11:00-Mon 10:00: clock starts Mon 09:00, 1 h removed -> Tue 10:00.
    ("paused-before-clock-starts", HI, None, utc(2026, 3, 7, 10), [Pause(utc(2026, 3, 7, 11), utc(2026, 3, 9, 10))],
     utc(2026, 3, 10, 10, 0)),
    # Overlapping pauses 11:00-12:00 and 11:30-13:00 remove 2 h, not 2.5 h: Tue 10:00 + 2 h.
    ("overlapping-pauses-merge", HI, None, utc(2026, 3, 2, 10),
     [Pause(utc(2026, 3, 2, 11, 30), utc(2026, 3, 2, 13)), Pause(utc(2026, 3, 2, 11), utc(2026, 3, 2, 12))],
     utc(2026, 3, 3, 12, 0)),
    ("two-pauses", HI, None, utc(2026, 3, 2, 10),
     [Pause(utc(2026, 3, 2, 11), utc(2026, 3, 2, 12)), Pause(utc(2026, 3, 3, 9), utc(2026, 3, 3, 9, 30))],
     utc(2026, 3, 3, 11, 30)),
    # critical Mon 10:00 due 14:00; a pause after the deadline does not move it.
    ("pause-after-deadline", C, None, utc(2026, 3, 2, 10), [Pause(utc(2026, 3, 2, 15), utc(2026, 3, 2, 16))],
     utc(2026, 3, 2, 14, 0)),
    # Pause ending exactly when the deadline would fall: critical 10:00, paused 12:00-13:00 -> 15:00.
    ("pause-inside-the-day", C, None, utc(2026, 3, 2, 10), [Pause(utc(2026, 3, 2, 12), utc(2026, 3, 2, 13))],
     utc(2026, 3, 2, 15, 0)),
    # high Mon 09:00 is due exactly at closing, 17:30; a 1 h pause 16:30-17:30 moves the last hour to Tue 09:00-10:00.
    ("pause-to-closing", HI, None, utc(2026, 3, 2, 9), [Pause(utc(2026, 3, 2, 16, 30), utc(2026, 3, 2, 17, 30))],
     utc(2026, 3, 3, 10, 0)),
    # Christmas: medium Wed 23 Dec 16:00, paused Thu 24 Dec 10:00-Tue 29 Dec 10:00 (8.5 h of business time):
    # Wed 1.5 + Thu 1 + Tue 7.5 + Wed 8.5 + Thu 31 Dec 7 = 25.5 h -> Thu 31 Dec 16:00.
    ("over-christmas", MED, None, utc(2026, 12, 23, 16), [Pause(utc(2026, 12, 24, 10), utc(2026, 12, 29, 10))],
     utc(2026, 12, 31, 16, 0)),
    # 24x7: wall time inside a pause is removed (2 h): Sun 02:00 + 4 h + 2 h.
    ("24x7-pause-wall-time", C, ENTERPRISE, utc(2027, 1, 3, 2), [Pause(utc(2027, 1, 3, 3), utc(2027, 1, 3, 5))],
     utc(2027, 1, 3, 8, 0)),
    ("open-pause-no-deadline", HI, None, utc(2026, 3, 2, 10), [Pause(utc(2026, 3, 2, 11))], None),
    ("open-pause-after-closed-one", HI, None, utc(2026, 3, 2, 10),
     [Pause(utc(2026, 3, 2, 11), utc(2026, 3, 2, 12)), Pause(utc(2026, 3, 3, 9))], None),
]


@pytest.mark.parametrize(("priority", "plan", "opened", "pauses", "resolution"), [c[1:] for c in PAUSES],
                         ids=[c[0] for c in PAUSES])
def test_pauses(priority: Priority, plan: Plan | None, opened: dt.datetime, pauses: list[Pause],
                resolution: dt.datetime | None) -> None:
    got = POLICY.deadlines(priority, opened, plan, pauses)
    assert got.resolution_due == resolution
    assert got.first_response_due == POLICY.deadlines(priority, opened, plan).first_response_due


def test_pause_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Pause(utc(2026, 3, 2, 12), utc(2026, 3, 2, 11))


# --- a priority change after a pause: recomputed from the opening, paused time kept -----------------------------
# Opened Mon 2 Mar 2026 10:00 as medium; paused Mon 12:00-Tue 3 Mar 12:00 (removes Mon 5.5 h + Tue 3 h).
# Counted before the change: Mon 10-12 = 2 h, Tue 12:00 on.

OPENED = utc(2026, 3, 2, 10)
PAUSE = [Pause(utc(2026, 3, 2, 12), utc(2026, 3, 3, 12))]


@pytest.mark.parametrize(
    ("priority", "first", "resolution"),
    [
        # medium 25.5 h: 2 + Tue 5.5 + Wed 8.5 + Thu 8.5 = 24.5, 1 h on Fri -> Fri 6 Mar 10:00.
        (MED, utc(2026, 3, 3, 10, 0), utc(2026, 3, 6, 10, 0)),
        # raised to high (8.5 h): 2 + Tue 12:00-17:30 5.5 = 7.5, 1 h on Wed -> Wed 10:00; first response Mon 14:00.
        (HI, utc(2026, 3, 2, 14, 0), utc(2026, 3, 4, 10, 0)),
        # raised to critical (4 h): 2 + 2 -> Tue 14:00, which a change made at Tue 14:00 finds due at once.
        (C, utc(2026, 3, 2, 11, 0), utc(2026, 3, 3, 14, 0)),
        # lowered to low (42.5 h): 2 + 5.5 + 8.5 x 4 (Wed, Thu, Fri, Mon) = 41.5, 1 h on Tue -> Tue 10 Mar 10:00;
        # first response (17 h, never paused): Mon 7.5 + Tue 8.5 + 1 h on Wed -> Wed 4 Mar 10:00.
        (LOW, utc(2026, 3, 4, 10, 0), utc(2026, 3, 10, 10, 0)),
    ],
)
def test_priority_change_keeps_paused_time(priority: Priority, first: dt.datetime, resolution: dt.datetime) -> None:
    assert POLICY.deadlines(priority, OPENED, None, PAUSE) == Deadlines(first, resolution)


# --- properties (hypothesis) -------------------------------------------------------------------------------------

_ENG = holidays.country_holidays("GB", subdiv="ENG", years=range(2025, 2030))
_LONDON = ZoneInfo("Europe/London")

moments = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31),
                       timezones=st.just(dt.UTC)).map(lambda d: d.replace(second=0, microsecond=0))
minutes = st.integers(min_value=0, max_value=60 * 60).map(lambda n: dt.timedelta(minutes=n))
priorities = st.sampled_from(list(Priority))
plans = st.sampled_from([None, ENTERPRISE, ENHANCED, ALL_HOURS])


def _within_business_hours(moment: dt.datetime) -> bool:
    """Independent of the code under test: the local date is Mon-Fri and no bank holiday, 09:00 <= time <= 17:30."""
    local = moment.astimezone(_LONDON)
    if local.weekday() >= 5 or local.date() in _ENG:
        return False
    return dt.time(9, 0) <= local.time() <= dt.time(17, 30)


@settings(max_examples=60, deadline=None)
@given(start=moments, a=minutes, b=minutes)
def test_add_is_monotonic_in_the_amount(start: dt.datetime, a: dt.timedelta, b: dt.timedelta) -> None:
    small, big = sorted((a, b))
    assert CAL.add(start, small) <= CAL.add(start, big)


@settings(max_examples=60, deadline=None)
@given(opened=moments, priority=priorities, plan=plans, a=minutes, b=minutes, specs=st.lists(
    st.tuples(st.integers(0, 7 * 24 * 60), st.integers(0, 2 * 24 * 60)), max_size=2))
def test_deadlines_monotonic_in_the_target(
    opened: dt.datetime, priority: Priority, plan: Plan | None, a: dt.timedelta, b: dt.timedelta,
    specs: list[tuple[int, int]],
) -> None:
    small, big = sorted((a, b))
    pauses = [Pause(opened + s * M, opened + (s + n) * M) for s, n in specs]

    def due(amount: dt.timedelta) -> tuple[dt.datetime, dt.datetime | None]:
        t = PriorityTargets(Target(f"{amount}", amount), Target(f"{amount}", amount))
        d = SlaPolicy(CAL, {p: t for p in Priority}).deadlines(priority, opened, plan, pauses)
        return d.first_response_due, d.resolution_due

    (first_small, res_small), (first_big, res_big) = due(small), due(big)
    assert res_small is not None and res_big is not None
    assert first_small <= first_big
    assert res_small <= res_big


@settings(max_examples=60, deadline=None)
@given(opened=moments, priority=priorities)
def test_business_deadlines_never_inside_closed_hours(opened: dt.datetime, priority: Priority) -> None:
    d = POLICY.deadlines(priority, opened)
    assert d.resolution_due is not None
    assert _within_business_hours(d.first_response_due)
    assert _within_business_hours(d.resolution_due)
    assert _within_business_hours(POLICY.clock_start(priority, opened))


pause_specs = st.lists(st.tuples(st.integers(0, 14 * 24 * 60), st.integers(0, 3 * 24 * 60)), max_size=3)


@settings(max_examples=60, deadline=None)
@given(opened=moments, priority=priorities, plan=plans, specs=pause_specs, extra=st.tuples(
    st.integers(0, 14 * 24 * 60), st.integers(0, 3 * 24 * 60)))
def test_adding_pauses_never_makes_resolution_earlier(
    opened: dt.datetime, priority: Priority, plan: Plan | None, specs: list[tuple[int, int]], extra: tuple[int, int]
) -> None:
    def pause(spec: tuple[int, int]) -> Pause:
        start = opened + spec[0] * M
        return Pause(start, start + spec[1] * M)

    base = [pause(s) for s in specs]
    without = POLICY.deadlines(priority, opened, plan).resolution_due
    before = POLICY.deadlines(priority, opened, plan, base).resolution_due
    after = POLICY.deadlines(priority, opened, plan, [*base, pause(extra)]).resolution_due
    assert without is not None and before is not None and after is not None
    assert without <= before <= after
    # and the counted time between the clock start and the deadline, less the pauses, is the target itself
    clock = POLICY.clock(priority, plan)
    start = POLICY.clock_start(priority, opened, plan)
    assert clock.counted(start, after, [*base, pause(extra)]) == POLICY.targets_for(priority, plan).resolution.amount


@settings(max_examples=40, deadline=None)
@given(opened=moments)
def test_24x7_counts_every_hour(opened: dt.datetime) -> None:
    d = POLICY.deadlines(C, opened, ENTERPRISE)
    assert (d.first_response_due, d.resolution_due) == (opened + 1 * H, opened + 4 * H)
