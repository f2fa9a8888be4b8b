"""Retention on SQLite and PostgreSQL: raw mail and attachment data of closed cases purged after their days, closed
cases deleted after theirs, never more than `retention.batch` rows a run, every run audited, a dry run changing
nothing, open cases untouched; and the CLI's `retention run`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cbtest import make_mail, quiet_logs
from sqlalchemy import select
from test_privacy import ATTACHED, DANA, ERIN, T0, at, settings_for, snapshot

from casebot import housekeeping
from casebot.case import Status
from casebot.passes import ingest_one, poll
from casebot.service import Admin
from casebot.store import Store
from casebot.store.schema import AttachmentRow, Case, Message, Outbox

DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


def close(settings: object, reference: str, when: dt.datetime) -> None:
    from casebot.jobs.update import update_case

    admin = Admin.open(settings)  # type: ignore[arg-type]
    try:
        assert update_case(admin.store, admin.deps.clocks, reference, when, status=Status.CLOSED) is not None
    finally:
        admin.close()


def test_retention_is_bounded_audited_and_keeps_open_cases(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path, retention={"raw_days": 30, "attachments_days": 30,
                                                         "closed_case_days": 365, "batch": 2})
    mails = [ATTACHED,
             make_mail(DANA, "Re: Printer on fire", message_id="dana-2@client.example",
                       in_reply_to="dana-1@client.example"),
             make_mail(DANA, "Re: Printer on fire", message_id="dana-3@client.example",
                       in_reply_to="dana-1@client.example"),
             make_mail(ERIN, "Second", message_id="erin-1@other.example"),
             make_mail(ERIN, "Still open", message_id="erin-2@other.example")]
    for i, raw in enumerate(mails):
        assert ingest_one(settings, raw, now=at(T0 + i * dt.timedelta(minutes=1))).status in ("opened", "threaded")
    close(settings, "CASE-000001", T0 + dt.timedelta(hours=1))
    close(settings, "CASE-000002", T0 + dt.timedelta(hours=1))
    late = make_mail(ERIN, "Re: Second", message_id="erin-3@other.example", in_reply_to="erin-1@other.example")
    assert ingest_one(settings, late, now=at(T0 + dt.timedelta(hours=2))).reference == "CASE-000004"  # linked
    poll(settings, now=at(T0 + dt.timedelta(hours=3)))  # delivered: sent mail is purged, pending mail never
    store = Store(db_url)
    try:
        when = T0 + 40 * DAY
        before = snapshot(store)
        dry = housekeeping.retention(settings, "tester", dry_run=True, now=at(when))
        assert snapshot(store) == before and dry.raw_messages == 2 and dry.more
        runs = [housekeeping.retention(settings, "tester", dry_run=False, now=at(when)) for _ in range(3)]
        assert [r.raw_messages for r in runs] == [2, 2, 0]  # 4 messages on closed cases, 2 a run
        assert runs[0].more and not runs[2].more
        assert runs[0].attachments == 1 and runs[0].cases_deleted == []
        with store.transaction() as tx:
            s = tx.session
            closed = {c.id for c in s.scalars(select(Case).where(Case.status == "closed"))}
            for m in s.scalars(select(Message)):
                if m.case_id in closed:
                    assert m.raw == b"" and m.purged_at == when and m.body_text  # the text stays
                else:
                    assert m.raw and m.purged_at is None  # open cases keep everything
            (att,) = s.scalars(select(AttachmentRow)).all()
            assert att.data == b"" and att.size == 5 and att.filename == "photo.bin"
            purged = [o.raw == b"" for o in s.scalars(select(Outbox).where(Outbox.case_id.in_(closed)))]
            assert purged and all(purged)
            logs = tx.admin_entries("retention.run")
        assert len(logs) == 3 and [e["raw_messages"] for e in logs] == [2, 2, 0] and logs[0]["more"] is True
        assert logs[0]["actor"] == "tester"
        detail = store.case_detail("CASE-000001")
        assert detail is not None and any(e["kind"] == "retention.purged" for e in detail["events"])
        assert {m["size"] for m in detail["messages"]} == {0}

        gone = housekeeping.retention(settings, "tester", dry_run=False, now=at(T0 + 400 * DAY))
        assert gone.cases_deleted == ["CASE-000001", "CASE-000002"] and gone.rows_deleted["messages"] == 4
        assert [c.reference for c in store.list_cases()] == ["CASE-000003", "CASE-000004"]
        assert {c.reference: c.linked_to for c in store.list_cases()}["CASE-000004"] is None
        with store.transaction() as tx:
            assert {m.message_id for m in tx.session.scalars(select(Message))} == {
                "erin-2@other.example", "erin-3@other.example"}
            assert len(tx.admin_entries("retention.run")) == 4
    finally:
        store.close()


def test_retention_off_by_default_and_through_the_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "casebot.toml"
    base = (f'[mailbox]\nkind = "pipe"\n[outgoing]\nkind = "maildir"\npath = "sent"\n'
            f'[database]\nurl = "sqlite:///{tmp_path}/casebot.db"\n[logging]\nlevel = "error"\n')
    cfg.write_text(base, encoding="utf-8")
    cmd = [sys.executable, "-m", "casebot", "--config", str(cfg), "retention", "run"]
    off = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert off.returncode == 0 and "retention is off" in off.stdout
    cfg.write_text(base + "[retention]\nraw_days = 1\n", encoding="utf-8")
    on = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, timeout=60, check=False)
    assert on.returncode == 0 and "would purge" in on.stdout, on.stderr
    cfg.write_text(base + "[retention]\nraw_days = -1\n", encoding="utf-8")
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 78 and "retention.raw_days" in bad.stderr


def test_the_daemon_schedules_the_daily_purge_only_when_retention_is_on(db_url: str, tmp_path: Path) -> None:
    from casebot.daemon import Daemon

    off = Daemon(settings_for(db_url, tmp_path))
    try:
        assert "retention" not in off.jobs()
    finally:
        off.runtime.close()
    daemon = Daemon(settings_for(db_url, tmp_path, retention={"raw_days": 7}), now=at(T0))
    try:
        run, every = daemon.jobs()["retention"]
        assert every == 86400.0
        run()  # one tick, as the scheduler would
        with daemon.runtime.store.transaction() as tx:
            (log,) = tx.admin_entries("retention.run")
        assert log["actor"] == "casebot retention" and log["raw_days"] == 7 and log["more"] is False
    finally:
        daemon.runtime.close()
