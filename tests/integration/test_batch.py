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
