"""Database backups: a consistent copy of the whole database while casebot runs (`casebot db backup FILE`).

Owns the two ways: SQLite through sqlite3's online backup API (a page-by-page copy that sees one committed state,
safe while the daemon writes; the copy is an ordinary SQLite file, restored by copying it back with casebot
stopped), PostgreSQL through `pg_dump --format=custom` (restored with `pg_restore`), the password handed over in
the environment, never on the command line. Must not change the database or know any table.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from casebot.store.engine import StoreError


class BackupError(StoreError):
    """Raised when a backup cannot be made (target not writable, pg_dump missing or failing)."""


def backup(url: str, target: Path) -> str:
    """Write a backup of the database at `url` to `target`; returns how it was made."""
    parsed = make_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "sqlite":
        source = parsed.database or ""
        if not source or source == ":memory:":
            raise BackupError("database.url: an in-memory SQLite database cannot be backed up")
        if not Path(source).exists():
            raise BackupError(f"database.url: {source} does not exist")
        tmp = target.with_name(target.name + ".partial")
        try:
            tmp.unlink(missing_ok=True)
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            try:
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst, pages=1024)  # in steps: the daemon's writers are not held up for long
                finally:
                    dst.close()
            finally:
                src.close()
            os.replace(tmp, target)
        except (sqlite3.Error, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise BackupError(f"SQLite backup to {target} failed: {exc}") from exc
        return "sqlite3 online backup"
    if parsed.get_backend_name() != "postgresql":
        raise BackupError(f"database.url: no backup method for {parsed.get_backend_name()}")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump not found on PATH (install the PostgreSQL client tools)")
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--file", str(target), "--dbname", plain],
                          env=env, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed ({done.returncode}): {' '.join(done.stderr.split())}")
    return "pg_dump --format=custom"
