"""Backup and restore (README, "Backup and restore"): `casebot db backup FILE`, restored into a fresh database, gives
the same cases and byte-identical raw mail. SQLite: the online backup API, restored by copying the file; PostgreSQL:
pg_dump --format=custom, restored with pg_restore into a new database (when the client tools are installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cbtest import quiet_logs
from servers import PostgresDatabase
from sqlalchemy import select
from sqlalchemy.engine import make_url
from test_privacy import populate, settings_for

from casebot.store import Store
from casebot.store.schema import AttachmentRow, Message, Outbox


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


def contents(url: str) -> dict[str, Any]:
    store = Store(url)
    try:
        revision = store.revision()
        with store.transaction() as tx:
            s = tx.session
            return {
                "cases": [c.as_json() for c in tx.case_summaries()],
                "raw": [(m.message_id, bytes(m.raw)) for m in s.scalars(select(Message).order_by(Message.id))],
                "attachments": [bytes(a.data) for a in s.scalars(select(AttachmentRow).order_by(AttachmentRow.id))],
                "outbox": [(o.key, bytes(o.raw)) for o in s.scalars(select(Outbox).order_by(Outbox.id))],
                "revision": revision,
            }
    finally:
        store.close()


def test_backup_and_restore_give_identical_cases_and_raw_bytes(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path)
    populate(settings)
    cfg = tmp_path / "casebot.toml"
    cfg.write_text(f'[mailbox]\nkind = "pipe"\n[database]\nurl = "{db_url}"\n[logging]\nlevel = "error"\n',
                   encoding="utf-8")
    target = tmp_path / "backups" / "casebot.backup"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if not db_url.startswith("sqlite") and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    done = subprocess.run([sys.executable, "-m", "casebot", "--config", str(cfg), "db", "backup", str(target)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    original = contents(db_url)
    assert original["raw"] and original["attachments"] and original["outbox"]
    if db_url.startswith("sqlite"):
        restored = tmp_path / "restored.db"
        shutil.copyfile(target, restored)  # restore = put the file back, casebot stopped
        assert contents(f"sqlite:///{restored}") == original
        return
    fresh = PostgresDatabase(make_url(db_url).set(database="postgres").render_as_string(hide_password=False))
    fresh.create()
    try:
        plain = make_url(fresh.url).set(drivername="postgresql").render_as_string(hide_password=False)
        restore = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--dbname", plain, str(target)],
                                 capture_output=True, text=True, timeout=300, check=False)
        assert restore.returncode == 0, restore.stderr
        assert contents(fresh.url) == original
    finally:
        fresh.drop()


def test_backup_of_a_missing_sqlite_database_fails_cleanly(tmp_path: Path) -> None:
    cfg = tmp_path / "casebot.toml"
    cfg.write_text(f'[mailbox]\nkind = "pipe"\n[database]\nurl = "sqlite:///{tmp_path}/none.db"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "casebot", "--config", str(cfg), "db", "backup",
                           str(tmp_path / "b.db")], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1 and "does not exist" in done.stderr
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "none.db").exists()
