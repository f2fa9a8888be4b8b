"""Storage: the one facade over the database (the only importer of sqlalchemy and alembic, with migrations/).

`Store` opens transactions (`Tx`) and runs the outbox claims; `Tx` is one transaction's worth of operations,
grouped by aggregate: `cases` (references, cases, participants, audit, life-cycle transitions), `intake` (messages,
failures, quarantine, the pipeline's look-ups), `outbox` (queue and claims), `reports` (CLI read models). The
schema lives in `schema`, engines and transactions in `engine`. Callers see the store's own exceptions
(`StoreError`, `StoreUnavailable`, `DuplicateMessage`, `BadDatabaseUrl`) and typed records, never SQLAlchemy's.
Must not decide anything about mail, send mail or talk to IMAP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from casebot.store.backup import BackupError, backup
from casebot.store.batch import BatchKeys, BatchTx
from casebot.store.engine import BadDatabaseUrl, Database, DuplicateMessage, StoreError, StoreUnavailable
from casebot.store.kept import KeptAttachment, KeptMessage, QuarantineItem
from casebot.store.outbox import Claim, Claims
from casebot.store.privacy import SubjectData
from casebot.store.records import CaseSummary, ClockRecord, MessageRecord, NewCase, OutboxItem
from casebot.store.schema import Base
from casebot.store.stats import StoreStats, read_stats
from casebot.store.tx import Tx

__all__ = [
    "BackupError",
    "BadDatabaseUrl",
    "Base",
    "BatchKeys",
    "BatchTx",
    "CaseSummary",
    "Claim",
    "ClockRecord",
    "DuplicateMessage",
    "KeptAttachment",
    "KeptMessage",
    "MessageRecord",
    "NewCase",
    "OutboxItem",
    "QuarantineItem",
    "Store",
    "StoreError",
    "StoreStats",
    "StoreUnavailable",
    "SubjectData",
    "Tx",
]


class Store:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.url = url
        self.is_sqlite = self.db.is_sqlite
        self.claims = Claims(self._session, self.is_sqlite, self.db.one_statement)

    def _session(self) -> AbstractContextManager[Session]:
        return self.db.session()

    @property
    def display_url(self) -> str:
        return self.db.display_url

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction; store exceptions only (StoreUnavailable when the database cannot take it now)."""
        with self.db.session() as session:
            yield Tx(session)

    @contextmanager
    def batch(self, keys: BatchKeys) -> Iterator[BatchTx]:
        """One transaction for several messages (`casebot.store.batch`): the look-ups answered from a few queries
        made up front for `keys`, the writes inserted together at the commit."""
        with self.db.session() as session:
            tx = BatchTx(session, keys)
            yield tx
            tx.finish()

    def close(self) -> None:
        self.db.close()

    def acquire_leader(self, name: str) -> bool:
        return self.db.acquire_leader(name)

    def holds_leader(self) -> bool:
        return self.db.holds_leader()

    def upgrade(self) -> str | None:
        return self.db.upgrade()

    def revision(self) -> str | None:
        return self.db.revision()

    def head(self) -> str | None:
        return self.db.head()

    def backup(self, target: Path) -> str:
        """A consistent copy of the whole database in `target` (`casebot.store.backup`); says how it was made."""
        return backup(self.url, target)

    # -- the outbox, for the deliver job --

    def claim_next(self, now: dt.datetime, lease: dt.timedelta) -> AbstractContextManager[Claim | None]:
        return self.claims.next(now, lease)

    def outbox_release_leased(self) -> None:
        self.claims.release_leased()

    def outbox_release_all(self) -> None:
        self.claims.release_all()

    def outbox_counts(self) -> dict[str, int]:
        return self.claims.counts()

    def stats(self) -> StoreStats:
        """Counts for metrics and health (`casebot.store.stats`): a few cheap queries, read-only."""
        with self.transaction() as tx:
            return read_stats(tx.session)

    # -- read models, for the CLI --

    def canonical_reference(self, text: str) -> str | None:
        with self.transaction() as tx:
            return tx.canonical_reference(text)

    def list_cases(self, status: str | None = None, now: dt.datetime | None = None) -> list[CaseSummary]:
        with self.transaction() as tx:
            return tx.case_summaries(status=status, now=now)

    def case_detail(self, reference: str, now: dt.datetime | None = None) -> dict[str, Any] | None:
        with self.transaction() as tx:
            return tx.case_detail(reference, now)
