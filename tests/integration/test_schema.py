"""The Alembic migrations produce exactly the schema the models declare, on SQLite and on PostgreSQL.

Alembic's own autogenerate comparison (`compare_metadata`) is run between the models' metadata and a database
upgraded from empty: any table, column, type, nullability, index or unique constraint that one has and the
other lacks is a difference, and the test fails naming it.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from casebot.store import Base, Store


def _differences(store: Store) -> list[object]:
    with store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_the_models(db_url: str) -> None:
    store = Store(db_url)
    try:
        assert store.revision() is None
        store.upgrade()
        assert store.revision() == store.head()
        assert _differences(store) == []
    finally:
        store.close()


def test_the_comparison_sees_a_difference(db_url: str) -> None:
    """The check above can fail: a column the migrations never created is reported."""
    from sqlalchemy import Column, Integer, MetaData, Table

    store = Store(db_url)
    try:
        store.upgrade()
        extra = MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(extra)
        Table("cases", extra, Column("not_migrated", Integer), extend_existing=True)
        with store.db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), extra)
        assert any("not_migrated" in repr(d) for d in diffs)
    finally:
        store.close()
