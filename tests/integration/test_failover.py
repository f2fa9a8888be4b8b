"""Several `casebot run` on one PostgreSQL database: one holds the mailbox, all deliver; kill -9 the holder.

The holder is killed with SIGKILL while it is working through the mailbox; the other instance takes the mailbox over
(its advisory lock went with the dead process's connection) within 30 s, and the result is still every message in
exactly one case and every acknowledgement sent once (a resend only if a kill lands between the server's 250 and
the commit of "sent", and then with the same Message-ID).
"""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

import sqlalchemy as sa
from corpus import CASELESS_KINDS, generate
from daemons import (
    drained,
    events,
    no_daemon_outlives_its_test,  # noqa: F401  (autouse fixture: every daemon a test starts is stopped)
    start_daemon,
    stop,
    wait_until,
    write_config,
)
from servers import ImapAccount, SmtpSink

from casebot.store import Store


def _started(log: Path) -> dict[str, object] | None:
    return next((e for e in events(log) if e.get("event") == "daemon.started"), None)


def test_second_instance_takes_the_mailbox_over_after_kill_9(
    tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, postgres_url: str
) -> None:
    samples = generate(600, seed=11)  # enough that the kill lands mid-drain however fast batches go
    client = imap_account.connect()
    for s in samples:
        client.append("INBOX", s.raw)
    client.logout()
    config = write_config(tmp_path, imap_account, smtp_sink, postgres_url, mailbox="batch_size = 5\n")
    store = Store(postgres_url)
    store.upgrade()
    watcher = sa.create_engine(postgres_url)

    def cases_now() -> int:
        with watcher.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM cases")).scalar() or 0)

    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    try:
        a = start_daemon(config, log_a)
        wait_until(lambda: _started(log_a) is not None, 30, "instance A to start")
        assert (_started(log_a) or {}).get("leader") is True
        b = start_daemon(config, log_b)
        wait_until(lambda: _started(log_b) is not None, 30, "instance B to start")
        assert (_started(log_b) or {}).get("leader") is False, "only one instance holds the mailbox"

        total_cases = sum(1 for s in samples if s.kind != "reply" and s.kind not in CASELESS_KINDS)
        wait_until(lambda: cases_now() >= 20, 60, "A to open 20 cases", step=0.005)
        a.kill()  # SIGKILL, mid-work
        a.wait(timeout=10)
        killed_at, at_kill = time.monotonic(), cases_now()
        assert at_kill < total_cases, "the kill landed while there was mailbox work left"

        wait_until(lambda: any(e.get("event") == "mailbox.leader_acquired" for e in events(log_b)), 30,
                   "instance B to take the mailbox over")
        takeover_s = time.monotonic() - killed_at
        print(f"killed A at {at_kill} of {total_cases} cases; B took the mailbox over after {takeover_s:.1f} s")

        wait_until(lambda: drained(imap_account, store), 90, "B to drain the mailbox and the outbox")
        assert stop(b) == 0
        with store.transaction() as tx:
            from sqlalchemy import func, select

            from casebot.store.schema import Message, Outbox  # test-only: read the tables directly

            stored = tx.session.scalar(select(func.count()).select_from(Message))
            distinct = tx.session.scalar(select(func.count(func.distinct(Message.dedupe_key))))
            acks = list(tx.session.execute(select(Outbox.message_id, Outbox.case_id, Outbox.status)))
        cases = store.list_cases()
    finally:
        watcher.dispose()
        store.close()
    assert stored == distinct == len(samples), "every message stored exactly once"
    assert sum(c.message_count for c in cases) == len(samples) - sum(1 for s in samples if s.kind in CASELESS_KINDS)
    assert all(status == "sent" for _, _, status in acks)
    assert len({case_id for _, case_id, _ in acks}) == len(acks), "one acknowledgement per case at most"
    assert len(acks) == sum(1 for s in samples if not s.automated and s.kind != "reply")
    delivered = [
        email.message_from_bytes(m.content, policy=email.policy.compat32)["Message-ID"].strip("<> ")
        for m in smtp_sink.messages
    ]
    assert set(delivered) == {mid for mid, _, _ in acks}
    assert len(delivered) - len(set(delivered)) <= 1, "at most the one mail in flight at the kill went twice"


def test_leader_lock_lost_with_its_connection_is_noticed_and_taken_again(postgres_url: str) -> None:
    """A database restart or failover ends the lock's connection, and the lock with it: the holder must notice
    (it would otherwise go on as a second holder once another instance took the lock) and may take it again."""
    first, second = Store(postgres_url), Store(postgres_url)
    try:
        assert first.acquire_leader("casebot-mailbox:test")
        assert first.holds_leader()
        assert not second.acquire_leader("casebot-mailbox:test"), "one holder at a time"
        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:  # what a server restart does to every session: terminate it
            killed = conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid <> pg_backend_pid() "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )).scalar()
            conn.commit()
        engine.dispose()
        assert killed == 1
        assert not first.holds_leader(), "the lost lock is noticed"
        assert second.acquire_leader("casebot-mailbox:test"), "and free for another instance"
        assert not first.acquire_leader("casebot-mailbox:test")
        assert second.holds_leader()
    finally:
        first.close()
        second.close()
