"""Alembic environment: runs migrations on the engine casebot's store hands over (never a URL from an ini file).

Several instances may start together on a fresh PostgreSQL database: a session advisory lock makes them take
turns, so the first one migrates and the others find the schema at head. (SQLite transactions already begin
IMMEDIATE, which serialises them.)
Must not import casebot's application code beyond the schema, or read a URL of its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from casebot.store.schema import MIGRATION_LOCK, Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    locked = connection.dialect.name == "postgresql"
    if locked:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables instead
            compare_type=True,
            # SQLite can run DDL in a transaction; saying so makes Alembic open one, which casebot's engine begins
            # IMMEDIATE: a second process starting at the same moment waits, then finds the schema at head (without
            # it each statement autocommits and two processes can both apply the same revision).
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if locked:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()
