"""Business calendar and SLA clock arithmetic (pure).

Owns: the business calendar (working days, opening hours, bank holidays, time zone), target durations (`30m`, `4h`,
`3d`), per-priority targets, support plans (`Plan`: clients, priorities with out-of-hours cover, plan targets),
pauses of the resolution clock, and `SlaPolicy.deadlines` (opening, priority, plan, pauses -> both deadlines).
What the deadlines mean to people (alerts, wording, explanations) lives in `casebot.alerts`.
Must not read the clock, do I/O, touch storage or parse configuration: every moment is an argument.

Rules:
  * Only time inside business hours counts. An arrival outside them starts its clock at the next opening (exactly
    at closing: the next business morning; exactly at opening: at once).
  * A business day (`1d`) is the length of one full business day (8.5 h for 09:00-17:30). A deadline that falls
    exactly at a closing time is that closing time, not the next opening.
  * Business hours are wall-clock hours in the calendar's zone, so DST moves them in UTC. All datetimes in and
    out are aware UTC (any aware datetime is accepted; a naive one raises ValueError).
  * A plan's `out_of_hours` priorities are 24x7: their clock starts at the arrival itself and every hour counts.
    A `1d` target is still the business-day length (8.5 h), counted round the clock.
  * The first-response clock never pauses. The resolution clock does not count paused time: only the counted
    (business, or for 24x7 wall) time inside a pause is removed, so a pause over a weekend removes nothing extra.
    While a pause is open (end None) there is no resolution deadline. Deadlines are always recomputed from the
    opening with every pause applied, so a priority change keeps the paused time and a raise can make a case due
    or breached at once.
  * `is_open` treats business hours as the closed interval [opening, closing] (a reminder may go out at 17:30).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

from casebot.calendars import HolidayBase, UnknownCalendar, country_calendar
from casebot.case import PRIORITIES as PRIORITIES  # re-exported: most urgent first; Priority is a StrEnum
from casebot.case import Priority

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|bd)\s*$", re.IGNORECASE)
_ZERO = dt.timedelta(0)


class CalendarError(ValueError):
    """Raised for an unusable calendar or duration (bad zone, hours, country, or duration text)."""


class PlanError(CalendarError):
    """Raised for an unusable plan (a client that is not an address or `@domain`, an unknown priority)."""


def _aware(value: dt.datetime, what: str = "datetime") -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(dt.UTC)


def as_priority(value: str) -> Priority:
    """`Priority` for a member or its exact value; KeyError for anything else (`urgent`, `Critical`)."""
    try:
        return Priority(value)
    except ValueError:
        raise KeyError(f"unknown priority {value!r}") from None


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in one time zone; `holiday_country`/`holiday_subdivision` name a `holidays` calendar."""

    timezone: str = "Europe/London"
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 30)
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday=0
    holiday_country: str = "GB"
    holiday_subdivision: str | None = "ENG"
    extra_holidays: tuple[dt.date, ...] = ()
    extra_workdays: tuple[dt.date, ...] = ()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except Exception as exc:
            # zoneinfo raises several types for a bad key; all mean the same to the admin.
            raise CalendarError(f"unknown time zone {self.timezone!r}") from exc
        if not self.start < self.end:
            raise CalendarError(f"business hours must start before they end ({self.start} >= {self.end})")
        if not self.workdays or any(d not in range(7) for d in self.workdays):
            raise CalendarError(f"workdays must be weekday numbers 0-6, got {self.workdays!r}")
        if self.holiday_country:
            try:
                country_calendar(self.holiday_country, self.holiday_subdivision).get(dt.date(2026, 1, 1))
            except UnknownCalendar as exc:
                raise CalendarError(str(exc)) from exc

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> HolidayBase | None:
        if not self.holiday_country:
            return None
        return country_calendar(self.holiday_country, self.holiday_subdivision)

    @property
    def day_length(self) -> dt.timedelta:
        return dt.datetime.combine(dt.date.min, self.end) - dt.datetime.combine(dt.date.min, self.start)

    def is_business_day(self, day: dt.date) -> bool:
        if day in self.extra_workdays:
            return True
        if day.weekday() not in self.workdays or day in self.extra_holidays:
            return False
        return not (self._holidays is not None and day in self._holidays)

    def holiday_name(self, day: dt.date) -> str | None:
        if day in self.extra_holidays:
            return "holiday"
        name = self._holidays.get(day) if self._holidays is not None else None
        return str(name) if name else None

    def _open_close(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        # Built in local wall time then converted: a DST change happens at night, outside business hours.
        opening = dt.datetime.combine(day, self.start, tzinfo=self.zone)
        closing = dt.datetime.combine(day, self.end, tzinfo=self.zone)
        return opening.astimezone(dt.UTC), closing.astimezone(dt.UTC)

    def hours_on(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """(opening, closing) in UTC of a local date; None on a closed day."""
        return self._open_close(day) if self.is_business_day(day) else None

    def local_date(self, value: dt.datetime) -> dt.date:
        return _aware(value).astimezone(self.zone).date()

    def is_open(self, value: dt.datetime) -> bool:
        """Inside business hours, both ends included (09:00 and 17:30 are open)."""
        return (hours := self.hours_on(self.local_date(value))) is not None and hours[0] <= value <= hours[1]

    def next_business_moment(self, value: dt.datetime) -> dt.datetime:
        """`value` when business time is left at it, else the next opening (17:30 itself -> the next opening)."""
        return self.add(value, _ZERO)

    def add(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        """The moment `amount` of business time after `start` (aware). Time outside business hours does not count."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if amount < _ZERO:
            raise ValueError("amount must not be negative")
        remaining = amount
        cursor = start.astimezone(dt.UTC)
        day = cursor.astimezone(self.zone).date()
        for _ in range(3660):  # ten years of days: a calendar with no business days at all ends here
            if self.is_business_day(day):
                opening, closing = self._open_close(day)
                begin = max(cursor, opening)
                if begin < closing:
                    if remaining <= closing - begin:
                        return begin + remaining
                    remaining -= closing - begin
            day += dt.timedelta(days=1)
        raise CalendarError("no business time found within ten years: check workdays and holidays")

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Business time elapsed from `start` to `end` (zero when end <= start)."""
        total = _ZERO
        if end <= start:
            return total
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            if self.is_business_day(day):
                opening, closing = self._open_close(day)
                lo, hi = max(start, opening), min(end, closing)
                if hi > lo:
                    total += hi - lo
            day += dt.timedelta(days=1)
        return total


@dataclass(frozen=True)
class Target:
    """A duration in business time; `text` is what the admin wrote (`4h`, `1d`), kept for messages."""

    text: str
    amount: dt.timedelta


def parse_duration(text: str, calendar: BusinessCalendar) -> Target:
    """`30m`, `4h`, `1d` (one business day = the length of the business day)."""
    m = _DURATION.match(text)
    if not m:
        raise CalendarError(f"duration {text!r} is not like '30m', '4h' or '3d'")
    value, unit = float(m.group(1)), m.group(2).lower()
    units = {"m": dt.timedelta(minutes=1), "min": dt.timedelta(minutes=1), "h": dt.timedelta(hours=1)}
    return Target(text=text.strip(), amount=units.get(unit, calendar.day_length) * value)


def describe(target: Target) -> str:
    """Human wording for templates: `1 hour`, `4 hours`, `1 business day`, `3 business days`, `30 minutes`."""
    m = _DURATION.match(target.text)
    if not m:
        return target.text
    value, unit = m.group(1), m.group(2).lower()
    number = value.rstrip("0").rstrip(".") if "." in value else value
    word = {"m": "minute", "min": "minute", "h": "hour"}.get(unit, "business day")
    return f"{number} {word}{'' if number == '1' else 's'}"


@dataclass(frozen=True)
class PriorityTargets:
    first_response: Target
    resolution: Target


@dataclass(frozen=True)
class Pause:
    """The resolution clock stopped from `start` until `end` (None: still paused)."""

    start: dt.datetime
    end: dt.datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _aware(self.start, "pause start"))
        if self.end is not None:
            object.__setattr__(self, "end", _aware(self.end, "pause end"))
            if self.end < self.start:
                raise ValueError(f"pause ends ({self.end}) before it starts ({self.start})")


def merge_pauses(pauses: Iterable[Pause]) -> list[Pause]:
    """Sorted, overlapping or touching pauses joined; an open pause swallows every later one."""
    merged: list[Pause] = []
    for p in sorted(pauses, key=lambda p: p.start):
        if not merged or (merged[-1].end is not None and p.start > merged[-1].end):
            merged.append(p)
        elif (end := merged[-1].end) is not None:
            merged[-1] = Pause(merged[-1].start, None if p.end is None else max(end, p.end))
    return merged


@dataclass(frozen=True)
class Clock:
    """How one case's clock counts: business time of `calendar`, or every hour when `round_the_clock` (24x7)."""

    calendar: BusinessCalendar
    round_the_clock: bool = False

    def start(self, opened_at: dt.datetime) -> dt.datetime:
        """When the clock starts for an arrival: the arrival itself (24x7) or the next business moment."""
        opened = _aware(opened_at, "opened_at")
        return opened if self.round_the_clock else self.calendar.next_business_moment(opened)

    def counted(self, start: dt.datetime, end: dt.datetime, pauses: Iterable[Pause] = ()) -> dt.timedelta:
        """Counted time from `start` to `end` (zero when end <= start), less the counted time inside `pauses`."""
        start, end = _aware(start), _aware(end)
        total = self._between(start, end)
        for p in merge_pauses(pauses):
            lo, hi = max(start, p.start), end if p.end is None else min(end, p.end)
            total -= self._between(lo, hi)
        return total

    def add(self, start: dt.datetime, amount: dt.timedelta, pauses: Iterable[Pause] = ()) -> dt.datetime | None:
        """The moment `amount` of counted time after `start`, not counting `pauses`; None when an open pause
        stops the clock before the amount is reached."""
        if amount < _ZERO:
            raise ValueError("amount must not be negative")
        cursor, remaining = _aware(start, "start"), amount
        for p in merge_pauses(pauses):
            if p.end is not None and p.end <= cursor:
                continue
            if p.start > cursor:
                candidate = self.add_plain(cursor, remaining)
                if candidate <= p.start:
                    return candidate
                remaining -= self._between(cursor, p.start)
            if p.end is None:
                return None
            cursor = max(cursor, p.end)
        return self.add_plain(cursor, remaining)

    def add_plain(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        if amount < _ZERO:
            raise ValueError("amount must not be negative")
        start = _aware(start, "start")
        return start + amount if self.round_the_clock else self.calendar.add(start, amount)

    def _between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        if end <= start:
            return _ZERO
        return end - start if self.round_the_clock else self.calendar.business_time_between(start, end)


@dataclass(frozen=True)
class Deadlines:
    first_response_due: dt.datetime
    resolution_due: dt.datetime | None  # None while the resolution clock is paused


@dataclass(frozen=True)
class Plan:
    """A support plan: its clients (exact addresses or `@domain`, case-insensitive), the priorities it covers
    out of hours (24x7), who is on call for them, and targets that replace the default ones per priority."""

    name: str
    clients: tuple[str, ...] = ()
    out_of_hours: frozenset[Priority] = frozenset()
    oncall: str | None = None
    targets: dict[Priority, PriorityTargets] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        clients = tuple(c.strip().lower() for c in self.clients)
        for c in clients:
            local, at, domain = c.rpartition("@")
            if not at or not domain or "@" in local or " " in c:
                raise PlanError(f"plan {self.name!r}: client {c!r} is not an address or '@domain'")
        try:
            cover = frozenset(as_priority(p) for p in self.out_of_hours)
            targets = {as_priority(p): t for p, t in self.targets.items()}
        except KeyError as exc:
            raise PlanError(f"plan {self.name!r}: {exc.args[0]}") from None
        for name, value in (("clients", clients), ("out_of_hours", cover), ("targets", targets)):
            object.__setattr__(self, name, value)

    def matches(self, address: str) -> bool:
        addr = address.strip().lower()
        return "@" in addr and any(c in (addr, "@" + addr.rpartition("@")[2]) for c in self.clients)


@dataclass(frozen=True)
class SlaPolicy:
    """The calendar, the default targets (keyed by `Priority`; plain strings look them up too) and the plans."""

    calendar: BusinessCalendar
    targets: dict[str, PriorityTargets] = field(default_factory=dict)
    plans: tuple[Plan, ...] = ()

    def plan_for(self, address: str) -> Plan | None:
        """The first plan, in order, that lists the address or its `@domain`."""
        return next((p for p in self.plans if p.matches(address)), None)

    def targets_for(self, priority: str, plan: Plan | None = None) -> PriorityTargets:
        """The plan's targets for the priority, else the default ones; KeyError when there are none."""
        p = as_priority(priority)
        found = plan.targets.get(p) if plan is not None else None
        if found is None and p not in self.targets:
            raise KeyError(f"no SLA targets for priority {p.value!r}")
        return found or self.targets[p]

    def is_24x7(self, priority: str, plan: Plan | None) -> bool:
        return plan is not None and as_priority(priority) in plan.out_of_hours

    def clock(self, priority: str, plan: Plan | None = None) -> Clock:
        return Clock(self.calendar, round_the_clock=self.is_24x7(priority, plan))

    def clock_start(self, priority: str, opened_at: dt.datetime, plan: Plan | None = None) -> dt.datetime:
        """`opened_at` itself for a 24x7 priority, else the next business moment at or after it."""
        return self.clock(priority, plan).start(opened_at)

    def deadlines(
        self, priority: str, opened_at: dt.datetime, plan: Plan | None = None, pauses: Sequence[Pause] = ()
    ) -> Deadlines:
        """Both deadlines, recomputed from the opening with every pause applied to the resolution clock.
        KeyError for a priority without targets."""
        t, clock = self.targets_for(priority, plan), self.clock(priority, plan)
        start = clock.start(opened_at)
        paused = any(p.end is None for p in pauses)
        resolution = None if paused else clock.add(start, t.resolution.amount, pauses)
        return Deadlines(clock.add_plain(start, t.first_response.amount), resolution)


DEFAULT_TARGETS: dict[str, tuple[str, str]] = {
    # From the support policy (seeds): first response / resolution, in UK business hours 09:00-17:30.
    Priority.CRITICAL: ("1h", "4h"),
    Priority.HIGH: ("4h", "1d"),
    Priority.MEDIUM: ("1d", "3d"),
    Priority.LOW: ("2d", "5d"),
}


def build_policy(
    calendar: BusinessCalendar, targets: Iterable[tuple[str, str, str]], plans: Iterable[Plan] = ()
) -> SlaPolicy:
    """A policy from (priority, first response, resolution) texts; an unknown priority raises KeyError."""
    parsed: dict[str, PriorityTargets] = {
        as_priority(name): PriorityTargets(parse_duration(first, calendar), parse_duration(res, calendar))
        for name, first, res in targets
    }
    return SlaPolicy(calendar=calendar, targets=parsed, plans=tuple(plans))
