"""The SLA clocks of cases: what the deadlines, the pauses and the reminder scan read and write.

Owns reading a case's clocks (`ClockRecord`, with its closed pauses), writing recomputed deadlines and the next
alert moment, recording a closed pause, the reminder scan's claim of due cases (`next_alert_at <= now` through
its index; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two instances never scan the same case at once) and the
daily digest's read model. Must not compute a deadline or decide what is due (`sla` and `alerts` do).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, lazyload

from casebot.case import OPEN_STATUSES, Priority, Status
from casebot.store.records import ClockRecord
from casebot.store.schema import Case, PauseRow


class ClockOps:
    session: Session

    def _record(self, case: Case, pauses: list[tuple[dt.datetime, dt.datetime]]) -> ClockRecord:
        return ClockRecord(
            id=case.id, reference=case.reference, subject=case.subject, requester=case.requester,
            requester_name=case.requester_name, status=Status(case.status), priority=Priority(case.priority),
            plan=case.plan, opened_at=case.created_at, first_response_at=case.first_response_at,
            first_response_due=case.first_response_due, resolution_due=case.resolution_due,
            resolved_at=case.resolved_at, paused_since=case.paused_since, pauses=tuple(pauses),
        )

    def _pauses(self, case_ids: list[int]) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
        out: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {i: [] for i in case_ids}
        if case_ids:
            rows = self.session.execute(
                select(PauseRow.case_id, PauseRow.started_at, PauseRow.ended_at)
                .where(PauseRow.case_id.in_(case_ids)).order_by(PauseRow.case_id, PauseRow.started_at)
            )
            for case_id, start, end in rows:
                out[int(case_id)].append((start, end))
        return out

    def clock_record(self, case_id: int) -> ClockRecord:
        case = self.session.get(Case, case_id)
        if case is None:
            raise LookupError(f"no case with id {case_id}")
        return self._record(case, self._pauses([case_id])[case_id])

    def add_pause(self, case_id: int, started_at: dt.datetime, ended_at: dt.datetime) -> None:
        self.session.add(PauseRow(case_id=case_id, started_at=started_at, ended_at=ended_at))

    def set_clocks(self, case_id: int, *, first_response_due: dt.datetime | None,
                   resolution_due: dt.datetime | None, next_alert_at: dt.datetime | None) -> None:
        case = self.session.get(Case, case_id)
        if case is None:
            raise LookupError(f"no case with id {case_id}")
        case.first_response_due, case.resolution_due = first_response_due, resolution_due
        case.next_alert_at = next_alert_at

    def set_next_alerts(self, moments: dict[int, dt.datetime | None]) -> None:
        """Store each scanned case's next alert moment: one executemany UPDATE by primary key for the batch."""
        if moments:
            self.session.execute(update(Case), [{"id": i, "next_alert_at": at} for i, at in moments.items()])

    def claim_due(self, now: dt.datetime, limit: int, skip_locked: bool) -> list[ClockRecord]:
        """Cases whose next alert moment has come, oldest first, locked for this transaction on PostgreSQL."""
        stmt = (select(Case).where(Case.next_alert_at <= now).order_by(Case.next_alert_at, Case.id).limit(limit)
                .options(lazyload(Case.participants)))  # the scan never needs them
        if skip_locked:
            stmt = stmt.with_for_update(skip_locked=True, of=Case)
        cases = list(self.session.scalars(stmt))
        pauses = self._pauses([c.id for c in cases])
        return [self._record(c, pauses[c.id]) for c in cases]

    def open_clocks(self) -> list[ClockRecord]:
        """Every open case's clocks (new, open, waiting), for the daily digest."""
        cases = list(self.session.scalars(
            select(Case).where(Case.status.in_([s.value for s in OPEN_STATUSES])).order_by(Case.id)
            .options(lazyload(Case.participants))))
        pauses = self._pauses([c.id for c in cases])
        return [self._record(c, pauses[c.id]) for c in cases]

    def resolved_cases(self) -> list[tuple[int, dt.datetime]]:
        """(id, resolved_at) of every resolved case, for the auto-close scan."""
        rows = self.session.execute(select(Case.id, Case.resolved_at).where(
            Case.status == Status.RESOLVED.value, Case.resolved_at.is_not(None)).order_by(Case.id))
        return [(int(i), at) for i, at in rows if at is not None]

    def open_counts(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Case.priority, func.count()).where(Case.status.in_([s.value for s in OPEN_STATUSES]))
            .group_by(Case.priority))
        return {str(p): int(n) for p, n in rows}
