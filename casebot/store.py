"""Storage: SQLAlchemy models, transactions, the outbox and its claims, and the queries the CLI needs.

Owns the schema (cases, participants, messages with their raw bytes, attachments, the audit trail of events, the
outbox, ingest failures and quarantine, the reference counter), how a transaction starts on each engine
(SQLite: WAL + `BEGIN IMMEDIATE` + busy timeout, one instance; PostgreSQL: row locks and `SKIP LOCKED` claims,
several instances), and Alembic upgrades. The only importer of sqlalchemy and alembic. Must not decide anything
about mail: callers pass decisions in; must not send mail or talk to IMAP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
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
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.exc import SQLAlchemyError as StoreError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from casebot.pipeline import CaseView

__all__ = ["ArgumentError", "IntegrityError", "OperationalError", "Store", "StoreError"]

STATUSES = ("new", "open", "waiting", "resolved", "closed")


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

    participants: Mapped[list[Participant]] = relationship(back_populates="case", lazy="selectin")
    linked_case: Mapped[Case | None] = relationship(remote_side="Case.id")


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
    status: Mapped[str] = mapped_column(String(12), nullable=False, index=True)  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


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


# --- value objects handed to jobs and the CLI -----------------------------------------------------------------


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    kind: str
    envelope_from: str
    recipients: tuple[str, ...]
    message_id: str
    raw: bytes
    attempts: int
    case_reference: str | None
    case_id: int | None


@dataclass(frozen=True)
class CaseSummary:
    reference: str
    subject: str
    requester: str
    status: str
    priority: str
    priority_rule: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    message_count: int
    linked_to: str | None

    def as_json(self) -> dict[str, Any]:
        def iso(v: dt.datetime | None) -> str | None:
            return v.isoformat().replace("+00:00", "Z") if v else None

        return {
            "reference": self.reference,
            "subject": self.subject,
            "requester": self.requester,
            "status": self.status,
            "priority": self.priority,
            "priority_rule": self.priority_rule,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "first_response_due": iso(self.first_response_due),
            "resolution_due": iso(self.resolution_due),
            "message_count": self.message_count,
            "linked_to": self.linked_to,
        }


# --- the store -----------------------------------------------------------------------------------------------


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below emit BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN, so a writer
        # takes the lock up front and concurrent writers wait (busy_timeout) instead of failing mid-transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Claim:
    """One claimed outbox row and the three ways its attempt can end. Each outcome is one UPDATE (plus the
    audit event), written in the claiming transaction on PostgreSQL and in a short one of its own on SQLite."""

    def __init__(self, store: Store, tx: Tx | None, item: OutboxItem) -> None:
        self.store, self.tx, self.item = store, tx, item

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        if self.tx is not None:
            yield self.tx
        else:
            with self.store.transaction() as tx:
                yield tx

    def _update(self, tx: Tx, **values: Any) -> None:
        tx.session.execute(
            update(Outbox).where(Outbox.id == self.item.id)
            .values(attempts=Outbox.attempts + 1, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )

    def sent(self, now: dt.datetime) -> None:
        with self._tx() as tx:
            self._update(tx, status="sent", sent_at=now, last_error=None)
            if self.item.case_id is not None:
                tx.event(self.item.case_id, now, f"{self.item.kind}.sent", key=self.item.key,
                         message_id=self.item.message_id)

    def retry(self, now: dt.datetime, next_at: dt.datetime, error: str) -> None:
        with self._tx() as tx:
            self._update(tx, next_attempt_at=next_at, last_error=error[:2000])

    def failed(self, now: dt.datetime, error: str) -> None:
        with self._tx() as tx:
            self._update(tx, status="failed", last_error=error[:2000])
            if self.item.case_id is not None:
                tx.event(self.item.case_id, now, f"{self.item.kind}.failed", key=self.item.key, error=error[:2000])


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._leader_conn: Connection | None = None
        self._leased: deque[OutboxItem] = deque()

    def close(self) -> None:
        if self._leader_conn is not None:
            self._leader_conn.close()
            self._leader_conn = None
        self.engine.dispose()

    def acquire_leader(self, name: str) -> bool:
        """One instance per mailbox. PostgreSQL: a session advisory lock held on a dedicated connection for the
        life of the process (it is released by the server if the process dies). SQLite serves one instance."""
        if self.is_sqlite:
            return True
        if self._leader_conn is not None:
            return True
        conn = self.engine.connect()
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        if got:
            self._leader_conn = conn
        else:
            conn.close()
        return got


    # -- schema --

    def alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("casebot.migrations")))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self) -> str | None:
        """Apply every Alembic migration up to head; returns the revision now applied."""
        from alembic import command

        command.upgrade(self.alembic_config(), "head")
        return self.revision()

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    # -- transactions --

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._sessions() as session, session.begin():
            yield Tx(session, self.is_sqlite)

    # -- outbox (deliver job) --

    @contextmanager
    def claim_next(self, now: dt.datetime, lease: dt.timedelta) -> Iterator[Claim | None]:
        """Claim the next due outbox row for this process, or None when nothing is due.

        PostgreSQL (several instances): the row is locked `FOR UPDATE SKIP LOCKED` in a transaction held open
        while the mail is sent and its outcome written; another instance skips it, and if this process dies the
        server releases the lock at once. SQLite (one instance): rows are leased (`claimed_until`) a few at a
        time in a short transaction, so the database is never locked while an SMTP server answers; a crashed
        run's leases are taken back at start-up (`outbox_release_all`), unused ones by `outbox_release_leased`.
        """
        due = (
            select(Outbox)
            .where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
            .order_by(Outbox.next_attempt_at, Outbox.id)
        )
        if not self.is_sqlite:
            with self.transaction() as tx:
                row = tx.session.scalars(due.limit(1).with_for_update(skip_locked=True, of=Outbox)).first()
                yield Claim(self, tx, self._item(tx, row)) if row is not None else None
            return
        if not self._leased:
            with self.transaction() as tx:
                rows = list(tx.session.scalars(
                    due.where((Outbox.claimed_until.is_(None)) | (Outbox.claimed_until <= now)).limit(20)
                ))
                for row in rows:
                    row.claimed_until = now + lease
                self._leased.extend(self._item(tx, row) for row in rows)
        yield Claim(self, None, self._leased.popleft()) if self._leased else None

    def outbox_release_leased(self) -> None:
        """Give back leases this process took but did not attempt (the tick ended early)."""
        ids = [item.id for item in self._leased]
        self._leased.clear()
        if ids:
            with self.transaction() as tx:
                tx.session.execute(update(Outbox).where(Outbox.id.in_(ids)).values(claimed_until=None))

    @staticmethod
    def _item(tx: Tx, row: Outbox) -> OutboxItem:
        ref = tx.references_for([row.case_id]).get(row.case_id) if row.case_id is not None else None
        return OutboxItem(
            row.id, row.key, row.kind, row.envelope_from, tuple(row.recipients), row.message_id, row.raw,
            row.attempts, ref, row.case_id,
        )

    def outbox_release_all(self) -> None:
        """Single-instance start-up (SQLite): leases left by a crashed run are ours, take them back now."""
        with self.transaction() as tx:
            tx.session.execute(
                update(Outbox)
                .where(Outbox.status == "pending", Outbox.claimed_until.is_not(None))
                .values(claimed_until=None)
            )

    def outbox_counts(self) -> dict[str, int]:
        with self.transaction() as tx:
            rows = tx.session.execute(select(Outbox.status, func.count()).group_by(Outbox.status))
            return {status: int(n) for status, n in rows}

    # -- queries (CLI) --

    def list_cases(self, status: str | None = None) -> list[CaseSummary]:
        with self.transaction() as tx:
            return tx.case_summaries(status=status)

    def case_detail(self, reference: str) -> dict[str, Any] | None:
        with self.transaction() as tx:
            return tx.case_detail(reference)

    def change_status(self, reference: str, status: str, now: dt.datetime, why: str) -> str | None:
        """Set a case's status (recorded in its audit trail); returns the previous status, None if no such case."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.transaction() as tx:
            case = tx.case_by_reference(reference)
            if case is None:
                return None
            previous = case.status
            tx.set_status(case, status, now, why)
            return previous


