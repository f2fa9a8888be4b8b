"""The Alembic migrations produce exactly the schema the models declare, on SQLite and on PostgreSQL.

Alembic's own autogenerate comparison (`compare_metadata`) is run between the models' metadata and a database
upgraded from empty: any table, column, type, nullability, index or unique constraint that one has and the
other lacks is a difference, and the test fails naming it.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from casebot.store import Base, Store
from casebot.store.engine import SCHEMA_HEAD


def _differences(store: Store) -> list[object]:
    with store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return list(compare_metadata(context, Base.metadata))


def _seeded(store: Store) -> list[tuple[str, int]]:
    from sqlalchemy import text

    with store.db.engine.connect() as conn:
        return [(str(n), int(v)) for n, v in conn.execute(text("SELECT name, value FROM counters ORDER BY name"))]


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic import command

    store = Store(db_url)
    try:
        assert store.revision() is None and store.db.stamped() is None
        command.upgrade(store.db.alembic_config(), "head")  # every migration, from an empty database
        assert store.revision() == store.head()
        assert _differences(store) == []
        assert _seeded(store) == [("case", 0)]
        # The start-up check reads the stamp without Alembic: the constant it compares with is Alembic's head.
        assert store.db.stamped() == store.head() == SCHEMA_HEAD
    finally:
        store.close()


def test_a_new_database_gets_the_models_schema_stamped_at_head(db_url: str) -> None:
    """`upgrade` on an empty database creates the schema from the models (no migrations run): the same schema the
    migrations give (the test above), stamped so Alembic takes it from there."""
    store = Store(db_url)
    try:
        assert store.upgrade() == SCHEMA_HEAD
        assert store.revision() == store.head()  # Alembic reads the stamp
        assert _differences(store) == []
        assert _seeded(store) == [("case", 0)]  # the rows the migrations seed, too
        assert store.upgrade() == SCHEMA_HEAD  # and the next start finds it at head
    finally:
        store.close()


def test_a_database_at_head_is_upgraded_without_loading_alembic(sqlite_url: str, tmp_path: object) -> None:
    import subprocess
    import sys

    Store(sqlite_url).upgrade()
    code = ("import sys; from casebot.store import Store; s = Store(sys.argv[1]); print(s.upgrade()); "
            "print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, sqlite_url], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [SCHEMA_HEAD, "False"], out.stderr


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
