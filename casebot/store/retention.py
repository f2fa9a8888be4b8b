"""Retention in the store: old raw mail, attachment data and closed cases, purged a bounded batch at a time.

Owns the purge queries `casebot retention run` and the daily job use: the raw bytes of messages (and of outbox
mail no longer pending) older than a cutoff on closed cases or on no case, emptied with `purged_at` set (the row,
its Message-ID and its text stay for threading, `cases show` and statistics); attachment data of such messages
emptied; closed cases not updated since a cutoff deleted with everything on them (messages, attachments, events,
participants, pauses, outbox mail; a case linked to one loses the link). At most `limit` rows per call, oldest
first, and on PostgreSQL rows another instance is purging are skipped (`SKIP LOCKED`). Must not decide the cutoffs
(`jobs.retention` does) or commit (the caller's transaction does; a dry run rolls it back).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from casebot.store.schema import AttachmentRow, Case, Event, Message, Outbox, Participant, PauseRow

CLOSED = "closed"


def _closed_or_caseless() -> ColumnElement[bool]:
    return or_(Case.status == CLOSED, Case.id.is_(None))


class RetentionOps:
    session: Session

    def purge_raw(self, cutoff: dt.datetime, now: dt.datetime, limit: int) -> tuple[Counter[int], int, int, bool]:
        """Empty raw mail received before `cutoff` on closed cases or no case: ({case id: messages}, messages
        emptied, outbox mails emptied, more left)."""
        found = list(self.session.execute(
            select(Message.id, Message.case_id).outerjoin(Case, Case.id == Message.case_id)
            .where(Message.purged_at.is_(None), Message.received_at < cutoff, _closed_or_caseless())
            .order_by(Message.id).limit(limit + 1).with_for_update(of=Message, skip_locked=True)))
        more = len(found) > limit
        found = found[:limit]
        if found:
            self.session.execute(update(Message).where(Message.id.in_([i for i, _c in found]))
                                 .values(raw=b"", purged_at=now))
        per_case = Counter(int(c) for _i, c in found if c is not None)
        sent = list(self.session.scalars(
            select(Outbox.id).outerjoin(Case, Case.id == Outbox.case_id)
            .where(Outbox.status != "pending", Outbox.created_at < cutoff, func.length(Outbox.raw) > 0,
                   _closed_or_caseless())
            .order_by(Outbox.id).limit(limit + 1).with_for_update(of=Outbox, skip_locked=True)))
        more = more or len(sent) > limit
        sent = sent[:limit]
        if sent:
            self.session.execute(update(Outbox).where(Outbox.id.in_(sent)).values(raw=b""))
        return per_case, len(found), len(sent), more

    def purge_attachments(self, cutoff: dt.datetime, now: dt.datetime, limit: int) -> tuple[Counter[int], int, bool]:
        """Empty the data of attachments of messages received before `cutoff` on closed cases or no case."""
        found = list(self.session.execute(
            select(AttachmentRow.id, Message.case_id).join(Message, Message.id == AttachmentRow.message_pk)
            .outerjoin(Case, Case.id == Message.case_id)
            .where(AttachmentRow.purged_at.is_(None), Message.received_at < cutoff, _closed_or_caseless())
            .order_by(AttachmentRow.id).limit(limit + 1).with_for_update(of=AttachmentRow, skip_locked=True)))
        more = len(found) > limit
        found = found[:limit]
        if found:
            self.session.execute(update(AttachmentRow).where(AttachmentRow.id.in_([i for i, _c in found]))
                                 .values(data=b"", purged_at=now))
        return Counter(int(c) for _i, c in found if c is not None), len(found), more

    def delete_closed_cases(self, cutoff: dt.datetime, limit: int) -> tuple[list[str], Counter[str], bool]:
        """Delete closed cases not updated since `cutoff`, with everything on them: (references, rows, more)."""
        found = list(self.session.execute(
            select(Case.id, Case.reference).where(Case.status == CLOSED, Case.updated_at < cutoff)
            .order_by(Case.id).limit(limit + 1).with_for_update(skip_locked=True)))
        more = len(found) > limit
        found = found[:limit]
        n: Counter[str] = Counter()
        ids = [i for i, _r in found]
        if not ids:
            return [], n, more
        messages = select(Message.id).where(Message.case_id.in_(ids))
        s = self.session
        s.execute(update(Case).where(Case.linked_case_id.in_(ids)).values(linked_case_id=None))
        s.execute(update(Outbox).where(Outbox.bounce_message_pk.in_(messages)).values(bounce_message_pk=None))
        for name, stmt in (
            ("attachments", delete(AttachmentRow).where(AttachmentRow.message_pk.in_(messages))),
            ("outbox", delete(Outbox).where(Outbox.case_id.in_(ids))),
            ("messages", delete(Message).where(Message.case_id.in_(ids))),
            ("events", delete(Event).where(Event.case_id.in_(ids))),
            ("participants", delete(Participant).where(Participant.case_id.in_(ids))),
            ("pauses", delete(PauseRow).where(PauseRow.case_id.in_(ids))),
            ("cases", delete(Case).where(Case.id.in_(ids))),
        ):
            n[name] = int(getattr(s.execute(stmt.execution_options(synchronize_session=False)), "rowcount", 0) or 0)
        return [str(r) for _i, r in found], n, more
