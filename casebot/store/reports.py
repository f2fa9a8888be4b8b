"""Read models for the CLI: case lists and one case in full.

Owns the queries behind `casebot cases list` and `cases show` (its outbox entries with their bounces: when,
the failed recipient, the diagnostic, the bounce's message): a fixed number of queries per call whatever the
number of messages (attachments loaded with their messages, no query per row). Must not write anything.
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from casebot.store.records import CaseSummary, iso
from casebot.store.schema import AttachmentRow, Case, Event, Message, Outbox


def breached(case: Case, now: dt.datetime | None) -> tuple[str, ...]:
    """The targets a case missed: answered (or resolved) after the deadline, or still not by `now`."""
    out = []
    for target, due, done in (("first_response", case.first_response_due, case.first_response_at),
                              ("resolution", case.resolution_due, case.resolved_at)):
        if due is None:
            continue
        if done is None and case.status == "closed":
            continue  # closed without a resolution stamp: nothing to measure
        when = done if done is not None else now
        if when is not None and when > due:
            out.append(target)
    return tuple(out)


def _with_sends(events: list[Event], outbox: list[Outbox]) -> list[dict[str, Any]]:
    """The audit trail with each mail the server accepted shown as `<kind>.sent` at its `sent_at`: the outbox
    row is the record of a send (the deliver job writes one statement per mail), merged in by time."""
    stored = [(e.at, {"at": iso(e.at), "kind": e.kind, **e.detail}) for e in events]
    sends = sorted(((o.sent_at, {"at": iso(o.sent_at), "kind": f"{o.kind}.sent", "key": o.key,
                                 "message_id": o.message_id}) for o in outbox if o.sent_at is not None),
                   key=lambda pair: pair[0])
    return [entry for _, entry in heapq.merge(stored, sends, key=lambda pair: pair[0])]


class ReportOps:
    session: Session

    def case_summaries(self, status: str | None = None, reference: str | None = None,
                       now: dt.datetime | None = None) -> list[CaseSummary]:
        """Cases in order; `breached` lists the targets missed by `now` (by their stamps alone when None)."""
        counts = select(Message.case_id, func.count(Message.id).label("n")).group_by(Message.case_id)
        if reference is not None:
            counts = counts.join(Case, Case.id == Message.case_id).where(Case.reference == reference)
        counted = counts.subquery()
        linked = select(Case.id, Case.reference).subquery()
        stmt = (
            select(Case, func.coalesce(counted.c.n, 0), linked.c.reference)
            .outerjoin(counted, counted.c.case_id == Case.id)
            .outerjoin(linked, linked.c.id == Case.linked_case_id)
            .order_by(Case.id)
        )
        if status:
            stmt = stmt.where(Case.status == status)
        if reference is not None:
            stmt = stmt.where(Case.reference == reference)
        return [
            CaseSummary(case.reference, case.subject, case.requester, case.status, case.priority, case.priority_rule,
                        case.created_at, case.updated_at, case.first_response_due, case.resolution_due, int(n),
                        linked_ref, case.plan, breached(case, now))
            for case, n, linked_ref in self.session.execute(stmt)
        ]

    def case_detail(self, reference: str, now: dt.datetime | None = None) -> dict[str, Any] | None:
        summary = next(iter(self.case_summaries(reference=reference, now=now)), None)
        case = self.session.scalar(select(Case).where(Case.reference == reference))
        if case is None or summary is None:
            return None
        messages = self.session.scalars(
            select(Message).where(Message.case_id == case.id).order_by(Message.id)
            .options(selectinload(Message.attachments).load_only(
                AttachmentRow.filename, AttachmentRow.content_type, AttachmentRow.size))
        )
        events = self.session.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id))
        outbox = list(self.session.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id)))
        return {
            **summary.as_json(),
            "participants": sorted({p.address for p in case.participants}),
            "messages": [
                {
                    "id": m.id, "message_id": m.message_id, "disposition": m.disposition, "defects": m.defects,
                    "from": m.sender, "subject": m.subject,
                    "received_at": iso(m.received_at), "automated": m.automated, "size": len(m.raw),
                    "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                                    for a in m.attachments],
                    "text": m.body_text, "trace": m.trace,
                }
                for m in messages
            ],
            "events": _with_sends(list(events), outbox),
            "outbox": [
                {"key": o.key, "kind": o.kind, "to": o.recipients, "status": o.status, "attempts": o.attempts,
                 "last_error": o.last_error, "message_id": o.message_id, "sent_at": iso(o.sent_at),
                 **({"bounced_at": iso(o.bounced_at), "bounce_recipient": o.bounce_recipient,
                     "bounce_diagnostic": o.bounce_diagnostic, "bounce_message": o.bounce_message_pk}
                    if o.status == "bounced" else {})}
                for o in outbox
            ],
        }
