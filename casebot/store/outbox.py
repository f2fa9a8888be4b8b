"""The outbox aggregate: queued mail, and claiming it for delivery exactly once.

Owns `enqueue` under a unique idempotency key, and the claims: on PostgreSQL (several instances) a due row is
locked `FOR UPDATE SKIP LOCKED` in a transaction held open while the mail is sent and its outcome written, so a
crashed instance's claim goes with its connection; on SQLite (one instance) rows are leased (`claimed_until`) a few
at a time in a short transaction, so the write lock is never held while an SMTP server thinks. Each outcome (sent,
retry, failed) is one UPDATE (a failure adds its audit event; the row itself records a send); a bounce that comes
back later marks its row `bounced` (`mark_bounced`: when, who failed, the diagnostic, the bounce's stored message).
Must not build mail or talk to an SMTP server.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from casebot.store.records import OutboxItem
from casebot.store.schema import Case, Event, Message, Outbox


class Queueable(Protocol):
    """A built mail (`notices.Notice`): what the outbox needs of it."""

    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def envelope_from(self) -> str: ...
    @property
    def recipients(self) -> tuple[str, ...]: ...
    @property
    def message_id(self) -> str: ...
    @property
    def raw(self) -> bytes: ...


@dataclass(frozen=True)
class Bounced:
    """The outbox row a bounce was about, as `mark_bounced` left it."""

    key: str
    kind: str
    case_id: int | None
    recipient: str  # the failed recipient(s) recorded on the row


class OutboxOps:
    session: Session

    def mark_bounced(self, message_id: str, *, at: dt.datetime, recipients: tuple[str, ...], diagnostic: str,
                     dedupe_key: str) -> Bounced | None:
        """Mark the row that sent `message_id` bounced: status, time, the failed recipient(s) among its own (all the
        report names when none matches) and the diagnostic; `bounce_message_pk` is the bounce's stored message (by
        its dedupe key, added in this transaction). A later bounce for the same row adds its recipient. None when
        casebot sent no such mail."""
        row = self.session.scalar(select(Outbox).where(Outbox.message_id == message_id).order_by(Outbox.id).limit(1))
        if row is None:
            return None
        ours = {r.lower() for r in row.recipients}
        failed = [r for r in recipients if r.lower() in ours] or list(recipients)
        if row.status == "bounced" and row.bounce_recipient:
            known = [r.strip() for r in row.bounce_recipient.split(",")]
            failed = known + [r for r in failed if r.lower() not in {k.lower() for k in known}]
        else:
            self.session.flush()  # the bounce's own message row gets its id
            row.bounce_message_pk = self.session.scalar(select(Message.id).where(Message.dedupe_key == dedupe_key))
            row.bounced_at, row.bounce_diagnostic = at, diagnostic[:2000] or None
        row.status = "bounced"
        row.bounce_recipient = ", ".join(dict.fromkeys(failed))[:320] or None
        return Bounced(row.key, row.kind, row.case_id, row.bounce_recipient or "")

    def queue(self, notice: Queueable, *, case_id: int | None, now: dt.datetime, known_new: bool = False) -> bool:
        """Queue a built notice under its own idempotency key (see `enqueue`)."""
        return self.enqueue(key=notice.key, case_id=case_id, kind=notice.kind, envelope_from=notice.envelope_from,
                            recipients=list(notice.recipients), message_id=notice.message_id, raw=notice.raw,
                            now=now, known_new=known_new)

    def outbox_has(self, key: str) -> bool:
        return self.session.scalar(select(Outbox.id).where(Outbox.key == key)) is not None

    def outbox_keys(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys are queued already: one query for a whole batch."""
        if not keys:
            return set()
        with self.session.no_autoflush:
            return set(self.session.scalars(select(Outbox.key).where(Outbox.key.in_(keys))))

    def enqueue(
        self, *, key: str, case_id: int | None, kind: str, envelope_from: str, recipients: list[str],
        message_id: str, raw: bytes, now: dt.datetime, known_new: bool = False,
    ) -> bool:
        """Queue a mail once: a second call with the same idempotency key changes nothing. `known_new` skips the
        look-up when the caller has just proven the key cannot exist (the unique index still guards it)."""
        if not known_new and self.outbox_has(key):
            return False
        self.session.add(Outbox(
            key=key, case_id=case_id, kind=kind, envelope_from=envelope_from, recipients=recipients,
            primary_recipient=recipients[0] if recipients else "", message_id=message_id, raw=raw,
            status="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))
        return True


def _due(now: dt.datetime) -> Select[Outbox, str]:
    # The case's reference comes with the row: no query per claim.
    return (
        select(Outbox, Case.reference).outerjoin(Case, Case.id == Outbox.case_id)
        .where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
        .order_by(Outbox.next_attempt_at, Outbox.id)
    )


def _item(row: Outbox, reference: str | None) -> OutboxItem:
    return OutboxItem(row.id, row.key, row.kind, row.envelope_from, tuple(row.recipients), row.message_id,
                      row.raw, row.attempts, reference, row.case_id)


# Built once: the statement every delivered mail runs (no construct and cache key to build per mail).
_SENT = (update(Outbox).where(Outbox.id == bindparam("row"))
         .values(status="sent", sent_at=bindparam("at"), attempts=Outbox.attempts + 1, claimed_until=None,
                 last_error=None)
         .execution_options(synchronize_session=False))

Sessions = Callable[[], AbstractContextManager[Session]]
OneStatement = Callable[[], AbstractContextManager[Connection]]


class Claim:
    """One claimed outbox row and the three ways its attempt can end, written in the claiming transaction on
    PostgreSQL and in a short one of its own on SQLite (`sent`: one UPDATE in SQLite's autocommit mode)."""

    def __init__(self, sessions: Sessions, session: Session | None, item: OutboxItem,
                 one_statement: OneStatement | None = None) -> None:
        self._sessions, self._session, self.item = sessions, session, item
        self._one_statement = one_statement

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        if self._session is not None:
            yield self._session
        else:
            with self._sessions() as session:
                yield session

    def _update(self, session: Session, **values: Any) -> None:
        session.execute(
            update(Outbox).where(Outbox.id == self.item.id)
            .values(attempts=Outbox.attempts + 1, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )

    def _event(self, session: Session, at: dt.datetime, outcome: str, **detail: Any) -> None:
        if self.item.case_id is not None:
            session.add(Event(case_id=self.item.case_id, at=at, kind=f"{self.item.kind}.{outcome}",
                              detail={"key": self.item.key, **detail}))

    def sent(self, now: dt.datetime) -> None:
        """Sent: the row says so (status, `sent_at`), and that is the case's record of it (`cases show` lists it
        among the events as `<kind>.sent`): no audit row of its own, one statement per mail."""
        params = {"row": self.item.id, "at": now}
        if self._session is None and self._one_statement is not None:
            with self._one_statement() as conn:
                conn.execute(_SENT, params)
            return
        with self._tx() as session:
            session.execute(_SENT, params)

    def retry(self, now: dt.datetime, next_at: dt.datetime, error: str) -> None:
        with self._tx() as session:
            self._update(session, next_attempt_at=next_at, last_error=error[:2000])

    def failed(self, now: dt.datetime, error: str) -> None:
        with self._tx() as session:
            self._update(session, status="failed", last_error=error[:2000])
            self._event(session, now, "failed", error=error[:2000])


class Claims:
    """The deliver job's side of the outbox, for one process."""

    def __init__(self, sessions: Sessions, is_sqlite: bool, one_statement: OneStatement | None = None) -> None:
        self._sessions, self._is_sqlite, self._one_statement = sessions, is_sqlite, one_statement
        self._leased: deque[OutboxItem] = deque()

    @contextmanager
    def next(self, now: dt.datetime, lease: dt.timedelta) -> Iterator[Claim | None]:
        """Claim the next due row for this process, or None when nothing is due."""
        if not self._is_sqlite:
            with self._sessions() as session:
                found = session.execute(_due(now).limit(1).with_for_update(skip_locked=True, of=Outbox)).first()
                yield Claim(self._sessions, session, _item(found[0], found[1])) if found is not None else None
            return
        if not self._leased:
            with self._sessions() as session:
                rows = list(session.execute(
                    _due(now).where((Outbox.claimed_until.is_(None)) | (Outbox.claimed_until <= now)).limit(20)
                ))
                for found in rows:
                    found[0].claimed_until = now + lease
                self._leased.extend(_item(found[0], found[1]) for found in rows)
        yield Claim(self._sessions, None, self._leased.popleft(), self._one_statement) if self._leased else None

    def release_leased(self) -> None:
        """Give back leases this process took but did not attempt (the tick ended early)."""
        ids = [item.id for item in self._leased]
        self._leased.clear()
        if ids:
            with self._sessions() as session:
                session.execute(update(Outbox).where(Outbox.id.in_(ids)).values(claimed_until=None))

    def release_all(self) -> None:
        """Single-instance start-up (SQLite): leases left by a crashed run are ours, take them back now."""
        with self._sessions() as session:
            session.execute(
                update(Outbox).where(Outbox.status == "pending", Outbox.claimed_until.is_not(None))
                .values(claimed_until=None)
            )

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(select(Outbox.status, func.count()).group_by(Outbox.status))
            return {status: int(n) for status, n in rows}
