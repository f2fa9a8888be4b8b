"""Addresses on the wire (issue 8 item 4): Dovecot INBOX -> poll -> aiosmtpd, reading the envelope and the bytes.

An IDN domain goes out as an A-label in both the To header and RCPT TO; a non-ASCII local part goes out with
SMTPUTF8 as raw UTF-8 to a server that offers it (one that does not: the acknowledgement fails with the reason,
see test_quarantine); an address that cannot be written gets no acknowledgement and the reason on the case.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from cbtest import SUPPORT, Harness, events_of, quiet_logs
from servers import ImapAccount, SmtpSink


class Utf8Sink(SmtpSink):
    controller_kwargs: ClassVar[dict[str, Any]] = {"enable_SMTPUTF8": True}


@pytest.fixture
def utf8_sink() -> Iterator[SmtpSink]:
    sink = Utf8Sink().start()
    try:
        yield sink
    finally:
        sink.stop()


def _mail(from_header: str, mid: str) -> bytes:
    return (f"From: {from_header}\r\nTo: {SUPPORT}\r\nSubject: question {mid}\r\nMessage-ID: <{mid}@client.example>\r\n"
            "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\nHello, how do I export my invoices?\r\n").encode()


def _header_line(raw: bytes, name: bytes) -> bytes:
    [line] = [line for line in raw.split(b"\r\n") if line.lower().startswith(name.lower() + b":")]
    return line


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_idn_and_utf8_addresses_on_the_wire(imap_account: ImapAccount, utf8_sink: SmtpSink, db_url: str) -> None:
    h = Harness(imap_account, utf8_sink, db_url)
    with quiet_logs():
        try:
            h.append(_mail("=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@bücher.example>", "idn"),
                     _mail("=?utf-8?q?J=C3=B6rg?= <jörg@bücher.example>", "utf8"))
            h.poll()
            assert utf8_sink.wait_for(2)
            by_rcpt = {m.rcpt_tos[0]: m for m in utf8_sink.messages}
        finally:
            h.close()
    assert set(by_rcpt) == {"joerg@xn--bcher-kva.example", "jörg@xn--bcher-kva.example"}
    idn = by_rcpt["joerg@xn--bcher-kva.example"].content
    # The acknowledgement goes to the bare address (the display name's encoding: tests/unit/test_addresses.py).
    assert _header_line(idn, b"To") == b"To: joerg@xn--bcher-kva.example"
    utf8 = by_rcpt["jörg@xn--bcher-kva.example"].content
    assert _header_line(utf8, b"To") == "To: jörg@xn--bcher-kva.example".encode()
    for message in by_rcpt.values():
        assert message.mail_from == "support@example.com"


def test_unwritable_addresses_get_no_acknowledgement_and_a_reason(h: Harness) -> None:
    h.append(_mail("a@b@c.example", "twoat"),
             b"From: j\xf6rg@client.example\r\nTo: support@example.com\r\nSubject: latin1\r\n"
             b"Message-ID: <latin1@client.example>\r\n\r\nHello\r\n",
             _mail("Ann <ann\x01x@client.example>", "ctl"),
             _mail("ok@client.example", "ok"))
    h.poll()
    cases = {c.subject: c for c in h.cases()}
    assert len(cases) == 4  # every client keeps their case
    expected = {"question twoat": "more than one @", "latin1": "raw 8-bit bytes that are not UTF-8",
                "question ctl": "control or space character U+0001"}
    for subject, problem in expected.items():
        detail = h.detail(cases[subject].reference)
        [event] = events_of(detail, "ack.suppressed")
        assert event["why"].startswith(f"requester address not deliverable: {problem}")
        [message] = detail["messages"]
        [step] = [s for s in message["trace"] if s["step"] == "acknowledgement"]
        assert step["decision"] == "suppressed" and "not deliverable" in step["why"]
        assert detail["outbox"] == []
    assert h.sink.wait_for(1)
    assert [m.rcpt_tos for m in h.sink.messages] == [["ok@client.example"]]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield
