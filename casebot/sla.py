"""Business calendar and SLA arithmetic (pure).

Owns: the business calendar (working days, opening hours, bank holidays, time zone), `add_business_time`,
parsing of target durations such as `4h` or `3d` (business days), and the per-priority targets that turn a
case's opening time into its first-response and resolution deadlines. All datetimes in and out are aware UTC;
the local zone is used only inside the arithmetic. Must not read the clock or touch storage.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays as holidays_lib

PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|bd)\s*$", re.IGNORECASE)


class CalendarError(ValueError):
    """Raised for an unusable calendar or duration (bad zone, hours, country, or duration text)."""


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
                holidays_lib.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision, years=2026)
            except NotImplementedError as exc:
                raise CalendarError(
                    f"unknown holiday calendar {self.holiday_country!r}/{self.holiday_subdivision!r}"
                ) from exc

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays_lib.HolidayBase | None:
        if not self.holiday_country:
            return None
        return holidays_lib.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision)

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
        if self._holidays is not None:
            name = self._holidays.get(day)
            return str(name) if name else None
        return None

    def _open_close(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        # Built in local wall time then converted: a DST change happens at night, outside business hours.
        opening = dt.datetime.combine(day, self.start, tzinfo=self.zone)
        closing = dt.datetime.combine(day, self.end, tzinfo=self.zone)
        return opening.astimezone(dt.UTC), closing.astimezone(dt.UTC)

    def add(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        """The moment `amount` of business time after `start` (aware). Time outside business hours does not count."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if amount < dt.timedelta(0):
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
        total = dt.timedelta(0)
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
    if unit in ("m", "min"):
        amount = dt.timedelta(minutes=value)
    elif unit == "h":
        amount = dt.timedelta(hours=value)
    else:
        amount = calendar.day_length * value
    return Target(text=text.strip(), amount=amount)


def describe(target: Target) -> str:
    """Human wording for templates: `1 hour`, `4 hours`, `1 business day`, `3 business days`, `30 minutes`."""
    m = _DURATION.match(target.text)
    if not m:
        return target.text
    value, unit = m.group(1), m.group(2).lower()
    number = value.rstrip("0").rstrip(".") if "." in value else value
    plural = number != "1"
    if unit in ("m", "min"):
        return f"{number} minute{'s' if plural else ''}"
    if unit == "h":
        return f"{number} hour{'s' if plural else ''}"
    return f"{number} business day{'s' if plural else ''}"


@dataclass(frozen=True)
class PriorityTargets:
    first_response: Target
    resolution: Target


@dataclass(frozen=True)
class Deadlines:
    first_response_due: dt.datetime
    resolution_due: dt.datetime


@dataclass(frozen=True)
class SlaPolicy:
    calendar: BusinessCalendar
    targets: dict[str, PriorityTargets] = field(default_factory=dict)

    def deadlines(self, priority: str, opened_at: dt.datetime) -> Deadlines | None:
        t = self.targets.get(priority)
        if t is None:
            return None
        return Deadlines(
            first_response_due=self.calendar.add(opened_at, t.first_response.amount),
            resolution_due=self.calendar.add(opened_at, t.resolution.amount),
        )


DEFAULT_TARGETS: dict[str, tuple[str, str]] = {
    # From the support policy (seeds): first response / resolution, in UK business hours 09:00-17:30.
    "critical": ("1h", "4h"),
    "high": ("4h", "1d"),
    "medium": ("1d", "3d"),
    "low": ("2d", "5d"),
}


def build_policy(calendar: BusinessCalendar, targets: Iterable[tuple[str, str, str]]) -> SlaPolicy:
    return SlaPolicy(
        calendar=calendar,
        targets={
            name: PriorityTargets(parse_duration(first, calendar), parse_duration(resolve, calendar))
            for name, first, resolve in targets
        },
    )
