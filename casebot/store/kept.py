"""What casebot keeps, for the admin: quarantined mail, raw messages, automated mail, attachments.

Owns the read (and the one delete) queries behind `casebot quarantine list|show|replay|export`, `casebot messages
raw|list --automated` and `casebot attachments save`: raw bytes exactly as they arrived. Must not change a case
or decide anything (replaying a quarantined message goes through the ingest job).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from casebot.store.schema import AttachmentRow, Case, IngestFailure, Message, Quarantined


@dataclass(frozen=True)
class QuarantineItem:
    id: int
    source: str
    reason: str
    created_at: dt.datetime
    size: int


@dataclass(frozen=True)
class KeptMessage:
    id: int
    received_at: dt.datetime
    sender: str
    subject: str
    automated: str | None
    disposition: str
    reference: str | None


@dataclass(frozen=True)
class KeptAttachment:
    message_id: int
    filename: str
    content_type: str
    data: bytes


class KeptOps:
    session: Session

    def quarantine_items(self) -> list[QuarantineItem]:
        rows = self.session.execute(select(Quarantined).order_by(Quarantined.id)).scalars()
        return [QuarantineItem(q.id, q.source, q.reason, q.created_at, len(q.raw)) for q in rows]

    def quarantine_raw(self, item_id: int) -> tuple[QuarantineItem, bytes] | None:
        q = self.session.get(Quarantined, item_id)
        return (QuarantineItem(q.id, q.source, q.reason, q.created_at, len(q.raw)), q.raw) if q else None

    def release_quarantine(self, item_id: int) -> None:
        """Forget a quarantined message once it is stored (after a replay): its row and its failure count."""
        q = self.session.get(Quarantined, item_id)
        if q is not None:
            failure = self.session.get(IngestFailure, q.source)
            if failure is not None:
                self.session.delete(failure)
            self.session.delete(q)

    def message_raw(self, message_pk: int) -> bytes | None:
        return self.session.scalar(select(Message.raw).where(Message.id == message_pk))

    def kept_messages(self, automated_only: bool = False) -> list[KeptMessage]:
        stmt = (select(Message.id, Message.received_at, Message.sender, Message.subject, Message.automated,
                       Message.disposition, Case.reference)
                .outerjoin(Case, Case.id == Message.case_id).order_by(Message.id))
        if automated_only:
            stmt = stmt.where(Message.automated.is_not(None))
        return [KeptMessage(int(i), at, str(s), str(subj), a, str(d), r) for i, at, s, subj, a, d, r in
                self.session.execute(stmt)]

    def attachments_of(self, reference: str) -> list[KeptAttachment] | None:
        case_id = self.session.scalar(select(Case.id).where(Case.reference == reference))
        if case_id is None:
            return None
        rows = self.session.execute(
            select(AttachmentRow.message_pk, AttachmentRow.filename, AttachmentRow.content_type, AttachmentRow.data)
            .join(Message, Message.id == AttachmentRow.message_pk).where(Message.case_id == case_id)
            .order_by(AttachmentRow.id))
        return [KeptAttachment(int(m), str(f), str(c), bytes(d)) for m, f, c, d in rows]
