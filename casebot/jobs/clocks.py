"""A case's SLA clocks in the store: deadlines recomputed, pauses kept, the next alert moment set.

Owns `ClockPolicy` (the SLA policy plus the reminder settings and who is told), the `ClockView` of a stored case
(what still runs: nothing once responded/resolved, nothing while waiting on the client), `refresh` (deadlines
recomputed from the opening with every pause applied, the change recorded on the case with its time and cause,
the next alert moment stored for the indexed scan) and `apply_transition` (a life-cycle transition written, its
pause recorded, the clocks refreshed). Must not decide a transition (`case`) or compute time (`sla`, `alerts`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from casebot.alerts import ClockView, alerts_due, next_alert_at
from casebot.case import Priority, Status, Transition
from casebot.sla import Deadlines, Pause, Plan, SlaPolicy
from casebot.sla_notices import CaseFacts
from casebot.store import ClockRecord, Tx


class StatusHook(Protocol):
    """Called after every written transition (`jobs.status.StatusNotifier` tells the client)."""

    def __call__(self, tx: Tx, case_id: int, transition: Transition, at: dt.datetime) -> None: ...

_STOPPED = (Status.WAITING, Status.RESOLVED, Status.CLOSED)
_CLOCK_CHANGES = ("clock.paused", "clock.resumed", "priority.changed", "first_response.stamped", "status.changed")


@dataclass(frozen=True)
class ClockPolicy:
    sla: SlaPolicy
    shares: tuple[float, ...] = (0.75,)
    quiet: frozenset[Priority] = frozenset({Priority.MEDIUM, Priority.LOW})
    escalate: frozenset[Priority] = frozenset({Priority.CRITICAL, Priority.HIGH})
    notify: str = ""  # staff.notify: reminders, breach alerts, the digest
    manager: str = ""  # escalation.manager
    status: StatusHook | None = None  # tells the client of each status change (jobs/status.py)

    def plan(self, name: str | None) -> Plan | None:
        return next((p for p in self.sla.plans if p.name == name), None) if name else None

    @staticmethod
    def pauses(rec: ClockRecord, open_too: bool = True) -> tuple[Pause, ...]:
        closed = tuple(Pause(start, end) for start, end in rec.pauses)
        return (*closed, Pause(rec.paused_since)) if open_too and rec.paused_since else closed

    def deadlines(self, rec: ClockRecord) -> Deadlines:
        return self.sla.deadlines(rec.priority, rec.opened_at, self.plan(rec.plan), self.pauses(rec))

    def view(self, rec: ClockRecord) -> ClockView:
        """What still runs: the first-response clock until the first staff response, the resolution clock until
        the case is resolved; neither while the case waits on the client (nothing is sent for a paused case)."""
        stopped = rec.status in _STOPPED
        return ClockView(
            priority=rec.priority, plan=self.plan(rec.plan), opened_at=rec.opened_at,
            first_response_due=None if stopped or rec.first_response_at else rec.first_response_due,
            resolution_due=None if stopped else rec.resolution_due, pauses=self.pauses(rec, open_too=False),
        )

    def next_alert(self, rec: ClockRecord, after: dt.datetime) -> dt.datetime | None:
        return self.next_alert_view(self.view(rec), after)

    def next_alert_view(self, view: ClockView, after: dt.datetime) -> dt.datetime | None:
        return next_alert_at(self.sla, view, after, self.shares, self.quiet)

    def due_from(self, rec: ClockRecord, at: dt.datetime) -> dt.datetime | None:
        """When the scan should next look at a case whose clocks just changed: at once when something is already
        due (a raise that breaches at once; what was sent already is deduplicated by its key), else the next
        threshold."""
        view = self.view(rec)
        if alerts_due(self.sla, view, at, self.shares, self.quiet, self.escalate):
            return at
        return self.next_alert_view(view, at)


def case_facts(rec: ClockRecord) -> CaseFacts:
    """What a notice about a stored case may say."""
    return CaseFacts(rec.reference, rec.subject, rec.requester, rec.requester_name, rec.priority, rec.plan,
                     rec.status.value, rec.opened_at, rec.first_response_due, rec.resolution_due)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def refresh(tx: Tx, clocks: ClockPolicy, case_id: int, at: dt.datetime, cause: str) -> ClockRecord:
    """Recompute a case's deadlines and next alert; a changed deadline is recorded as `deadline.changed`."""
    rec = tx.clock_record(case_id)
    d = clocks.deadlines(rec)
    new = dataclasses.replace(rec, first_response_due=d.first_response_due, resolution_due=d.resolution_due)
    if (rec.first_response_due, rec.resolution_due) != (new.first_response_due, new.resolution_due):
        tx.event(case_id, at, "deadline.changed", cause=cause,
                 first_response_due=_iso(new.first_response_due), resolution_due=_iso(new.resolution_due),
                 previous_first_response_due=_iso(rec.first_response_due),
                 previous_resolution_due=_iso(rec.resolution_due),
                 **({"paused": True} if new.resolution_due is None and rec.paused_since else {}))
    tx.set_clocks(case_id, first_response_due=new.first_response_due, resolution_due=new.resolution_due,
                  next_alert_at=clocks.due_from(new, at))
    return new


def apply_transition(tx: Tx, clocks: ClockPolicy, case_id: int, transition: Transition, at: dt.datetime,
                     **context: str) -> None:
    """Write a life-cycle transition with its audit events; keep the pause and refresh the clocks it moved."""
    if not transition.changed:
        return
    tx.apply(case_id, transition, at, **context)
    if transition.has("clock.resumed") and transition.before.paused_since is not None:
        tx.add_pause(case_id, transition.before.paused_since, at)
    kinds = [c.kind for c in transition.changes if c.kind in _CLOCK_CHANGES]
    if kinds:
        why = next((str(c.detail.get("why")) for c in transition.changes if c.detail.get("why")), "")
        refresh(tx, clocks, case_id, at, ", ".join(kinds) + (f": {why}" if why else ""))
    if clocks.status is not None:
        clocks.status(tx, case_id, transition, at)
