"""Intake you can trust (issue 8 items 3, 4 and 10) against the real Dovecot, SQLite and PostgreSQL, and a Maildir:

* a mailbox re-delivered re-encoded (new boundaries, other transfer encodings, LF) is all duplicates: no new case,
  no new acknowledgement, and a genuine reply afterwards still threads;
* empty and whitespace-only Maildir files are quarantined ("empty message"), never a case;
* a mail over `mailbox.max_message_bytes` is fetched only as its first 256 KiB (IMAP, Maildir), stored unparsed
  with a defect, opens a case and gets no acknowledgement;
* the acknowledgement rate limit counts by arrival time (IMAP INTERNALDATE set with APPEND's date argument, the
  Maildir file's mtime): a backlog of one client's mails spread over days gets every acknowledgement, a burst that
  arrived within a minute is still limited.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cbtest import Harness, events_of, make_mail, quiet_logs
from reencode import VARIANTS, Fields, build
from servers import ImapAccount
from sqlalchemy import select

from casebot.clock import utcnow
from casebot.config import Settings, from_mapping
from casebot.passes import poll
from casebot.store import Store
from casebot.store.schema import Message, Quarantined


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield



def append_at(account: ImapAccount, items: list[tuple[bytes, dt.datetime]]) -> None:
    """APPEND with the date argument: the message's INTERNALDATE, what the server says is its arrival time."""
    client = account.connect()
    try:
        for raw, when in items:
            client.append("INBOX", raw, msg_time=when)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def arrivals(store: Store) -> list[dt.datetime | None]:
    with store.transaction() as tx:
        return list(tx.session.scalars(select(Message.arrived_at).order_by(Message.id)))


# -- item 3: the same message re-encoded is a duplicate ---------------------------------------------------------


def _mailbox() -> list[Fields]:
    """Twelve first-contact mails from six clients, each with a text part, a log and a PDF."""
    out = []
    for i in range(12):
        out.append(Fields(sender=f"Client {i % 6} <client{i % 6}@client{i % 6}.example>",
                          subject=f"Question {i}: the export fails", message_id=f"<q{i}@client{i % 6}.example>",
                          date=f"Tue, 03 Mar 2026 10:{i:02d}:00 +0100", text=f"Hello,\n\nquestion {i}, details.\n",
                          attachment=bytes([i]) * 3000 + bytes(range(256)), log=f"error {i}\n"))
    return out


def test_a_mailbox_re_delivered_re_encoded_is_all_duplicates_and_replies_still_thread(h: Harness) -> None:
    mails = _mailbox()
    h.append(*(build(f) for f in mails))
    first = h.poll(acknowledgement={"rate_limit": 0})
    assert first.errors == [] and first.ingest.counts == {"opened": 12}
    assert h.sink.wait_for(12)
    before_cases = [c.reference for c in h.cases()]

    # The same mailbox again, as a relay or an archive re-import writes it: every message re-encoded.
    names = sorted(n for n in VARIANTS if n != "original")
    h.append(*(build(f, VARIANTS[names[i % len(names)]]) for i, f in enumerate(mails)))
    again = h.poll(acknowledgement={"rate_limit": 0})
    assert again.errors == [] and again.ingest.counts == {"duplicate": 12}
    assert [c.reference for c in h.cases()] == before_cases
    assert len(h.sink.messages) == 12  # not one acknowledgement more
    assert h.stored_message_count() == 12

    # A genuine reply to the first question threads onto its case: its Message-ID sits on one case only.
    reply = make_mail("Client 0 <client0@client0.example>", "Re: Question 0: the export fails",
                      in_reply_to="q0@client0.example")
    h.append(reply)
    third = h.poll(acknowledgement={"rate_limit": 0})
    assert third.ingest.counts == {"threaded": 1}
    assert [m["disposition"] for m in h.detail("CASE-000001")["messages"]] == ["opened", "threaded"]
    assert len(h.cases()) == 12


# -- item 10: the rate limit counts by arrival time -------------------------------------------------------------


def test_a_backlog_spread_over_days_gets_every_acknowledgement(h: Harness) -> None:
    # Eight mails from one client over eight days, ingested within seconds (casebot was down): the default limit
    # (5 per hour) must judge them as they arrived.
    start = (utcnow() - dt.timedelta(days=9)).replace(microsecond=0)
    items = [(make_mail("Dana <dana@client.example>", f"Issue on day {d}"), start + dt.timedelta(days=d))
             for d in range(8)]
    append_at(h.account, items)
    result = h.poll()
    assert result.errors == [] and result.ingest.counts == {"opened": 8}
    assert h.sink.wait_for(8)
    assert len(h.sent()) == 8
    assert [a.replace(microsecond=0) if a else None for a in arrivals(h.store)] == [w for _, w in items]


def test_a_burst_that_arrived_within_a_minute_is_still_limited(h: Harness) -> None:
    # A fast auto-replier without any automated header: eight mails within 40 seconds, two days ago.
    start = (utcnow() - dt.timedelta(days=2)).replace(microsecond=0)
    items = [(make_mail("Loop <loop@other.example>", f"Your message {i}"), start + dt.timedelta(seconds=5 * i))
             for i in range(8)]
    append_at(h.account, items)
    result = h.poll()
    assert result.ingest.counts == {"opened": 8}
    assert h.sink.wait_for(5)
    assert len(h.sent()) == 5
    for c in h.cases()[5:]:
        (suppressed,) = events_of(h.detail(c.reference), "ack.suppressed")
        assert "rate limit: 5 acknowledgements" in suppressed["why"] and "before its arrival" in suppressed["why"]
    # Later arrivals (an hour on) are judged on their own window again.
    append_at(h.account, [(make_mail("Loop <loop@other.example>", "Your message 9"), start + dt.timedelta(hours=2))])
    assert h.poll().ingest.counts == {"opened": 1}
    assert h.sink.wait_for(6)


