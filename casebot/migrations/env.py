"""Alembic environment: runs migrations on the engine casebot's store hands over (never a URL from an ini file)."""

from __future__ import annotations

from alembic import context

from casebot.store import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables instead
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
