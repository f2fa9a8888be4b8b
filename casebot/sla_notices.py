"""What the SLA notices say (pure): the variables of the reminder, breach, escalation, page and digest templates.

Owns `CaseFacts` and `DigestFacts` (what a notice about a case may say; the caller builds them from the store) and
the wording those notices share: the case, the client (name and address), the priority, the plan and its 24x7
cover, the target in words ("first response", "resolution"), each deadline in the calendar's local time
(`alerts.format_local`), the counted time left or overdue (`alerts.describe_overdue`) and the subject line, which
starts with the case's `[reference]` tag (`refs.tag_subject`). `casebot.notices` owns the kinds, the idempotency
keys and the composing, and re-exports the facts.
Must not render or compose mail (notices does), decide which alerts are due (alerts does), queue anything or read
the clock: `now` is always an argument.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from casebot import refs
from casebot.alerts import Alert, describe_overdue, format_local, time_left
from casebot.case import Priority
from casebot.sla import Plan, SlaPolicy, describe

TARGET_WORDS = {"first_response": "first response", "resolution": "resolution"}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


@dataclass(frozen=True)
class CaseFacts:
    """What a notice about a case may say; built by the caller from the store."""

    reference: str
    subject: str
    requester: str
    requester_name: str
    priority: Priority
    plan: str | None  # the plan's name, or None
    status: str
    opened_at: dt.datetime
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None


@dataclass(frozen=True)
class DigestFacts:
    """What the daily digest reports, as of the moment it is built."""

    open_by_priority: dict[str, int]  # priority value -> open cases (new/open/waiting)
    due_today: tuple[CaseFacts, ...]  # a deadline falls today (local date)
    breached: tuple[tuple[CaseFacts, tuple[str, ...]], ...]  # with the targets missed ("first_response", ...)
    waiting_oldest: tuple[CaseFacts, ...]  # waiting on the client, oldest first


def day_words(day: dt.date) -> str:
    """`Tuesday 1 December 2026`."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


