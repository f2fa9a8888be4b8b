"""The database schema: SQLAlchemy models of every table casebot keeps.

Owns the tables (cases, participants, messages with their raw bytes, attachments, the audit trail of events, the
outbox, ingest failures, quarantine, the reference counter), their indexes and the UTC datetime type. The Alembic
migrations must produce exactly this schema (tests/integration/test_schema.py checks it on both engines). Must not
hold queries or decisions: the aggregate modules beside it do the reading and writing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# PostgreSQL advisory lock key of schema changes (migrations/env.py, Database.upgrade): instances starting together
# on one database take turns, so one creates or migrates the schema and the others find it at head.
MIGRATION_LOCK = 0x63617365626F74  # "casebot"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware datetimes as naive UTC and returns them aware (SQLite silently drops offsets otherwise)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass aware UTC")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class Counter(Base):
    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    requester: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    requester_name: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    priority: Mapped[str] = mapped_column(String(16), nullable=False)
    priority_rule: Mapped[str | None] = mapped_column(String(120))
    linked_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    first_response_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paused_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # resolution clock paused (waiting)
    plan: Mapped[str | None] = mapped_column(String(64))  # the requester's support plan when the case opened
    # The next moment the reminder scan has something to send for this case (NULL: nothing left): the scan reads
    # only rows where this has passed, through its index, so it stays fast however many cases are open.
    next_alert_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)

    participants: Mapped[list[Participant]] = relationship(back_populates="case", lazy="selectin")
    linked_case: Mapped[Case | None] = relationship(remote_side="Case.id")


class PauseRow(Base):
    """A closed pause of a case's resolution clock (the open one is `cases.paused_since`)."""

    __tablename__ = "pauses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("case_id", "address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False)
    address: Mapped[str] = mapped_column(String(320), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # requester, cc
    case: Mapped[Case] = relationship(back_populates="participants")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_sender_arrived", "sender", "arrived_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # NOT NULL and unique: the idempotency key of ingestion (Message-ID + content hash).
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True, nullable=False)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    disposition: Mapped[str] = mapped_column(String(24), nullable=False)  # opened, threaded, own-mail
    sender: Mapped[str] = mapped_column(String(320), nullable=False)
    sender_name: Mapped[str] = mapped_column(Text, nullable=False, default="")
    recipients: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    cc: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    body_text: Mapped[str] = mapped_column(Text, nullable=False)
    automated: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(300), nullable=False)
    trace: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    defects: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # When the mail server says the message arrived (IMAP INTERNALDATE, the top Received header, the Maildir file
    # time); NULL when nothing said. The acknowledgement rate limit counts by this, not by the moment of ingest.
    arrived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set when retention or an erasure emptied raw and body (the row stays for threading and statistics).
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # SHA-256 of `raw` as it came: the same bytes delivered again are found before parsing (NULL: stored before
    # revision 0005). Kept when an erasure empties `raw`, like the dedupe key.
    raw_sha256: Mapped[str | None] = mapped_column(String(64), index=True)

    attachments: Mapped[list[AttachmentRow]] = relationship(lazy="select")


class AttachmentRow(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), nullable=False, index=True)
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # data emptied by retention or erasure


class Event(Base):
    """The audit trail: every decision casebot takes about a case, in order."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False, index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class Outbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True, nullable=False)  # idempotency key
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    envelope_from: Mapped[str] = mapped_column(String(320), nullable=False)
    recipients: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    primary_recipient: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    message_id: Mapped[str] = mapped_column(String(998), nullable=False, index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, index=True)  # pending, sent, failed, bounced
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A bounce (DSN or mailer dialect) for this mail: status becomes "bounced", with who failed and why.
    bounced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    bounce_recipient: Mapped[str | None] = mapped_column(String(320))
    bounce_diagnostic: Mapped[str | None] = mapped_column(Text)
    bounce_message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))


class AdminLog(Base):
    """What admins and the housekeeping jobs did outside any one case: erasures, retention runs (who, when, how
    much)."""

    __tablename__ = "admin_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    subject: Mapped[str] = mapped_column(String(320), nullable=False, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class IngestFailure(Base):
    """Attempts per mailbox message that failed to process; bounded, then the message is quarantined."""

    __tablename__ = "ingest_failures"
    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_error: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class Quarantined(Base):
    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300), unique=True, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
