"""What the SLA clocks mean to people (pure): which alerts are due, when the next one is, and the wording.

Owns: `ClockView` (what the reminder scan knows of one case's clocks), `Alert`, `alerts_due` (the reminder scan's
pure core), `next_alert_at` (kept by the store in an indexed column so the scan only reads due cases), `time_left`,
and the wording: `format_local`, `describe_overdue`, `promise` (`casebot sla due --json`) and `explain` (the
timeline an admin checks by hand). The arithmetic itself is `casebot.sla`'s.
Must not read the clock, do I/O, touch storage, queue mail or parse configuration: `now` is always an argument.

Rules:
  * Latest state only, per target (first response, resolution): once the deadline has passed (`now >= due`)
    the breach alert, plus an escalation when the priority is in `escalate`, and never the earlier reminders
    as well; before it, the reminder for the highest share already reached, if any. So a scan after downtime
    sends the breach, not a stale reminder, and each share is reported once by a caller that keys what it has
    sent by (case, target, kind, threshold, due).
  * The share is measured in the clock's counted time (business time, wall time for 24x7; for resolution
    without the paused time in `ClockView.pauses`) from the clock start to the deadline. `Alert.at` is the moment
    the threshold was reached (the deadline itself for a breach), whatever moment the scan runs.
  * Quiet priorities (default medium and low): nothing is due while outside business hours, which here are
    [opening, closing] with both ends open for mail; what is held becomes due at the next opening. A priority
    with 24x7 cover on the case's plan is never quiet.
  * `next_alert_at(after)` is the earliest moment strictly after `after` at which `alerts_due` returns an alert
    it did not return at `after`; None when nothing is left.
  * Wording: `describe_overdue` takes the signed counted time left (`time_left`: negative once overdue) and says
    "2 hours 15 minutes left", "due now", "overdue by 1 business day 30 minutes" (whole minutes, rounded down;
    "less than a minute"; business days only when a day length is given, 8.5 h by default).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Literal

from casebot.case import Priority
from casebot.sla import BusinessCalendar, Clock, Pause, Plan, SlaPolicy, as_priority, describe, merge_pauses

AlertKind = Literal["reminder", "breach", "escalation"]
ClockName = Literal["first_response", "resolution"]

QUIET: frozenset[Priority] = frozenset({Priority.MEDIUM, Priority.LOW})
ESCALATE: frozenset[Priority] = frozenset({Priority.CRITICAL, Priority.HIGH})
DEFAULT_SHARES: tuple[float, ...] = (0.75,)

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_ORDER = {"first_response": 0, "resolution": 1, "reminder": 0, "breach": 1, "escalation": 2}
_ZERO = dt.timedelta(0)


@dataclass(frozen=True)
class ClockView:
    """One case's clocks as the scan sees them. A due is None once it no longer runs (first response given;
    resolution paused, resolved or closed). `pauses` are the closed pauses of the resolution clock."""

    priority: Priority
    plan: Plan | None
    opened_at: dt.datetime
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    pauses: tuple[Pause, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "priority", as_priority(self.priority))


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    target: ClockName
    threshold: float  # the share of the target reached; 1.0 for breach and escalation
    due: dt.datetime  # the deadline
    at: dt.datetime  # the moment the threshold was reached (the deadline for breach and escalation)


@dataclass(frozen=True)
class _Track:
    target: ClockName
    due: dt.datetime
    crossings: tuple[tuple[float, dt.datetime], ...]  # (share, moment), ascending


def _utc(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(dt.UTC)


def _shares(shares: Iterable[float]) -> tuple[float, ...]:
    out = tuple(sorted(set(shares)))
    if any(not 0 < s < 1 for s in out):
        raise ValueError(f"reminder shares must be between 0 and 1 (exclusive), got {out!r}")
    return out


def _tracks(policy: SlaPolicy, view: ClockView, shares: tuple[float, ...]) -> list[_Track]:
    clock = policy.clock(view.priority, view.plan)
    start = clock.start(view.opened_at)
    tracks: list[_Track] = []
    clocks: tuple[tuple[ClockName, dt.datetime | None, tuple[Pause, ...]], ...] = (
        ("first_response", view.first_response_due, ()),
        ("resolution", view.resolution_due, view.pauses),
    )
    for target, due, pauses in clocks:
        if due is None:
            continue
        due = due.astimezone(dt.UTC)
        total = clock.counted(start, due, pauses)
        crossings = []
        for s in shares:
            at = clock.add(start, total * s, pauses)
            if at is not None:
                crossings.append((s, min(at, due)))
        tracks.append(_Track(target, due, tuple(crossings)))
    return tracks


def _state(track: _Track, now: dt.datetime, escalate: bool) -> list[Alert]:
    if now >= track.due:
        breach = [Alert("breach", track.target, 1.0, track.due, track.due)]
        return [*breach, Alert("escalation", track.target, 1.0, track.due, track.due)] if escalate else breach
    reached = [(s, at) for s, at in track.crossings if at <= now]
    if not reached:
        return []
    share, at = reached[-1]
    return [Alert("reminder", track.target, share, track.due, at)]


def _is_quiet(policy: SlaPolicy, view: ClockView, quiet: Collection[Priority]) -> bool:
    return view.priority in quiet and not policy.is_24x7(view.priority, view.plan)


def alerts_due(
    policy: SlaPolicy, view: ClockView, now: dt.datetime, shares: Sequence[float] = DEFAULT_SHARES,
    quiet: Collection[Priority] = QUIET, escalate: Collection[Priority] = ESCALATE,
) -> list[Alert]:
    """The latest alert state of each running clock at `now` (see the module rules), earliest first."""
    now = _utc(now, "now")
    if _is_quiet(policy, view, quiet) and not policy.calendar.is_open(now):
        return []
    esc = view.priority in escalate
    alerts = [a for t in _tracks(policy, view, _shares(shares)) for a in _state(t, now, esc)]
    return sorted(alerts, key=lambda a: (a.at, _ORDER[a.target], _ORDER[a.kind]))


def next_alert_at(
    policy: SlaPolicy, view: ClockView, after: dt.datetime, shares: Sequence[float] = DEFAULT_SHARES,
    quiet: Collection[Priority] = QUIET,
) -> dt.datetime | None:
    """The earliest moment strictly after `after` at which `alerts_due` returns something it did not at `after`
    (a threshold crossing; for a quiet priority, the next opening if it falls out of hours); None when done."""
    after = _utc(after, "after")
    cal = policy.calendar
    quiet_case = _is_quiet(policy, view, quiet)
    current = set(alerts_due(policy, view, after, shares, quiet, escalate=()))
    candidates: set[dt.datetime] = set()
    for track in _tracks(policy, view, _shares(shares)):
        for moment in [at for _, at in track.crossings] + [track.due]:
            if moment > after:
                held = quiet_case and not cal.is_open(moment)
                candidates.add(cal.next_business_moment(moment) if held else moment)
    if quiet_case and not cal.is_open(after):
        candidates.add(cal.next_business_moment(after))
    for moment in sorted(c for c in candidates if c > after):
        if any(a not in current for a in alerts_due(policy, view, moment, shares, quiet, escalate=())):
            return moment
    return None


def time_left(
    policy: SlaPolicy, priority: str, due: dt.datetime, now: dt.datetime, plan: Plan | None = None,
    pauses: Sequence[Pause] = (),
) -> dt.timedelta:
    """Counted time from `now` to `due` in the case's clock; negative (the counted time since `due`) once past."""
    clock = policy.clock(priority, plan)
    return clock.counted(now, due, pauses) if now <= due else -clock.counted(due, now, pauses)


