"""Delivery of queued acknowledgements to the real aiosmtpd sink through `casebot.passes.poll`.

Mail enters through the real Dovecot INBOX (so the outbox rows are the ones ingestion really writes); the sink is
told to answer 451 or 550, or is replaced by a closed port, and the outbox is read back through the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cbtest import Harness, bare_id, events_of, make_mail, quiet_logs
from servers import ImapAccount, SmtpSink, free_port

RETRY_SOON = {"retry_base": 0.1, "retry_max": 0.5}
NO_RATE_LIMIT = {"rate_limit": 0}


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


def _harness(imap_account: ImapAccount, smtp_sink: SmtpSink, url: str) -> Iterator[Harness]:
    harness = Harness(imap_account, smtp_sink, url, overrides={"outgoing": RETRY_SOON})
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def h(imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str) -> Iterator[Harness]:
    yield from _harness(imap_account, smtp_sink, sqlite_url)


@pytest.fixture
def hdb(imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str) -> Iterator[Harness]:
    """Like `h`, once on SQLite and once on PostgreSQL."""
    yield from _harness(imap_account, smtp_sink, db_url)


def clients(h: Harness, n: int) -> None:
    h.append(*(make_mail(f"Client {i} <client{i}@client.example>", f"Question {i}") for i in range(n)))


def outbox(h: Harness) -> list[dict[str, Any]]:
    return [row for c in h.cases() for row in h.detail(c.reference)["outbox"]]


def wait_until_due(h: Harness, seconds: float = 0.6) -> None:
    """Outbox retries are due `retry_base * 2**(n-1)` seconds later (capped at retry_max = 0.5 s here): the
    harness's clock moves on, nobody sleeps."""
    h.advance(seconds)


def test_tempfail_is_retried_and_sent_once(hdb: Harness) -> None:
    h = hdb
    clients(h, 1)
    h.sink.mode = "tempfail"

    first = h.poll()

    assert first.errors == []
    assert first.ingest.counts == {"opened": 1}
    assert first.deliver.retried == 1
    assert first.deliver.sent == 0
    (row,) = outbox(h)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert "451" in row["last_error"]
    assert h.store.outbox_counts() == {"pending": 1}
    assert h.sink.messages == []

    h.sink.mode = "ok"
    wait_until_due(h)
    second = h.poll()

    assert second.errors == []
    assert second.deliver.sent == 1
    assert h.sink.wait_for(1)
    assert len(h.sink.messages) == 1
    (row,) = outbox(h)
    assert row["status"] == "sent"
    assert row["attempts"] == 2
    assert row["last_error"] is None
    assert h.store.outbox_counts() == {"sent": 1}

    wait_until_due(h)
    assert h.poll().deliver.sent == 0
    assert len(h.sink.messages) == 1


def test_tempfail_is_not_retried_before_it_is_due(h: Harness) -> None:
    clients(h, 1)
    h.sink.mode = "tempfail"
    h.poll(outgoing={"retry_base": 3600.0, "retry_max": 3600.0})
    h.sink.mode = "ok"
    data_commands = h.sink.data_commands

    result = h.poll(outgoing={"retry_base": 3600.0, "retry_max": 3600.0})

    assert result.deliver.sent == 0
    assert h.sink.data_commands == data_commands
    assert h.store.outbox_counts() == {"pending": 1}


def test_permfail_is_recorded_and_never_resent(h: Harness) -> None:
    clients(h, 1)
    h.sink.mode = "permfail"

    first = h.poll()

    assert first.errors == []
    assert first.deliver.failed == 1
    (case,) = h.cases()
    d = h.detail(case.reference)
    (row,) = d["outbox"]
    assert row["status"] == "failed"
    assert "550" in row["last_error"]
    (failed,) = events_of(d, "ack.failed")
    assert "550" in failed["error"]
    assert h.store.outbox_counts() == {"failed": 1}
    data_commands = h.sink.data_commands
    assert data_commands == 1

    h.sink.mode = "ok"
    wait_until_due(h)
    second = h.poll()

    assert second.deliver.sent == 0
    assert second.deliver.failed == 0
    assert h.sink.data_commands == data_commands
    assert h.sink.messages == []
    assert h.store.outbox_counts() == {"failed": 1}


def test_one_transient_failure_still_delivers_every_ack_exactly_once(h: Harness) -> None:
    n = 5
    clients(h, n)
    h.sink.fail_next(1, "451 4.3.0 try later")

    first = h.poll(acknowledgement=NO_RATE_LIMIT)

    assert first.errors == []
    assert first.ingest.counts == {"opened": n}
    assert first.deliver.retried == 1
    assert first.deliver.sent == n - 1
    wait_until_due(h)
    second = h.poll(acknowledgement=NO_RATE_LIMIT)
    assert second.deliver.sent == 1

    assert h.sink.wait_for(n)
    acked_cases = [c.reference for c in h.cases() if events_of(h.detail(c.reference), "ack.queued")]
    assert len(acked_cases) == n
    sent = h.sent()
    assert len(sent) == len(acked_cases)
    assert sorted(str(m["X-Casebot-Reference"]) for m in sent) == sorted(acked_cases)
    assert len({bare_id(m["Message-ID"]) for m in sent}) == n
    assert h.sink.data_commands == n + 1
    assert h.store.outbox_counts() == {"sent": n}
    for c in h.cases():
        assert len(events_of(h.detail(c.reference), "ack.sent")) == 1


def test_smtp_down_keeps_everything_pending_until_a_server_answers(h: Harness) -> None:
    n = 3
    closed = free_port()  # nothing listens here
    clients(h, n)

    first = h.poll(outgoing={"port": closed})

    assert first.ingest.counts == {"opened": n}
    assert first.deliver.sent == 0
    assert first.deliver.connection_error is not None
    assert len(first.errors) == 1
    assert f"127.0.0.1:{closed}" in first.errors[0]
    rows = outbox(h)
    assert [r["status"] for r in rows] == ["pending"] * n
    # The connection failed once, on the first row; the rest of the batch was not even tried.
    assert sorted(r["attempts"] for r in rows) == [0] * (n - 1) + [1]
    assert h.store.outbox_counts() == {"pending": n}
    assert h.sink.data_commands == 0

    # Pointed at a live server (the sink), the next poll delivers every one of them, once.
    wait_until_due(h)
    second = h.poll()

    assert second.errors == []
    assert second.deliver.sent == n
    assert h.sink.wait_for(n)
    assert len(h.sink.messages) == n
    assert h.store.outbox_counts() == {"sent": n}
    wait_until_due(h)
    assert h.poll().deliver.sent == 0
    assert len(h.sink.messages) == n


def test_a_1000_character_subject_still_gets_its_acknowledgement(h: Harness) -> None:
    """Outgoing mail stays within RFC 5322's 998-character lines whatever the client wrote: the SMTP server
    accepts it (it answered `500 Line too long` before) and the client sees the subject whole."""
    subject = "Help " + "x" * 1000  # one unfoldable word
    h.append(make_mail("client@client.example", subject))
    result = h.poll()
    assert result.deliver.sent == 1 and result.deliver.failed == 0
    raw = h.sink.messages[0].content
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    (ack,) = h.sent()
    assert ack["Subject"] == f"[CASE-000001] {subject}"
