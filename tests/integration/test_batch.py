"""Batched ingest: the messages of one fetch share one transaction, and a failure inside a batch fails no other.

Commits are counted with SQLAlchemy's own `commit` event on every engine while the harness polls (the poll runs
in this process): real Dovecot, real SMTP sink, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cbtest import Harness, make_mail
from sqlalchemy import event
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from casebot.pipeline import DEFAULT_CHAIN


@contextmanager
def commits() -> Iterator[list[int]]:
    count = [0]

    def on_commit(*_args: Any) -> None:
        count[0] += 1

    event.listen(Engine, "commit", on_commit)
    try:
        yield count
    finally:
        event.remove(Engine, "commit", on_commit)


@contextmanager
def parses_counted(into: list[bytes]) -> Iterator[None]:
    """Every message casebot parses, seen through its own parse function's module attribute (the ingest job
    calls `casebot.mail.parse` through the module, so this sees each call; nothing inside it is replaced)."""
    from casebot import mail

    real = mail.parse

    def counting(raw: bytes, *args: Any, **kwargs: Any) -> Any:
        into.append(raw)
        return real(raw, *args, **kwargs)

    mail.parse = counting
    try:
        yield
    finally:
        mail.parse = real


def test_one_fetch_is_one_transaction(harness: Harness) -> None:
    harness.poll()  # the schema is created: from here on only ingest, delivery and the scans commit
    harness.append(make_mail("first@customer.example", "Question 0"), make_mail("second@customer.example", "Q 1"))
    with commits() as two:
        assert harness.poll().ingest.counts == {"opened": 2}
    harness.append(*(make_mail(f"client{i}@customer{i}.example", f"Question {i}") for i in range(2, 14)))
    with commits() as twelve:
        assert harness.poll().ingest.counts == {"opened": 12}
    # Ingest commits once per batch: twelve messages cost what two did (delivery commits once per mail sent).
    assert twelve[0] - 12 == two[0] - 2, (two, twelve)
    assert [c.subject for c in harness.cases()][:3] == ["Question 0", "Q 1", "Question 2"]  # mailbox order kept


def test_a_failure_inside_a_batch_is_retried_alone(harness: Harness) -> None:
    harness.append(make_mail("alice@client.example", "First question"),
                   make_mail("bob@client.example", "poison message"),
                   make_mail("carol@client.example", "Third question"))
    with capture_logs() as logs:
        result = harness.poll(pipeline={"steps": [*DEFAULT_CHAIN, "plugin_steps:ExplodeOnPoison"]})
    assert [e["event"] for e in logs].count("ingest.batch_split") == 1
    assert result.ingest.counts == {"opened": 2, "failed": 1}
    assert [c.subject for c in harness.cases()] == ["First question", "Third question"]
    assert len(harness.sent()) == 2  # nothing of the rolled-back batch was queued twice


def test_a_mailbox_delivered_again_is_recognised_by_its_bytes_before_parsing(harness: Harness) -> None:
    """The processed flags are lost (a restore, a server move): every message comes again with the same bytes.
    They are found by the SHA-256 of those bytes with one query per fetch, never parsed, and marked done again."""
    harness.append(*(make_mail(f"client{i}@customer{i}.example", f"Question {i}") for i in range(6)))
    assert harness.poll().ingest.counts == {"opened": 6}
    client = harness.account.connect()
    try:
        client.select_folder("INBOX")
        client.remove_flags(client.search(["ALL"]), [b"$CasebotProcessed"])
    finally:
        client.logout()
    parsed: list[bytes] = []
    with parses_counted(parsed):
        again = harness.poll()
    assert again.ingest.counts == {"duplicate": 6}
    assert parsed == [], "nothing was parsed"
    assert again.deliver.sent == 0 and len(harness.sent()) == 6
    assert harness.stored_message_count() == 6
    assert harness.poll().ingest.seen == 0  # marked done again
