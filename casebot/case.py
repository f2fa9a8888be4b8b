"""The case life cycle (pure): statuses, priorities, and what an event does to a case.

Owns the `Status` and `Priority` enums (the one list of each), the `CaseState` a decision needs, the events that
move a case (a client writes, staff answer, someone sets a status or a priority) and `apply()`, which returns the
new state and every change with its reason, for the audit trail. Rules: a client reply reopens a waiting or
resolved case (waiting resumes the resolution clock); the first staff response stamps `first_response_at` and
moves a new case to open; `waiting` pauses the resolution clock and leaving it resumes it; resolving stamps
`resolved_at` and reopening clears it. Must not read the clock, touch storage or compute deadlines (`sla` does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"  # on the client: the resolution clock is paused
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for low."""
        return len(PRIORITIES) - 1 - PRIORITIES.index(self)

    def raised(self) -> Priority:
        """One step more urgent (critical stays critical)."""
        return PRIORITIES[max(0, PRIORITIES.index(self) - 1)]


STATUSES: tuple[Status, ...] = tuple(Status)
PRIORITIES: tuple[Priority, ...] = tuple(Priority)  # most urgent first
OPEN_STATUSES: frozenset[Status] = frozenset({Status.NEW, Status.OPEN, Status.WAITING})


@dataclass(frozen=True)
class CaseState:
    """What the life cycle needs to know about a case; the store maps it to and from its row."""

    status: Status
    priority: Priority
    first_response_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    paused_since: dt.datetime | None = None  # set while the resolution clock is paused (status waiting)


# --- events ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientWrote:
    """A message from the client side threaded into the case. Automated mail (an out-of-office) changes nothing."""

    at: dt.datetime
    automated: str | None = None


@dataclass(frozen=True)
class StaffResponded:
    """A public staff response (a relayed reply, or `casebot cases update --responded`)."""

    at: dt.datetime
    by: str = ""


@dataclass(frozen=True)
class StatusSet:
    at: dt.datetime
    status: Status
    why: str
    by: str = ""


@dataclass(frozen=True)
class PrioritySet:
    at: dt.datetime
    priority: Priority
    why: str
    by: str = ""


Event = ClientWrote | StaffResponded | StatusSet | PrioritySet


@dataclass(frozen=True)
class Change:
    """One thing that changed, named as it goes into the audit trail (`status.changed`, `clock.paused`, ...)."""

    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    before: CaseState
    after: CaseState
    changes: tuple[Change, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def has(self, kind: str) -> bool:
        return any(c.kind == kind for c in self.changes)


def apply(state: CaseState, event: Event) -> Transition:
    """The new state after `event` and every change, each with its reason. An event that changes nothing (a
    status set to the status the case has) returns no changes."""
    changes: list[Change] = []
    new = state
    if isinstance(event, ClientWrote):
        if event.automated is None and state.status in (Status.WAITING, Status.RESOLVED):
            new = _status(new, Status.OPEN, event.at, "client replied", "", changes)
    elif isinstance(event, StaffResponded):
        if state.first_response_at is None:
            new = dataclasses.replace(new, first_response_at=event.at)
            changes.append(Change("first_response.stamped", {"by": event.by} if event.by else {}))
        if new.status is Status.NEW:
            new = _status(new, Status.OPEN, event.at, "staff responded", event.by, changes)
    elif isinstance(event, StatusSet):
        new = _status(new, event.status, event.at, event.why, event.by, changes)
    elif event.priority is not state.priority:
        new = dataclasses.replace(new, priority=event.priority)
        detail = {"previous": state.priority.value, "priority": event.priority.value, "why": event.why}
        changes.append(Change("priority.changed", {**detail, **({"by": event.by} if event.by else {})}))
    return Transition(state, new, tuple(changes))


def _status(state: CaseState, status: Status, at: dt.datetime, why: str, by: str, changes: list[Change]) -> CaseState:
    if status is state.status:
        return state
    detail: dict[str, Any] = {"previous": state.status.value, "status": status.value, "why": why}
    if by:
        detail["by"] = by
    changes.append(Change("status.changed", detail))
    new = dataclasses.replace(state, status=status)
    if status is Status.WAITING and state.paused_since is None:
        new = dataclasses.replace(new, paused_since=at)
        changes.append(Change("clock.paused", {"clock": "resolution", "why": "waiting on the client"}))
    elif state.status is Status.WAITING and state.paused_since is not None:
        new = dataclasses.replace(new, paused_since=None)
        changes.append(Change("clock.resumed", {"clock": "resolution", "paused_since": _iso(state.paused_since),
                                                "why": why}))
    if status is Status.RESOLVED:
        new = dataclasses.replace(new, resolved_at=at)
    elif state.status in (Status.RESOLVED, Status.CLOSED) and status in OPEN_STATUSES:
        new = dataclasses.replace(new, resolved_at=None)
        changes.append(Change("case.reopened", {"previous": state.status.value, "why": why}))
    return new


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