# -- item 4: the size limit over IMAP ----------------------------------------------------------------------------


def test_imap_mail_over_the_limit_is_fetched_as_its_first_part_and_stored_unparsed(h: Harness) -> None:
    big = build(Fields(attachment=os.urandom(600_000), message_id="<big@client.example>"))
    small = make_mail("Eve <eve@client.example>", "A small one")
    h.append(big, small)
    result = h.poll(mailbox={"max_message_bytes": 100_000})
    assert result.errors == [] and result.ingest.counts == {"opened": 2}
    detail = h.detail("CASE-000001")
    (message,) = detail["messages"]
    assert message["size"] == 256 * 1024 < len(big)  # only the first part was pulled from the server
    assert message["attachments"] == []
    assert any(d.startswith(f"oversize: {len(big)} bytes") for d in message["defects"])
    assert "not parsed" in message["text"]
    (suppressed,) = events_of(detail, "ack.suppressed")
    assert "message not parsed" in suppressed["why"]
    assert h.sink.wait_for(1) and len(h.sent()) == 1  # the small one's acknowledgement only
    # Processed like any other (the whole mail stays on the server); a second poll finds nothing.
    assert h.poll(mailbox={"max_message_bytes": 100_000}).ingest.seen == 0


# -- Maildir: empty files, the size limit, arrival by mtime -------------------------------------------------------


def _maildir_settings(tmp_path: Path, **mailbox: object) -> Settings:
    return from_mapping({
        "mailbox": {"kind": "maildir", "path": str(tmp_path / "inbox"), **mailbox},
        "outgoing": {"kind": "maildir", "path": str(tmp_path / "sent"),
                     "from_address": "Support <support@example.com>"},
        "database": {"url": f"sqlite:///{tmp_path}/casebot.db"},
        "logging": {"level": "warning"},
    })


def _deliver(tmp_path: Path, name: str, raw: bytes, when: dt.datetime | None = None) -> Path:
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "inbox" / sub).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "inbox" / "new" / name
    path.write_bytes(raw)
    if when is not None:
        os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def _sent(tmp_path: Path) -> int:
    new = tmp_path / "sent" / "new"
    return len(list(new.iterdir())) if new.exists() else 0


def test_empty_maildir_files_are_quarantined_never_a_case(tmp_path: Path) -> None:
    settings = _maildir_settings(tmp_path)
    for name, raw in (("empty", b""), ("blank", b" \r\n\r\n\t\n"), ("real", make_mail("f@client.example", "Hi"))):
        _deliver(tmp_path, name, raw)
    result = poll(settings)
    assert result.ingest.counts == {"quarantined": 2, "opened": 1}
    assert sorted(p.name for p in (tmp_path / "inbox" / ".Quarantine" / "cur").iterdir()) == ["blank", "empty"]
    assert not list((tmp_path / "inbox" / "new").iterdir())
    store = Store(f"sqlite:///{tmp_path}/casebot.db")
    try:
        with store.transaction() as tx:
            rows = {r.source: (r.reason, r.raw) for r in tx.session.scalars(select(Quarantined))}
        assert rows == {"maildir:empty": ("empty message", b""), "maildir:blank": ("empty message", b" \r\n\r\n\t\n")}
        cases = store.list_cases()
        assert [c.requester for c in cases] == ["f@client.example"]
    finally:
        store.close()


def test_maildir_mail_over_the_limit_is_read_as_its_first_part(tmp_path: Path) -> None:
    big = build(Fields(attachment=os.urandom(500_000)))
    path = _deliver(tmp_path, "big", big)
    result = poll(_maildir_settings(tmp_path, max_message_bytes=50_000))
    assert result.ingest.counts == {"opened": 1}
    assert (tmp_path / "inbox" / ".Processed" / "cur" / "big").read_bytes() == big  # the file itself is kept
    assert not path.exists()
    store = Store(f"sqlite:///{tmp_path}/casebot.db")
    try:
        (message,) = store.case_detail("CASE-000001")["messages"]  # type: ignore[index]
        assert message["size"] == 256 * 1024 and message["attachments"] == []
        assert _sent(tmp_path) == 0  # no acknowledgement to mail casebot has not read
        # With no limit, the same size is parsed in full.
        _deliver(tmp_path, "big2", build(Fields(attachment=os.urandom(500_000), message_id="<b2@client.example>")))
        poll(_maildir_settings(tmp_path, max_message_bytes=0))
        (message2,) = store.case_detail("CASE-000002")["messages"]  # type: ignore[index]
        assert [a["filename"] for a in message2["attachments"]] == ["app.log", "invoice-2211.pdf"]
    finally:
        store.close()


def test_a_maildir_backlog_is_judged_by_file_time(tmp_path: Path) -> None:
    start = (utcnow() - dt.timedelta(days=10)).replace(microsecond=0)
    for d in range(7):  # one a day: all acknowledged
        _deliver(tmp_path, f"day{d}", make_mail("gil@client.example", f"Day {d}"), start + dt.timedelta(days=d))
    for i in range(7):  # a burst within a minute from another sender: five acknowledged
        _deliver(tmp_path, f"burst{i}", make_mail("bot@other.example", f"Burst {i}"),
                 start + dt.timedelta(days=8, seconds=i))
    result = poll(_maildir_settings(tmp_path))
    assert result.ingest.counts == {"opened": 14}
    assert _sent(tmp_path) == 7 + 5
    store = Store(f"sqlite:///{tmp_path}/casebot.db")
    try:
        got = arrivals(store)
        assert got[0] == start and got[-1] == start + dt.timedelta(days=8, seconds=6)
    finally:
        store.close()