class SlaWording:
    """The template variables of the SLA notices, worded with one policy's calendar and plans."""

    def __init__(self, sla: SlaPolicy) -> None:
        self.sla = sla

    def plan(self, name: str | None) -> Plan | None:
        """The configured plan of that name (None when there is none: a plan renamed since the case opened)."""
        return next((p for p in self.sla.plans if p.name == name), None) if name else None

    def local(self, value: dt.datetime | None) -> str:
        """`11:30 on Tuesday 29 December 2026, UK time`, or "" for no moment."""
        return format_local(value, self.sla.calendar) if value is not None else ""

    def short(self, value: dt.datetime) -> str:
        """`11:30 Tue 29 Dec`, for subject lines (the body gives the full local time)."""
        local = value.astimezone(self.sla.calendar.zone)
        return f"{local:%H:%M} {_DAYS[local.weekday()][:3]} {local.day} {_MONTHS[local.month - 1][:3]}"

    def left(self, case: CaseFacts, left: dt.timedelta) -> str:
        """`2 hours left`, `due now`, `overdue by 1 business day 30 minutes` (no business days for 24x7 cover)."""
        round_the_clock = self.sla.is_24x7(case.priority, self.plan(case.plan))
        return describe_overdue(left, None if round_the_clock else self.sla.calendar.day_length)

    def duration(self, case: CaseFacts, target: str) -> str:
        """`4 hours`, `1 business day`: the case's target, or "" when its priority has none."""
        try:
            targets = self.sla.targets_for(case.priority, self.plan(case.plan))
        except KeyError:
            return ""
        return describe(targets.first_response if target == "first_response" else targets.resolution)

    def subject(self, case: CaseFacts, label: str) -> str:
        """`[CASE-000123] <label> - <the case's subject>`: one tag first, whatever the case's subject carries."""
        bare = refs.tag_subject(case.reference, case.subject).removeprefix(f"[{case.reference}]").strip()
        return refs.tag_subject(case.reference, f"{label} - {bare}" if bare else label)

    def case(self, case: CaseFacts) -> dict[str, Any]:
        """Variables every notice about a case gets."""
        plan = self.plan(case.plan)
        name, addr = case.requester_name.strip(), case.requester.strip()
        return {
            "reference": case.reference,
            "case_subject": case.subject,
            "quoted_subject": f'"{case.subject}"' if case.subject else "(no subject)",
            "requester": addr,
            "requester_name": name,
            "client": f"{name} <{addr}>" if name and addr else name or addr or "(unknown)",
            "priority": case.priority.value,
            "plan": case.plan or "",
            "round_the_clock": self.sla.is_24x7(case.priority, plan),
            "status": case.status,
            "opened_at": case.opened_at,
            "opened": self.local(case.opened_at),
            "first_response_due": case.first_response_due,
            "resolution_due": case.resolution_due,
            "first_response_by": self.local(case.first_response_due),
            "resolution_by": self.local(case.resolution_due),
        }

    def alert(self, alert: Alert, case: CaseFacts, left: dt.timedelta) -> dict[str, Any]:
        """Reminder, breach and escalation variables; `left` is the signed counted time left at `now`."""
        words = TARGET_WORDS[alert.target]
        share = f"{alert.threshold * 100:g}%"
        short = self.short(alert.due)
        labels = {
            "reminder": f"Reminder: {words} due {short}",
            "breach": f"Breached: {words} was due {short}",
            "escalation": f"Escalation: {case.priority.value} case missed its {words} target ({short})",
        }
        return {
            **self.case(case),
            "alert": alert.kind,
            "target": alert.target,
            "target_words": words,
            "target_duration": self.duration(case, alert.target),
            "due": alert.due,
            "due_local": self.local(alert.due),
            "left": self.left(case, left),
            "overdue": left < dt.timedelta(0),
            "threshold": alert.threshold,
            "share": share,
            "reached_at": self.local(alert.at),
            "subject": self.subject(case, labels[alert.kind]),
        }

    def page(self, case: CaseFacts, now: dt.datetime) -> dict[str, Any]:
        """The on-call page: a case of a priority its plan covers 24x7, arrived out of hours."""
        plan = self.plan(case.plan)
        due = case.first_response_due
        left = self.left(case, time_left(self.sla, case.priority, due, now, plan)) if due is not None else ""
        res = case.resolution_due
        res_left = self.left(case, time_left(self.sla, case.priority, res, now, plan)) if res is not None else ""
        label = f"Page: {case.priority.value} case out of hours" + (f", first response due {self.short(due)}"
                                                                    if due is not None else "")
        return {
            **self.case(case),
            "target": "first_response",
            "target_words": TARGET_WORDS["first_response"],
            "target_duration": self.duration(case, "first_response"),
            "resolution_duration": self.duration(case, "resolution"),
            "due": due,
            "due_local": self.local(due),
            "left": left,
            "resolution_left": res_left,
            "now_local": self.local(now),
            "subject": self.subject(case, label),
        }

    def digest(self, day: dt.date, digest: DigestFacts) -> dict[str, Any]:
        """The daily digest: open cases by priority, then due today, breached and waiting on the client."""
        cal = self.sla.calendar

        def row(case: CaseFacts, deadline: str) -> dict[str, Any]:
            return {**self.case(case), "subject": case.subject or "(no subject)", "deadline": deadline}

        def dues(case: CaseFacts) -> list[tuple[str, dt.datetime]]:
            found = (("first_response", case.first_response_due), ("resolution", case.resolution_due))
            return [(target, due) for target, due in found if due is not None]

        def today(case: CaseFacts) -> str:
            hits = [(t, d) for t, d in dues(case) if cal.local_date(d) == day] or dues(case)
            return "; ".join(f"{TARGET_WORDS[t]} due {self.local(d)}" for t, d in hits)

        def missed(case: CaseFacts, targets: tuple[str, ...]) -> str:
            found = dict(dues(case))
            return "; ".join(f"{TARGET_WORDS.get(t, t)} was due {self.local(found[t])}" if t in found else
                             f"{TARGET_WORDS.get(t, t)} target missed" for t in targets)

        def waiting(case: CaseFacts) -> str:
            running = "; ".join(f"{TARGET_WORDS[t]} due {self.local(d)}" for t, d in dues(case))
            return running or f"resolution clock paused; opened {self.local(case.opened_at)}"

        open_total = sum(digest.open_by_priority.values())
        due_today = [row(c, today(c)) for c in digest.due_today]
        breached = [row(c, missed(c, targets)) for c, targets in digest.breached]
        waiting_oldest = [row(c, waiting(c)) for c in digest.waiting_oldest]
        words = day_words(day)
        return {
            "day": day,
            "day_words": words,
            "open_by_priority": dict(digest.open_by_priority),
            "open_total": open_total,
            "due_today": due_today,
            "breached": breached,
            "waiting_oldest": waiting_oldest,
            "subject": f"casebot daily digest for {words}: {open_total} open, {len(due_today)} due today, "
                       f"{len(breached)} breached, {len(waiting_oldest)} waiting",
        }