# --- wording -----------------------------------------------------------------------------------------------------


def _zone_label(calendar: BusinessCalendar) -> str:
    return "UK" if calendar.timezone == "Europe/London" else calendar.timezone


def format_local(value: dt.datetime, calendar: BusinessCalendar) -> str:
    """`11:30 on Tuesday 29 December 2026, UK time` (any zone but Europe/London is named by its key)."""
    local = value.astimezone(calendar.zone)
    return (f"{local:%H:%M} on {_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
            f"{_zone_label(calendar)} time")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _words(delta: dt.timedelta, day_length: dt.timedelta | None) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes == 0:
        return "less than a minute"
    parts = []
    if day_length is not None and day_length >= dt.timedelta(minutes=1):
        days, minutes = divmod(minutes, int(day_length.total_seconds() // 60))
        if days:
            parts.append(_plural(days, "business day"))
    hours, minutes = divmod(minutes, 60)
    parts += [_plural(n, word) for n, word in ((hours, "hour"), (minutes, "minute")) if n]
    return " ".join(parts)


def describe_overdue(delta: dt.timedelta, day_length: dt.timedelta | None = dt.timedelta(hours=8, minutes=30)) -> str:
    """`2 hours 15 minutes left`, `due now`, `overdue by 1 business day 30 minutes` for a signed time left."""
    if delta == _ZERO:
        return "due now"
    words = _words(abs(delta), day_length)
    return f"{words} left" if delta > _ZERO else f"overdue by {words}"


def promise(policy: SlaPolicy, priority: str, at: dt.datetime, plan: Plan | None = None) -> dict[str, str]:
    """What a case opened at `at` is promised, as ISO 8601 strings with the calendar zone's UTC offset."""
    zone = policy.calendar.zone
    d = policy.deadlines(priority, at, plan)
    assert d.resolution_due is not None  # no pauses at opening

    def iso(value: dt.datetime) -> str:
        return value.astimezone(zone).isoformat(timespec="seconds")

    return {"opened_at": iso(at), "clock_starts": iso(policy.clock_start(priority, at, plan)),
            "first_response_due": iso(d.first_response_due), "resolution_due": iso(d.resolution_due)}


# --- explain -----------------------------------------------------------------------------------------------------


def _hm(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def _day(day: dt.date) -> str:
    return f"{_DAYS[day.weekday()][:3]} {day.day} {_MONTHS[day.month - 1][:3]} {day.year}"


def _window(clock: Clock, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
    """The counted part of a local day: business hours, or the whole day (23 or 25 h at DST) for 24x7."""
    cal = clock.calendar
    if not clock.round_the_clock:
        return cal.hours_on(day)
    lo = dt.datetime.combine(day, dt.time(0), tzinfo=cal.zone).astimezone(dt.UTC)
    hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=cal.zone).astimezone(dt.UTC)
    return lo, hi


def _closed_reason(cal: BusinessCalendar, day: dt.date) -> str:
    name = cal.holiday_name(day)
    if day.weekday() not in cal.workdays:
        return f"weekend ({name})" if name else "weekend"
    return f"bank holiday ({name})" if name else "not a business day"


def _per_day(clock: Clock, start: dt.datetime, end: dt.datetime, pauses: Sequence[Pause]) -> list[str]:
    parts = []
    day, last = clock.calendar.local_date(start), clock.calendar.local_date(end)
    while day <= last:
        w = _window(clock, day)
        if w is not None:
            counted = clock.counted(max(w[0], start), min(w[1], end), pauses)
            if counted > _ZERO:
                parts.append(f"{_hm(counted)} ({_day(day)})")
        day += dt.timedelta(days=1)
    return parts


def explain(
    policy: SlaPolicy, priority: str, opened_at: dt.datetime, plan: Plan | None = None,
    pauses: Sequence[Pause] = (), now: dt.datetime | None = None,
) -> list[str]:
    """The timeline of a case's clocks in plain words, one line per fact, for an admin checking by hand."""
    cal, p = policy.calendar, as_priority(priority)
    t, clock, merged = policy.targets_for(p, plan), policy.clock(p, plan), merge_pauses(pauses)
    start, d = clock.start(opened_at), policy.deadlines(p, opened_at, plan, pauses)

    def fmt(value: dt.datetime) -> str:
        return format_local(value, cal)

    hours = f"{cal.start:%H:%M}-{cal.end:%H:%M}"
    lines = [
        f"Priority {p.value}, {f'plan {plan.name}' if plan else 'no plan'}: first response within "
        f"{describe(t.first_response)} ({_hm(t.first_response.amount)}), resolution within "
        f"{describe(t.resolution)} ({_hm(t.resolution.amount)}); business hours {hours} {_zone_label(cal)} "
        f"time, 1 business day = {_hm(cal.day_length)}."
    ]
    if clock.round_the_clock:
        assert plan is not None
        lines.append(f"Opened {fmt(opened_at)}. Plan {plan.name} has 24x7 cover for {p.value}: the clock starts at "
                     f"once and every hour counts, nights, weekends and bank holidays too (a business day is still "
                     f"{_hm(cal.day_length)}, counted round the clock).")
    elif start == opened_at:
        lines.append(f"Opened {fmt(opened_at)}, within business hours: the clock starts at once.")
    else:
        today = cal.hours_on(cal.local_date(opened_at))
        why = ("before opening" if opened_at < today[0] else "after closing") if today else \
            _closed_reason(cal, cal.local_date(opened_at))
        lines.append(f"Opened {fmt(opened_at)}, outside business hours ({why}): the clock starts at the next "
                     f"opening, {fmt(start)}.")
    if not clock.round_the_clock:
        lines.append(f"Only {hours} on business days counts: nights, weekends and bank holidays are skipped.")
    ends = [d.first_response_due, d.resolution_due or now or start] + [q.end or q.start for q in merged]
    horizon = max(e for e in ends if e is not None)
    day, last, skipped = cal.local_date(min(opened_at, start)), cal.local_date(horizon), []
    while day <= last:
        w = _window(clock, day)
        if w is None:
            skipped.append(day)
        else:
            if skipped:
                lines.append(_skipped_line(cal, skipped))
                skipped = []
            lo, hi = max(w[0], start), min(w[1], horizon)
            if hi > lo:
                line = f"{_day(day)}: counts {_local(lo, cal)}-{_local(hi, cal, True)}, {_hm(hi - lo)}"
                for q in merged:
                    a, b = max(lo, q.start), min(hi, q.end or hi)
                    if b > a:
                        line += f"; resolution clock paused {_local(a, cal)}-{_local(b, cal, True)}, {_hm(b - a)}"
                lines.append(line + ".")
        day += dt.timedelta(days=1)
    if skipped:
        lines.append(_skipped_line(cal, skipped))
    unpaused = clock.add_plain(start, t.resolution.amount)
    removed_total = _ZERO
    for q in merged:
        if q.end is None:
            so_far = clock.counted(max(q.start, start), now) if now is not None else None
            lines.append(f"Paused since {fmt(q.start)} and still paused: the resolution clock is stopped"
                         + (f" ({_hm(so_far)} of counted time not counted so far)." if so_far is not None else "."))
            continue
        if d.resolution_due is not None and d.resolution_due <= q.start:
            lines.append(f"Paused {fmt(q.start)} to {fmt(q.end)}: after the resolution deadline; it moves nothing.")
            continue
        removed = clock.counted(max(q.start, start), q.end)
        removed_total += removed
        outside = not clock.round_the_clock and removed != q.end - max(q.start, start)
        rest = "; the rest was outside business hours" if outside else ""
        lines.append(f"Paused {fmt(q.start)} to {fmt(q.end)}: removes {_hm(removed)} of counted time from the "
                     f"resolution clock{rest}.")
    first_days = " + ".join(_per_day(clock, start, d.first_response_due, ())) or "0 min"
    lines.append(f"First response due {fmt(d.first_response_due)}: {_hm(t.first_response.amount)} counted from "
                 f"{fmt(start)}, never paused = {first_days}.")
    if d.resolution_due is None:
        open_pause = merged[-1]
        before = clock.add(start, t.resolution.amount, merged[:-1])
        if before is not None and before <= open_pause.start:
            lines.append(f"Resolution due: not set while the clock is paused (it had already fallen due at "
                         f"{fmt(before)}, before the pause).")
        else:
            used = clock.counted(start, open_pause.start, merged)
            lines.append(f"Resolution due: not set while the clock is paused; {_hm(used)} of "
                         f"{_hm(t.resolution.amount)} counted before the pause, {_hm(t.resolution.amount - used)} "
                         f"left when it resumes.")
    else:
        paused = f" (without pauses it would be {fmt(unpaused)}; {_hm(removed_total)} paused)" if merged else ""
        lines.append(f"Resolution due {fmt(d.resolution_due)}: {_hm(t.resolution.amount)} counted from {fmt(start)}"
                     f"{', not counting paused time' if merged else ''} = "
                     f"{' + '.join(_per_day(clock, start, d.resolution_due, merged)) or '0 min'}{paused}.")
    if now is not None:
        day_length = None if clock.round_the_clock else cal.day_length
        first_left = time_left(policy, p, d.first_response_due, now, plan)
        state = [f"first response {describe_overdue(first_left, day_length)}"]
        if d.resolution_due is not None:
            left = time_left(policy, p, d.resolution_due, now, plan, pauses)
            state.append(f"resolution {describe_overdue(left, day_length)}")
        lines.append(f"At {fmt(now)}: {'; '.join(state)}.")
    return lines


def _local(value: dt.datetime, cal: BusinessCalendar, end: bool = False) -> str:
    local = value.astimezone(cal.zone)
    return "24:00" if end and local.time() == dt.time(0) else f"{local:%H:%M}"


def _skipped_line(cal: BusinessCalendar, days: list[dt.date]) -> str:
    groups = [(why, list(g)) for why, g in groupby(days, key=lambda day: _closed_reason(cal, day))]
    parts = [f"{_day(g[0])}{f' - {_day(g[-1])}' if len(g) > 1 else ''}: {why}" for why, g in groups]
    return f"{'; '.join(parts)}: not counted."
