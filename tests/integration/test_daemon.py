"""End to end: the real `casebot` command in a subprocess against Dovecot and the SMTP sink.

Covers the daemon (IDLE push, SIGTERM, reconnect after a dropped connection), the crash test (kill -9 in the
middle, restart: nothing lost, nothing twice), the MTA pipe and the admin commands.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from corpus import CASELESS_KINDS, generate
from daemons import (
    CASEBOT,
    cases_json,
    drained,
    env,
    events,
    idles,
    no_daemon_outlives_its_test,  # noqa: F401  (autouse fixture: every daemon a test starts is stopped)
    start_daemon,
    stop,
    wait_until,
    write_config,
)
from servers import ImapAccount, SmtpSink

from casebot.store import Store


def message(n: int, sender: str = "alice@client.example", subject: str = "Printer on fire") -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: support@example.com\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <daemon-{n}-{time.time_ns()}@client.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        f"\r\nIt does not print. {n}\r\n"
    ).encode()


def test_daemon_idle_push_sigterm_and_reconnect(
    tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, sqlite_url)
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, log)
    try:
        # In IDLE: the poll interval is 30 s, so only IDLE can wake it in time.
        wait_until(lambda: idles(log) >= 1, 20, "the daemon to enter IDLE")
        imap_account.append(message(1))
        assert smtp_sink.wait_for(1, timeout=15), "IDLE did not wake the daemon"
        ack = email.message_from_bytes(smtp_sink.messages[0].content, policy=email.policy.default)
        assert ack["Subject"].startswith("[CASE-000001] Printer on fire 1")
        assert ack["Auto-Submitted"] == "auto-replied"

        # Drop the server side of the IDLE connection: imapclient's idle_check() then returns [] forever.
        idled = idles(log)
        for pid in imap_account.server.imap_processes():
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: any(e.get("event") == "mailbox.unavailable" for e in events(log)), 20,
                   "the daemon to notice the dropped connection")
        wait_until(lambda: idles(log) > idled, 30, "the daemon to reconnect and IDLE again")
        imap_account.append(message(2))
        assert smtp_sink.wait_for(2, timeout=30), "daemon did not reconnect after the dropped connection"
        assert proc.poll() is None
    finally:
        rc = stop(proc)
    assert rc == 0
    names = [e.get("event") for e in events(log)]
    assert "mailbox.unavailable" in names  # the drop was noticed, not silently busy-looped
    assert names.count("case.opened") == 2
    assert names[-1] == "daemon.stopped"
    for e in events(log):  # logs never carry bodies or passwords
        assert "secret" not in json.dumps(e)
        assert "It does not print" not in json.dumps(e)


def test_kill_9_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str
) -> None:
    sqlite_url = db_url  # both engines: SQLite (one instance) and PostgreSQL (leases, advisory lock)
    samples = generate(120, seed=7)
    client = imap_account.connect()
    for s in samples:
        client.append("INBOX", s.raw)
    client.logout()
    config = write_config(tmp_path, imap_account, smtp_sink, sqlite_url, mailbox="batch_size = 10\n")
    log = tmp_path / "daemon.log"
    rng = random.Random(42)
    kills = 0
    progress: list[int] = []
    store = Store(sqlite_url)
    store.upgrade()  # as `casebot db upgrade` would: the test counts cases from the first moment on
    try:
        # Kill -9 at random moments while the daemon works through the mailbox, then let it finish.
        # Kill -9 four times, each as soon as the daemon has stored a few more cases (a random number): the
        # kills land in the middle of the work however fast or slow the machine is, then it finishes.
        total_cases = sum(1 for s in samples if s.kind != "reply" and s.kind not in CASELESS_KINDS)
        # A plain engine for watching progress: in WAL mode its reads never wait for the daemon's writes (casebot's
        # own Store begins every transaction IMMEDIATE, which would queue the test behind the daemon).
        watcher = sa.create_engine(sqlite_url)

        def cases_now() -> int:
            with watcher.connect() as conn:
                return int(conn.execute(sa.text("SELECT count(*) FROM cases")).scalar() or 0)

        for _ in range(4):
            # Never beyond the cases there will be: once all are open, the kill lands during delivery.
            target = min((progress[-1] if progress else 0) + rng.randint(3, 12), total_cases)
            proc = start_daemon(config, log)
            wait_until(lambda t=target: cases_now() >= t, 60, f"{target} cases", step=0.005)
            time.sleep(rng.uniform(0, 0.05))
            proc.kill()
            proc.wait(timeout=10)
            kills += 1
            progress.append(cases_now())
        watcher.dispose()
        print("progress after each kill:", progress)
        # At least the first kill landed while cases were still being opened: it interrupted real work.
        assert progress[0] < total_cases, progress
        proc = start_daemon(config, log)

        wait_until(lambda: drained(imap_account, store), 90, "the mailbox and the outbox to drain")
        assert stop(proc) == 0
    finally:
        store.close()

    store = Store(sqlite_url)
    try:
        cases = store.list_cases()
        with store.transaction() as tx:
            from sqlalchemy import func, select

            from casebot.store.schema import Message, Outbox  # test-only: read the tables directly

            stored = tx.session.scalar(select(func.count()).select_from(Message))
            distinct = tx.session.scalar(select(func.count(func.distinct(Message.dedupe_key))))
            acks = list(tx.session.execute(select(Outbox.message_id, Outbox.case_id, Outbox.status)))
    finally:
        store.close()
    assert stored == distinct == len(samples), "every message stored exactly once"
    assert sum(c.message_count for c in cases) == len(samples) - sum(1 for s in samples if s.kind in CASELESS_KINDS)
    assert all(status == "sent" for _, _, status in acks)
    assert len({case_id for _, case_id, _ in acks}) == len(acks), "one acknowledgement per case at most"
    expected_acks = sum(1 for s in samples if not s.automated and s.kind != "reply")
    assert len(acks) == expected_acks
    delivered = [
        email.message_from_bytes(m.content, policy=email.policy.compat32)["Message-ID"].strip("<> ")
        for m in smtp_sink.messages
    ]
    # Every queued acknowledgement reached the server; nothing else did. A resend can only happen if a kill
    # lands between the server's 250 and the commit of "sent", and then it carries the same Message-ID.
    assert set(delivered) == {mid for mid, _, _ in acks}
    assert len(delivered) - len(set(delivered)) <= kills


def test_mta_pipe_ingest(tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, sqlite_url)
    raw = message(7, subject="Production system down")
    run = [*CASEBOT, "--config", str(config), "ingest"]
    first = subprocess.run(run, input=raw, capture_output=True, env=env(), timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.decode().strip() == "opened CASE-000001"
    again = subprocess.run(run, input=raw, capture_output=True, env=env(), timeout=60)
    assert again.returncode == 0
    assert again.stdout.decode().strip() == "duplicate"
    [case] = cases_json(config)
    assert case["priority"] == "critical" and case["message_count"] == 1
    assert {"reference", "subject", "requester", "status", "priority", "created_at", "message_count"} <= set(case)

    # The database is unreachable: the MTA must keep the message and retry (EX_TEMPFAIL), not bounce it.
    (tmp_path / "down").mkdir()
    down = write_config(tmp_path / "down", imap_account, smtp_sink, "postgresql+psycopg://nobody@127.0.0.1:1/x")
    failed = subprocess.run([*CASEBOT, "--config", str(down), "ingest"], input=raw, capture_output=True,
                            env=env(), timeout=60)
    assert failed.returncode == 75, failed.stderr


def test_check_and_config_errors(
    tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, sqlite_url)
    ok = subprocess.run([*CASEBOT, "--config", str(config), "check"], capture_output=True, env=env(), timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert b"logged in" in ok.stdout and b"FAIL" not in ok.stdout

    wrong = subprocess.run([*CASEBOT, "--config", str(config), "check"], capture_output=True, timeout=60,
                           env={**env(), "CASEBOT_TEST_IMAP_PASSWORD": "wrong"})
    assert wrong.returncode == 1
    assert b"FAIL  mailbox: IMAP login" in wrong.stdout
    assert b"wrong" not in wrong.stdout + wrong.stderr  # the password itself is never printed

    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("[mailbox]\n", "[mailbox]\nhots = 1\n"))
    res = subprocess.run([*CASEBOT, "--config", str(bad), "poll"], capture_output=True, env=env(), timeout=60)
    assert res.returncode == 78
    assert b"mailbox.hots: unknown key" in res.stderr


@pytest.mark.parametrize("kind", ["maildir"])
def test_poll_from_maildir_to_maildir(tmp_path: Path, kind: str) -> None:
    """The embedded default the README's first command uses: no server at all."""
    res = subprocess.run([*CASEBOT, "demo", "--dir", str(tmp_path / "demo")], capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    text = res.stdout.decode()
    assert "automated 1, opened 6, threaded 1" in text  # the out-of-office answers nothing: kept, no case
    assert "CASE-000006" in text and "CASE-000007" not in text
    sent = list((tmp_path / "demo" / "sent" / "new").iterdir())
    assert len(sent) == 6  # one acknowledgement per case
    again = subprocess.run([*CASEBOT, "demo", "--dir", str(tmp_path / "demo")], capture_output=True, timeout=120)
    assert "duplicate 8" in again.stdout.decode()
    assert len(list((tmp_path / "demo" / "sent" / "new").iterdir())) == 6


def test_client_reply_reopens_a_resolved_case_through_the_cli(
    tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, sqlite_url)
    cli = [*CASEBOT, "--config", str(config)]
    first = message(1, subject="Invoice export question")
    imap_account.append(first)
    subprocess.run([*cli, "poll"], env=env(), check=True, capture_output=True, timeout=120)
    done = subprocess.run([*cli, "cases", "status", "CASE-000001", "resolved"], env=env(), capture_output=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.decode().strip() == "CASE-000001: new -> resolved"
    assert cases_json(config)[0]["status"] == "resolved"

    ack = email.message_from_bytes(smtp_sink.messages[0].content, policy=email.policy.compat32)
    reply = (
        f"From: Alice <alice@client.example>\r\nTo: support@example.com\r\nSubject: Re: {ack['Subject']}\r\n"
        f"Message-ID: <reopen-{time.time_ns()}@client.example>\r\nIn-Reply-To: {ack['Message-ID']}\r\n"
        f"References: {ack['Message-ID']}\r\n\r\nIt happened again.\r\n"
    ).encode()
    imap_account.append(reply)
    subprocess.run([*cli, "poll"], env=env(), check=True, capture_output=True, timeout=120)
    [case] = cases_json(config)
    assert case["status"] == "open" and case["message_count"] == 2
    shown = subprocess.run([*cli, "cases", "show", "CASE-000001", "--json"], env=env(), capture_output=True,
                           check=True, timeout=60)
    kinds = [e["kind"] for e in json.loads(shown.stdout)["events"]]
    assert kinds.count("status.changed") == 2  # resolved by the admin, reopened by the client's reply
    missing = subprocess.run([*cli, "cases", "status", "CASE-999999", "closed"], env=env(), capture_output=True,
                             timeout=60)
    assert missing.returncode == 1
