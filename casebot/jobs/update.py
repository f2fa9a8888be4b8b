"""The update job: an admin's change to a case (`casebot cases status`), through the case life cycle.

Owns loading the case's state, applying the admin's event with `casebot.case.apply` and writing the transition
(with its audit events) in one transaction. Must not decide what a status change implies: the life cycle does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from casebot import case as lifecycle
from casebot.case import Status
from casebot.store import Store


@dataclass(frozen=True)
class Updated:
    reference: str
    previous: Status
    status: Status
    changes: tuple[str, ...]


def set_status(store: Store, reference: str, status: Status, now: dt.datetime, why: str,
               by: str = "admin") -> Updated | None:
    """Set a case's status; None when there is no such case. Setting the status it has changes nothing."""
    with store.transaction() as tx:
        case_id = tx.case_id(reference)
        if case_id is None:
            return None
        transition = lifecycle.apply(tx.state(case_id), lifecycle.StatusSet(now, status, why, by))
        tx.apply(case_id, transition, now)
        return Updated(reference, transition.before.status, transition.after.status,
                       tuple(c.kind for c in transition.changes))
