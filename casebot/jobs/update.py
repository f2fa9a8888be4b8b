"""The update job: an admin's change to a case (`casebot cases status`, `casebot cases update`).

Owns loading the case's state, applying each of the admin's events with the case life cycle (a status, a
priority, a first response recorded by hand) and writing the transitions, their audit events and the refreshed
SLA clocks in one transaction. Must not decide what a change implies: the life cycle and `jobs.clocks` do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from casebot import case as lifecycle
from casebot.case import Priority, Status
from casebot.jobs.clocks import ClockPolicy, apply_transition
from casebot.store import Store


@dataclass(frozen=True)
class Updated:
    reference: str
    previous: lifecycle.CaseState
    current: lifecycle.CaseState
    changes: tuple[str, ...]

    @property
    def previous_status(self) -> Status:
        return self.previous.status

    @property
    def status(self) -> Status:
        return self.current.status


def update_case(
    store: Store, clocks: ClockPolicy, reference: str, now: dt.datetime, *, status: Status | None = None,
    priority: Priority | None = None, responded: bool = False, why: str = "", by: str = "admin",
) -> Updated | None:
    """Apply the given changes in order (first response, priority, status); None when there is no such case."""
    with store.transaction() as tx:
        case_id = tx.case_id(reference)
        if case_id is None:
            return None
        before = state = tx.state(case_id)
        events: list[lifecycle.Event] = []
        if responded:
            events.append(lifecycle.StaffResponded(now, by))
        if priority is not None:
            events.append(lifecycle.PrioritySet(now, priority, why or "set by an admin", by))
        if status is not None:
            events.append(lifecycle.StatusSet(now, status, why or "set by an admin", by))
        kinds: list[str] = []
        for event in events:
            transition = lifecycle.apply(state, event)
            apply_transition(tx, clocks, case_id, transition, now)
            kinds += [c.kind for c in transition.changes]
            state = transition.after
        return Updated(reference, before, state, tuple(kinds))
