"""The intake aggregate: stored messages, ingest failures, quarantine, and the pipeline's look-ups.

Owns writing a message with its raw bytes and attachments, the dedupe check, counting failed attempts per
mailbox source and quarantining, and the read-only questions the pipeline asks (`pipeline.Lookup`: which case a
Message-ID belongs to, a case by reference, whether casebot sent an id, acknowledgements for mail that arrived in
a window, by the server's arrival time). Must not
decide anything about a message: callers pass the pipeline's verdict in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from casebot.case import Status
from casebot.pipeline.base import CaseView
from casebot.store.records import MessageRecord
from casebot.store.schema import AttachmentRow, Case, IngestFailure, Message, Outbox, Quarantined

_BIG = 1 << 20  # blobs above this go in through SQLite's blob I/O


class IntakeOps:
    session: Session

    def message_exists(self, dedupe_key: str) -> bool:
        return self.session.scalar(select(Message.id).where(Message.dedupe_key == dedupe_key)) is not None

    def existing_keys(self, dedupe_keys: list[str]) -> set[str]:
        """Which of these dedupe keys are stored already: one query for a whole batch."""
        if not dedupe_keys:
            return set()
        return {str(k) for k in self.session.scalars(select(Message.dedupe_key).where(
            Message.dedupe_key.in_(dedupe_keys)))}

    def raw_seen(self, digests: list[str]) -> set[str]:
        """Which of these SHA-256 digests of raw bytes are stored already: the re-delivery fast path."""
        if not digests:
            return set()
        return {str(d) for d in self.session.scalars(select(Message.raw_sha256).where(
            Message.raw_sha256.in_(digests)))}

    def add_message(self, record: MessageRecord, *, case_id: int | None, disposition: str) -> None:
        r = record
        msg = Message(
            dedupe_key=r.dedupe_key, case_id=case_id, message_id=r.message_id, disposition=disposition,
            sender=r.sender, sender_name=r.sender_name, recipients=list(r.recipients), cc=list(r.cc),
            subject=r.subject, sent_at=r.sent_at, received_at=r.received_at, body_text=r.body_text,
            automated=r.automated, source=r.source, trace=list(r.trace), defects=list(r.defects), raw=r.raw,
            arrived_at=r.arrived_at, raw_sha256=hashlib.sha256(r.raw).hexdigest(),
        )
        sqlite = self.session.get_bind().dialect.name == "sqlite"
        if len(r.raw) > _BIG and sqlite:
            self._write_blob(msg, "raw", r.raw)
        elif any(a.lazy for a in r.attachments):
            # A big attachment is decoded only after the message row (and its raw bytes) went in.
            self.session.add(msg)
            self.session.flush()
        # Through the relationship, so the unit of work orders the inserts at commit: no flush per message.
        rows = []
        for a in r.attachments:
            data = a.data  # decoded once (a lazy one decodes on each read)
            row = AttachmentRow(filename=a.filename, content_type=a.content_type, size=len(data),
                                sha256=hashlib.sha256(data).hexdigest(), data=data)
            rows.append(row)
            if len(data) > _BIG and sqlite:
                msg.attachments = [*rows]
                self._write_blob(row, "data", data)
        msg.attachments = rows
        self.session.add(msg)

    def _write_blob(self, row: Message | AttachmentRow, column: str, data: bytes) -> None:
        """Insert `row` now with `column` = zeroblob(n), then write the bytes in place through SQLite's blob I/O.
        Bound as a parameter, the bytes would stay copied in the cached INSERT statement until its next use (30
        MB held for a 30 MB mail) on top of the copies SQLite makes while inserting."""
        setattr(row, column, func.zeroblob(len(data)))
        self.session.add(row)
        self.session.flush()
        conn: Any = self.session.connection().connection.driver_connection
        view = memoryview(data)
        with conn.blobopen(row.__tablename__, column, row.id) as blob:
            for i in range(0, len(data), _BIG):
                blob.write(view[i : i + _BIG])
        set_committed_value(row, column, data)  # expired by the flush: never read 30 MB back to look at it

    def client_message_ids(self, case_id: int) -> tuple[str, ...]:
        """The Message-IDs of the client side's messages on a case, oldest first: what a relay threads into."""
        rows = self.session.scalars(
            select(Message.message_id).where(Message.case_id == case_id,
                                             Message.disposition.in_(("opened", "threaded")),
                                             Message.message_id.is_not(None)).order_by(Message.id))
        return tuple(str(r) for r in rows)

    # -- failures and quarantine --

    def failure_counts(self) -> dict[str, int]:
        """Every source with failed attempts: a small table, read once per pass instead of once per message."""
        return {str(s): int(n) for s, n in self.session.execute(select(IngestFailure.source, IngestFailure.attempts))}

    def failure_attempts(self, source: str) -> int:
        row = self.session.get(IngestFailure, source)
        return row.attempts if row else 0

    def record_failure(self, source: str, error: str, now: dt.datetime) -> int:
        row = self.session.get(IngestFailure, source)
        if row is None:
            row = IngestFailure(source=source, attempts=0, last_error="", updated_at=now)
            self.session.add(row)
        row.attempts += 1
        row.last_error, row.updated_at = error[:2000], now
        return row.attempts

    def clear_failure(self, source: str) -> None:
        row = self.session.get(IngestFailure, source)
        if row is not None:
            self.session.delete(row)

    def quarantine(self, source: str, reason: str, raw: bytes, now: dt.datetime) -> None:
        if self.session.scalar(select(Quarantined.id).where(Quarantined.source == source)) is None:
            self.session.add(Quarantined(source=source, reason=reason[:2000], raw=raw, created_at=now))

    def quarantine_count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(Quarantined)) or 0)

    # -- the pipeline's Lookup --

    @staticmethod
    def _view(case: Case) -> CaseView:
        return CaseView(
            reference=case.reference, status=Status(case.status), requester=case.requester,
            participants=frozenset(p.address for p in case.participants) | {case.requester}, id=case.id,
        )

    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        if not message_ids:
            return None
        found: dict[str, set[int]] = {}
        for table in (Message, Outbox):
            for mid, case_id in self.session.execute(
                select(table.message_id, table.case_id).where(
                    table.message_id.in_(message_ids), table.case_id.is_not(None)
                )
            ):
                found.setdefault(str(mid), set()).add(int(case_id or 0))
        for mid in message_ids:  # nearest first
            cases = found.get(mid, set())
            # A Message-ID on more than one case (broken mailers reuse them) says nothing about which one a
            # reply belongs to: skip it rather than risk threading into a stranger's case.
            if len(cases) == 1:
                case = self.session.get(Case, next(iter(cases)))
                if case is not None:
                    return self._view(case)
        return None

    def case_view(self, reference: str) -> CaseView | None:
        case = self.session.scalar(select(Case).where(Case.reference == reference))
        return self._view(case) if case else None

    def is_own_message_id(self, message_id: str) -> bool:
        return self.session.scalar(select(Outbox.id).where(Outbox.message_id == message_id).limit(1)) is not None

    def acks_to(self, address: str, since: dt.datetime, until: dt.datetime) -> int:
        stmt = (select(func.count()).select_from(Outbox)
                .join(Message, (Message.case_id == Outbox.case_id) & (Message.disposition == "opened"))
                .where(Outbox.kind == "ack", Outbox.primary_recipient == address, _arrived(since, until)))
        return int(self.session.scalar(stmt) or 0)

    def acks_for_sender(self, sender: str, since: dt.datetime, until: dt.datetime) -> int:
        # From the messages side: (sender, arrived_at) is indexed.
        stmt = (select(func.count()).select_from(Message)
                .join(Outbox, (Outbox.case_id == Message.case_id) & (Outbox.kind == "ack"))
                .where(Message.sender == sender, Message.disposition == "opened", _arrived(since, until)))
        return int(self.session.scalar(stmt) or 0)


def _arrived(since: dt.datetime, until: dt.datetime) -> ColumnElement[bool]:
    """The case's first message arrived in [since, until]; rows stored before arrival times were kept (NULL)
    count by when their acknowledgement was queued, as before."""
    return or_(Message.arrived_at.between(since, until),
               and_(Message.arrived_at.is_(None), Outbox.created_at >= since))
