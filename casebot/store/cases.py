"""The case aggregate: references, cases, participants, the audit trail and life-cycle transitions.

Owns minting reference numbers atomically, opening a case, adding participants, writing audit events, reading a
case's life-cycle state and applying a `Transition` the case life cycle computed (every change becomes an audit
event). Must not decide a transition (`casebot.case` does) or touch mail and the outbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from casebot.case import CaseState, Priority, Status, Transition
from casebot.store.records import NewCase
from casebot.store.schema import Case, Counter, Event, Participant


class CaseOps:
    session: Session

    def mint_number(self, name: str = "case") -> int:
        """Next number of a sequence, atomically: the UPDATE takes the row lock (PostgreSQL) or the database
        write lock (SQLite), so two concurrent transactions can never get the same number."""
        value = self.session.scalar(
            update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value)
        )
        if value is None:
            self.session.add(Counter(name=name, value=1))
            self.session.flush()
            return 1
        return int(value)

    def case_id(self, reference: str) -> int | None:
        return self.session.scalar(select(Case.id).where(Case.reference == reference))

    def canonical_reference(self, text: str) -> str | None:
        """The stored reference `text` names, whatever its case (`case-000001` finds `CASE-000001`)."""
        exact = self.session.scalar(select(Case.reference).where(Case.reference == text))
        if exact is not None:
            return str(exact)
        found = self.session.scalar(select(Case.reference).where(func.upper(Case.reference) == text.strip().upper())
                                    .order_by(Case.id).limit(1))
        return str(found) if found is not None else None

    def open_case(self, new: NewCase) -> int:
        case = self._new_case(new, self.case_id(new.linked_to) if new.linked_to else None)
        self.session.add(case)
        self.session.flush()
        return case.id

    @staticmethod
    def _new_case(new: NewCase, linked: int | None, case_id: int | None = None) -> Case:
        return Case(
            id=case_id, reference=new.reference, subject=new.subject, requester=new.requester,
            requester_name=new.requester_name, status=Status.NEW.value, priority=new.priority.value,
            priority_rule=new.priority_rule, linked_case_id=linked, created_at=new.opened_at,
            updated_at=new.opened_at, first_response_due=new.first_response_due, resolution_due=new.resolution_due,
            plan=new.plan, next_alert_at=new.next_alert_at,
            participants=[],  # known empty: spares the lazy load a participant insert would otherwise trigger
        )

    def add_participants(self, case_id: int, addresses: list[tuple[str, str]], known: frozenset[str]) -> None:
        """Add (address, role) pairs not in `known` (the participants the caller already read with the case)."""
        seen = set(known)
        for address, role in addresses:
            if address and address not in seen:
                seen.add(address)
                self.session.add(Participant(case_id=case_id, address=address, role=role))

    def event(self, case_id: int, at: dt.datetime, kind: str, **detail: Any) -> None:
        self.session.add(Event(case_id=case_id, at=at, kind=kind, detail=detail))

    def last_event_at(self, case_id: int, kind: str) -> dt.datetime | None:
        return self.session.scalar(
            select(Event.at).where(Event.case_id == case_id, Event.kind == kind).order_by(Event.id.desc()).limit(1))

    def _case(self, case_id: int) -> Case | None:
        """The case row (from the identity map when the lookup already read the case)."""
        return self.session.get(Case, case_id)

    def state(self, case_id: int) -> CaseState:
        """The case's life-cycle state (from the identity map when the lookup already read the case)."""
        case = self._case(case_id)
        if case is None:
            raise LookupError(f"no case with id {case_id}")
        return CaseState(Status(case.status), Priority(case.priority), case.first_response_at, case.resolved_at,
                         case.paused_since)

    def touch(self, case_id: int, at: dt.datetime) -> None:
        case = self._case(case_id)
        if case is not None:
            case.updated_at = at

    def apply(self, case_id: int, transition: Transition, at: dt.datetime, **context: Any) -> None:
        """Write a transition: the new state on the row and one audit event per change (plus `context`)."""
        if not transition.changed:
            return
        case = self._case(case_id)
        if case is None:
            raise LookupError(f"no case with id {case_id}")
        after = transition.after
        case.status, case.priority = after.status.value, after.priority.value
        case.first_response_at, case.resolved_at, case.paused_since = (
            after.first_response_at, after.resolved_at, after.paused_since)
        case.updated_at = at
        for change in transition.changes:
            self.event(case_id, at, change.kind, **change.detail, **context)
