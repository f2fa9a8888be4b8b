"""The database engine: connections, transactions, schema upgrades and the mailbox leader lock.

Owns how a transaction starts on each engine (SQLite: WAL, `BEGIN IMMEDIATE`, a busy timeout, one instance;
PostgreSQL: pooled connections with pre-ping, several instances), the translation of SQLAlchemy's exceptions into
the store's own (`StoreUnavailable`, `DuplicateMessage`, `StoreError`), Alembic upgrades, and the advisory lock that
lets one instance hold the mailbox. Must not know any table but through the schema, or decide anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from sqlalchemy import create_engine, event, insert, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from casebot.store.schema import MIGRATION_LOCK, Base, Counter


class StoreError(Exception):
    """Base of the store's errors: something about the database, never about a message."""


class StoreUnavailable(StoreError):
    """Raised when the database cannot take the work now (unreachable, locked, gone): not the message's fault,
    so it is not counted as a failed attempt; the MTA pipe answers EX_TEMPFAIL and the mailbox loop ends the tick."""


class DuplicateMessage(StoreError):
    """Raised when a message with the same dedupe key was committed by someone else first (a concurrent instance):
    the message is stored once, which is what the caller wanted."""


# The newest migration in casebot/migrations/versions (a test keeps this equal to Alembic's own head).
SCHEMA_HEAD = "0005"


class BadDatabaseUrl(StoreError):
    """Raised for a `database.url` SQLAlchemy cannot read, or whose driver is not installed."""


def _orig(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig) if orig is not None else str(exc)


@contextmanager
def translated() -> Iterator[None]:
    """SQLAlchemy's exceptions in the store's terms, so no caller reasons in SQLAlchemy classes."""
    try:
        yield
    except IntegrityError as exc:
        if "dedupe_key" in str(exc.orig):
            raise DuplicateMessage(_orig(exc)) from exc
        raise StoreError(_orig(exc)) from exc
    except OperationalError as exc:
        raise StoreUnavailable(_orig(exc)) from exc
    except SQLAlchemyError as exc:
        raise StoreError(_orig(exc)) from exc


def _wal(cur: Any) -> None:
    """Switch the file to WAL once. Changing the journal mode needs the file to itself, and SQLite answers "database
    is locked" at once (no busy wait) while another process is creating or migrating it: try again a few times."""
    import sqlite3
    import time

    for attempt in range(100):
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)  # bounded: 5 s in all, while the other process finishes its transaction


def _share_with_group(path: str | None) -> None:
    """A database file in a directory shared with a group (group-writable, not world-writable: the shipped layout's
    /var/lib/casebot 2770 casebot:casebot, the MTA's pipe user in that group) is made group read-write, whoever
    created it and whatever the umask (SQLite creates 0644 less the umask); SQLite gives -wal and -shm the
    database file's mode. Only files this process owns; anything else is left as it is."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with contextlib.suppress(OSError):
        folder = os.stat(os.path.dirname(os.path.abspath(path))).st_mode
        if not folder & 0o020 or folder & 0o002:
            return
        for name in (path, f"{path}-wal", f"{path}-shm"):
            st = os.stat(name) if os.path.exists(name) else None
            if st is not None and st.st_uid == os.geteuid() and st.st_mode & 0o060 != 0o060:
                os.chmod(name, (st.st_mode & 0o7777) | 0o060)


def _sqlite_setup(engine: Engine) -> None:
    path = engine.url.database

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below emit BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN, so a writer
        # takes the lock up front and concurrent writers wait (busy_timeout) instead of failing mid-transaction.
        dbapi_conn.isolation_level = None
        _share_with_group(path)  # before WAL mode creates -wal/-shm with the file's mode
        cur = dbapi_conn.cursor()
        _wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if not conn.get_execution_options().get(_ONE_STATEMENT):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


# Execution option of `Database.one_statement` connections: on SQLite no BEGIN, the statement is its own transaction.
_ONE_STATEMENT = "casebot_one_statement"


class Database:
    """One engine and its sessions. Nothing connects until the first transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine = create_engine(url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise BadDatabaseUrl(str(exc)) from exc
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._leader_conn: Connection | None = None

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back if it raises."""
        with translated(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A connection for one write that is a transaction by itself. On SQLite no BEGIN is sent: the statement
        runs in SQLite's autocommit mode, as durable as a committed transaction (one statement instead of
        three). On PostgreSQL an ordinary transaction (psycopg's BEGIN is not a statement of its own)."""
        with translated(), self.engine.connect() as conn:
            conn = conn.execution_options(**{_ONE_STATEMENT: True})
            yield conn
            conn.commit()

    def close(self) -> None:
        if self._leader_conn is not None:
            self._leader_conn.close()
            self._leader_conn = None
        self.engine.dispose()

    def acquire_leader(self, name: str) -> bool:
        """One instance per mailbox. PostgreSQL: a session advisory lock held on a dedicated connection for the
        life of the process (the server releases it if the process dies). SQLite serves one instance."""
        if self.is_sqlite or self._leader_conn is not None:
            return True
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with translated():
            conn = self.engine.connect()
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
        if got:
            self._leader_conn = conn
        else:
            conn.close()
        return got

    def holds_leader(self) -> bool:
        """Whether the leader lock is still ours. The lock lives and dies with its connection: after a database
        restart or failover that connection is gone, and so is the lock (another instance may hold it now). One
        round trip on the dedicated connection tells; a dead one is dropped, so `acquire_leader` can try again."""
        if self.is_sqlite:
            return True
        if self._leader_conn is None:
            return False
        try:
            self._leader_conn.execute(text("SELECT 1"))
            self._leader_conn.commit()
            return True
        except Exception:  # any driver error here means the connection, and with it the lock, is gone
            with contextlib.suppress(Exception):
                self._leader_conn.invalidate()
                self._leader_conn.close()
            self._leader_conn = None
            return False

    # -- schema --

    def alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("casebot.migrations")))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self) -> str | None:
        """Apply every Alembic migration up to head; returns the revision now applied. A database already at head
        (every start but the first after an upgrade) is seen with one query, without loading Alembic (about 10 MB
        of the process's memory)."""
        found = self.stamped()
        if found == SCHEMA_HEAD or (found is None and self._create()):
            return SCHEMA_HEAD
        from alembic import command

        with translated():
            command.upgrade(self.alembic_config(), "head")
        return self.revision()

    def _create(self) -> bool:
        """A database with no tables at all gets the schema straight from the models, stamped at head, in one
        transaction (Alembic's recipe for a new database, without loading Alembic); False when it has tables
        (Alembic then decides). The test suite checks the migrations and the models give the same schema."""
        with translated(), self.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, so starters take turns
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            if inspect(conn).get_table_names():
                return False
            Base.metadata.create_all(conn)
            conn.execute(insert(Counter), [{"name": "case", "value": 0}])  # what migration 0001 seeds
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                              "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": SCHEMA_HEAD})
        return True

    def stamped(self) -> str | None:
        """The revision recorded in `alembic_version`, read directly; None when there is none (a new database)."""
        with translated(), self.engine.connect() as conn:
            if not self.engine.dialect.has_table(conn, "alembic_version"):
                return None
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            return str(found[0]) if len(found) == 1 else None

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with translated(), self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()
