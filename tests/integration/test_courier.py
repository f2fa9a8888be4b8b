"""Delivery overlaps ingest in the daemon: acknowledgements leave while the rest of the mailbox is ingested.

A real `casebot run` drains a mailbox of a few hundred varied messages in batches of 10, with the periodic
delivery tick set far away (10 minutes): only the courier's kick after each batch commit can send anything
during the drain. Its log says when each case opened and each mail left; the SMTP sink counts connections.
"""

from __future__ import annotations

from pathlib import Path

from corpus import generate
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


def test_acknowledgements_leave_while_the_mailbox_is_still_being_ingested(
    tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    samples = generate(400, seed=5)
    client = imap_account.connect()
    for s in samples:
        client.append("INBOX", s.raw)
    client.logout()
    config = write_config(tmp_path, imap_account, smtp_sink, sqlite_url, mailbox="batch_size = 10\n",
                          daemon="deliver_interval = 600\n")
    store = Store(sqlite_url)
    store.upgrade()
    log = tmp_path / "daemon.log"
    try:
        daemon = start_daemon(config, log)
        wait_until(lambda: drained(imap_account, store), 120, "the daemon to drain the mailbox and the outbox")
        assert stop(daemon) == 0
        acks = store.outbox_counts()
    finally:
        store.close()
    got = events(log)
    opened = sorted(str(e["timestamp"]) for e in got if e.get("event") == "case.opened")
    sent = sorted(str(e["timestamp"]) for e in got if e.get("event") == "mail.sent")
    expected = sum(1 for s in samples if not s.automated and s.kind != "reply")
    assert acks == {"sent": expected} and len(sent) == expected == len(smtp_sink.messages)
    during = sum(t < opened[-1] for t in sent)
    print(f"{during} of {len(sent)} acknowledgements left before the last case opened; "
          f"{smtp_sink.ehlo_count} SMTP connection(s)")
    assert during >= len(sent) // 10, "delivery waited for the whole mailbox"
    # One connection carried the drain's rounds (kicks come faster than the courier's 5 s linger).
    assert smtp_sink.ehlo_count <= 3