class Tx:
    """One transaction's worth of operations. Everything the ingest job writes for one message goes through a
    single `Tx`, so a message, its case, its events and its acknowledgement commit together or not at all."""

    def __init__(self, session: Session, is_sqlite: bool) -> None:
        self.session = session
        self.is_sqlite = is_sqlite

    # -- ingestion --

    def message_exists(self, dedupe_key: str) -> bool:
        return self.session.scalar(select(Message.id).where(Message.dedupe_key == dedupe_key)) is not None

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

    def open_case(
        self,
        *,
        reference: str,
        subject: str,
        requester: str,
        requester_name: str,
        priority: str,
        priority_rule: str | None,
        now: dt.datetime,
        first_response_due: dt.datetime | None,
        resolution_due: dt.datetime | None,
        linked_to: str | None,
    ) -> Case:
        linked = self.case_by_reference(linked_to) if linked_to else None
        case = Case(
            reference=reference, subject=subject, requester=requester, requester_name=requester_name,
            status="new", priority=priority, priority_rule=priority_rule,
            linked_case_id=linked.id if linked else None, created_at=now, updated_at=now,
            first_response_due=first_response_due, resolution_due=resolution_due,
            participants=[],  # known empty: spares the lazy load add_participants would otherwise trigger
        )
        self.session.add(case)
        self.session.flush()
        return case

    def add_participants(self, case: Case, addresses: list[tuple[str, str]]) -> None:
        known = {p.address for p in case.participants}
        for address, role in addresses:
            if address and address not in known:
                known.add(address)
                case.participants.append(Participant(address=address, role=role))

    def add_message(self, **fields: Any) -> Message:
        attachments = fields.pop("attachments", ())
        msg = Message(**fields)
        # Through the relationship, so the unit of work orders the inserts at commit: no flush per message.
        msg.attachments = [
            AttachmentRow(
                filename=att.filename, content_type=att.content_type, size=att.size,
                sha256=hashlib.sha256(att.data).hexdigest(), data=att.data,
            )
            for att in attachments
        ]
        self.session.add(msg)
        return msg

    def event(self, case_id: int, at: dt.datetime, kind: str, **detail: Any) -> None:
        self.session.add(Event(case_id=case_id, at=at, kind=kind, detail=detail))

    def case_by_reference(self, reference: str) -> Case | None:
        return self.session.scalar(select(Case).where(Case.reference == reference))

    def set_status(self, case: Case, status: str, now: dt.datetime, why: str) -> None:
        previous = case.status
        if previous == status:
            return
        case.status, case.updated_at = status, now
        if status == "resolved":
            case.resolved_at = now
        self.event(case.id, now, "status.changed", previous=previous, status=status, why=why)

    def enqueue(
        self,
        *,
        key: str,
        case_id: int | None,
        kind: str,
        envelope_from: str,
        recipients: list[str],
        message_id: str,
        raw: bytes,
        now: dt.datetime,
        known_new: bool = False,
    ) -> bool:
        """Queue a mail once: a second call with the same idempotency key changes nothing. `known_new` skips the
        look-up when the caller has just proven the key cannot exist (the unique index still guards it)."""
        if not known_new and self.session.scalar(select(Outbox.id).where(Outbox.key == key)) is not None:
            return False
        self.session.add(
            Outbox(
                key=key, case_id=case_id, kind=kind, envelope_from=envelope_from, recipients=recipients,
                primary_recipient=recipients[0] if recipients else "", message_id=message_id, raw=raw,
                status="pending", attempts=0, next_attempt_at=now, created_at=now,
            )
        )
        return True

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

    # -- lookups for the pipeline --

    def _view(self, case: Case) -> CaseView:
        return CaseView(
            reference=case.reference,
            status=case.status,
            requester=case.requester,
            participants=frozenset(p.address for p in case.participants) | {case.requester},
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
        case = self.case_by_reference(reference)
        return self._view(case) if case else None

    def is_own_message_id(self, message_id: str) -> bool:
        return self.session.scalar(select(Outbox.id).where(Outbox.message_id == message_id).limit(1)) is not None

    def acks_to(self, address: str, since: dt.datetime) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(Outbox).where(
                    Outbox.kind == "ack", Outbox.primary_recipient == address, Outbox.created_at >= since
                )
            )
            or 0
        )

    def acks_for_sender(self, sender: str, since: dt.datetime) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(Outbox)
                .join(Case, Case.id == Outbox.case_id)
                .where(Outbox.kind == "ack", Case.requester == sender, Outbox.created_at >= since)
            )
            or 0
        )

    def references_for(self, case_ids: list[int]) -> dict[int, str]:
        if not case_ids:
            return {}
        rows = self.session.execute(select(Case.id, Case.reference).where(Case.id.in_(set(case_ids))))
        return {int(i): str(r) for i, r in rows}

    # -- CLI queries --

    def case_summaries(self, status: str | None = None, reference: str | None = None) -> list[CaseSummary]:
        counts = (
            select(Message.case_id, func.count(Message.id).label("n")).group_by(Message.case_id).subquery()
        )
        linked = select(Case.id, Case.reference).subquery()
        stmt = (
            select(Case, func.coalesce(counts.c.n, 0), linked.c.reference)
            .outerjoin(counts, counts.c.case_id == Case.id)
            .outerjoin(linked, linked.c.id == Case.linked_case_id)
            .order_by(Case.id)
        )
        if status:
            stmt = stmt.where(Case.status == status)
        if reference is not None:
            stmt = stmt.where(Case.reference == reference)
        out = []
        for case, n, linked_ref in self.session.execute(stmt):
            out.append(
                CaseSummary(
                    case.reference, case.subject, case.requester, case.status, case.priority, case.priority_rule,
                    case.created_at, case.updated_at, case.first_response_due, case.resolution_due, int(n),
                    linked_ref,
                )
            )
        return out

    def case_detail(self, reference: str) -> dict[str, Any] | None:
        summary = next(iter(self.case_summaries(reference=reference)), None)
        case = self.case_by_reference(reference)
        if case is None or summary is None:
            return None
        messages = self.session.scalars(select(Message).where(Message.case_id == case.id).order_by(Message.id))
        msg_list = []
        for m in messages:
            atts = self.session.scalars(select(AttachmentRow).where(AttachmentRow.message_pk == m.id))
            msg_list.append(
                {
                    "message_id": m.message_id,
                    "disposition": m.disposition,
                    "from": m.sender,
                    "subject": m.subject,
                    "received_at": m.received_at.isoformat().replace("+00:00", "Z"),
                    "automated": m.automated,
                    "size": len(m.raw),
                    "attachments": [
                        {"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in atts
                    ],
                    "text": m.body_text,
                    "trace": m.trace,
                }
            )
        events = self.session.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id))
        outbox = self.session.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id))
        return {
            **summary.as_json(),
            "participants": sorted({p.address for p in case.participants}),
            "messages": msg_list,
            "events": [
                {"at": e.at.isoformat().replace("+00:00", "Z"), "kind": e.kind, **e.detail} for e in events
            ],
            "outbox": [
                {
                    "key": o.key, "kind": o.kind, "to": o.recipients, "status": o.status,
                    "attempts": o.attempts, "last_error": o.last_error,
                }
                for o in outbox
            ],
        }

    def quarantine_count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(Quarantined)) or 0)

