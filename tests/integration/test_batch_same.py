"""A batch stores exactly what one message at a time stores.

The same mail goes into two fresh databases of one engine: one message per transaction (`jobs.ingest.process`)
and all of a fetch in one batch transaction (`process_batch`, `store.BatchTx`), whose look-ups come from a few
queries made up front plus what the batch itself wrote. The mail is chosen so that later messages of a batch
depend on earlier ones: replies to a case opened in the same batch (adding participants one after another), a
reference in the subject to a case minted in the batch, a stranger quoting it, the acknowledgement rate limit
filling up inside the batch and then from stored rows, a duplicate, an auto-reply, a bounce of an
acknowledgement and a reply to one. Cases, participants, messages, the audit trail and the outbox must come out
the same, row for row, on SQLite and PostgreSQL, and the next reference number must follow on with no gap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cbtest import make_mail, quiet_logs, settings_mapping
from servers import PostgresDatabase
from sqlalchemy import select

from casebot.config import from_mapping
from casebot.jobs.ingest import IngestDeps, Outcome, process, process_batch
from casebot.service import build_deps
from casebot.store import Store
from casebot.store.schema import Case, Counter, Event, Message, Outbox, Participant
from casebot.transport import Fetched

NOW = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)  # a Tuesday, in business hours
SUPPORT = "support@example.com"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    dbs: list[PostgresDatabase] = []
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'batch.db'}"]
    else:
        base = request.getfixturevalue("postgres_base_url")
        dbs = [PostgresDatabase(base).create(), PostgresDatabase(base).create()]
        urls = [d.url for d in dbs]
    stores = [Store(u) for u in urls]
    for s in stores:
        s.upgrade()
    try:
        yield stores[0], stores[1]
    finally:
        for s in stores:
            s.close()
        for d in dbs:
            d.drop()


@pytest.fixture
def deps() -> IngestDeps:
    mapping = settings_mapping(imap_host="127.0.0.1", imap_port=1, imap_user="u", smtp_host="127.0.0.1",
                               smtp_port=1, db_url="sqlite://")
    mapping["acknowledgement"] = {"rate_limit": 2, "rate_window_minutes": 60}
    return build_deps(from_mapping(mapping))


def _mail(sender: str, subject: str, mid: str, *, cc: str = "", in_reply_to: str | None = None,
          headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    extra = (("Cc", cc),) if cc else ()
    return make_mail(sender, subject, message_id=mid, in_reply_to=in_reply_to, headers=(*extra, *headers),
                     body=f"About {subject}, from {sender}.\n")


def first_batch() -> list[bytes]:
    again = _mail("bob@other.example", "Bob 1", "b1@other.example")
    return [
        _mail("alice@client.example", "Printer broken", "a1@client.example", cc="carol@client.example"),
        _mail("carol@client.example", "Re: Printer broken", "c1@client.example",
              cc="dan@client.example, zoe@partner.example", in_reply_to="a1@client.example"),
        _mail("dan@client.example", "Re: Printer broken", "d1@client.example", cc="erin@client.example",
              in_reply_to="c1@client.example"),
        _mail("frank@client.example", "Re: [CASE-000001] more detail", "f1@client.example"),
        # A participant since carol's reply, from another domain: threads by the reference only as a participant.
        _mail("zoe@partner.example", "Re: [CASE-000001] from the partner", "z1@partner.example"),
        _mail("erin@client.example", "Re: Printer broken", "e1@client.example",  # nobody new: no duplicate row
              cc="carol@client.example, dan@client.example, zoe@partner.example", in_reply_to="d1@client.example"),
        _mail("mallory@evil.example", "[CASE-000001] hello", "m1@evil.example"),
        again,
        _mail("bob@other.example", "Bob 2", "b2@other.example"),
        _mail("bob@other.example", "Bob 3", "b3@other.example"),  # over the rate limit of 2 an hour
        again,  # the same message twice in one fetch
        _mail("robot@client.example", "Automatic reply: Printer broken", "r1@client.example",
              in_reply_to="a1@client.example", headers=(("Auto-Submitted", "auto-replied"),)),
        _mail("alice@client.example", "Another thing", "a2@client.example"),
    ]


def dsn(original_id: str, failed: str) -> bytes:
    return (
        f"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.other.example>\r\nTo: {SUPPORT}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.other.example>\r\n"
        "Date: Tue, 03 Mar 2026 10:05:00 +0000\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.other.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{failed}>: User unknown\r\n"
        "--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Example Support <{SUPPORT}>\r\nTo: {failed}\r\nMessage-ID: <{original_id}>\r\n"
        "--R--\r\n"
    ).encode()


def second_batch(ack_of: dict[str, str]) -> list[bytes]:
    return [
        dsn(ack_of["Bob 1"], "bob@other.example"),
        _mail("alice@client.example", "Re: Another thing", "a3@client.example", in_reply_to=ack_of["Another thing"]),
        _mail("bob@other.example", "Bob 4", "b4@other.example"),  # the limit is full from stored rows
        _mail("gina@new.example", "Fresh question", "g1@new.example"),
        _mail("gina@new.example", "Re: Fresh question", "g2@new.example", in_reply_to="g1@new.example"),
    ]


def one_by_one(store: Store, deps: IngestDeps, raws: list[bytes], start: int) -> list[Outcome]:
    return [process(store, deps, raw, f"m{start + i}", NOW, arrived_at=NOW) for i, raw in enumerate(raws)]


def batched(store: Store, deps: IngestDeps, raws: list[bytes], start: int) -> list[Outcome]:
    fetched = [(Fetched(str(start + i), raw, NOW), f"m{start + i}") for i, raw in enumerate(raws)]
    outcomes = process_batch(store, deps, fetched, NOW)
    assert outcomes is not None, "the batch failed and would have been split"
    return outcomes


def snapshot(store: Store) -> dict[str, Any]:
    """Every row ingest writes, without the ids (so the two databases compare) but in id order."""
    with store.transaction() as tx:
        s = tx.session
        ref = {c.id: c.reference for c in s.scalars(select(Case))}
        return {
            "cases": [(c.reference, c.subject, c.requester, c.status, c.priority, c.priority_rule,
                       ref.get(c.linked_case_id or 0), c.first_response_due, c.resolution_due, c.next_alert_at)
                      for c in s.scalars(select(Case).order_by(Case.id))],
            "participants": sorted((ref[p.case_id], p.address, p.role) for p in s.scalars(select(Participant))),
            "messages": [(m.dedupe_key, ref.get(m.case_id or 0), m.disposition, m.automated, m.message_id)
                         for m in s.scalars(select(Message).order_by(Message.id))],
            "events": [(ref[e.case_id], e.kind, e.detail) for e in s.scalars(select(Event).order_by(Event.id))],
            "outbox": [(o.key, ref.get(o.case_id or 0), o.kind, o.status, o.recipients, o.message_id,
                        o.bounce_recipient, o.raw) for o in s.scalars(select(Outbox).order_by(Outbox.id))],
            "counters": [(c.name, c.value) for c in s.scalars(select(Counter).order_by(Counter.name))],
        }


def acks_by_subject(store: Store) -> dict[str, str]:
    with store.transaction() as tx:
        rows = tx.session.execute(select(Case.subject, Outbox.message_id).join(Case, Case.id == Outbox.case_id)
                                  .where(Outbox.kind == "ack"))
        return {str(subject): str(mid) for subject, mid in rows}


def test_a_batch_stores_what_one_message_at_a_time_stores(two_stores: tuple[Store, Store],
                                                           deps: IngestDeps) -> None:
    single, batch = two_stores
    first = first_batch()
    a = one_by_one(single, deps, first, 0)
    b = batched(batch, deps, first, 0)
    assert [(o.status, o.reference, o.ack) for o in a] == [(o.status, o.reference, o.ack) for o in b]
    assert [o.status for o in a] == ["opened", "threaded", "threaded", "threaded", "threaded", "threaded", "opened",
                                     "opened", "opened", "opened", "duplicate", "threaded", "opened"]
    acks = [o.ack.split(":")[0] for o in a if o.status == "opened"]
    assert acks == ["queued", "queued", "queued", "queued", "rate limit", "queued"], acks
    ack_of = acks_by_subject(single)
    assert ack_of == acks_by_subject(batch)
    second = second_batch(ack_of)
    a2 = one_by_one(single, deps, second, 100)
    b2 = batched(batch, deps, second, 100)
    assert [(o.status, o.reference, o.ack) for o in a2] == [(o.status, o.reference, o.ack) for o in b2]
    assert [o.status for o in a2] == ["bounced", "threaded", "opened", "opened", "threaded"]
    after = [_mail("henry@late.example", "Afterwards", "h1@late.example")]
    assert one_by_one(single, deps, after, 200)[0].reference == batched(batch, deps, after, 200)[0].reference
    one, many = snapshot(single), snapshot(batch)
    for table in one:
        assert one[table] == many[table], table
    participants = {(r, a) for r, a, _ in one["participants"]}
    assert {("CASE-000001", x) for x in ("alice@client.example", "carol@client.example", "dan@client.example",
                                         "erin@client.example", "zoe@partner.example")} <= participants
    suppressed = [e for e in one["events"] if e[1] == "ack.suppressed"]
    assert [e[2]["why"].split(":")[0] for e in suppressed] == ["rate limit", "rate limit"], suppressed
    assert [c[6] for c in one["cases"] if c[2] == "mallory@evil.example"] == ["CASE-000001"]
    assert one["counters"] == [("case", len(one["cases"]))]
    assert sum(o[3] == "bounced" for o in one["outbox"]) == 1
