"""The dedupe key in both directions (issue 8 item 3): the same message re-encoded in transit is one key; two
different inputs, header-less or without a blank line too, are two. Plus the size limit's unparsed mail and the
arrival time read from the top Received header."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from reencode import VARIANTS, Fields, Variant, build

from casebot.mail import dedupe_key, parse, parse_unparsed
from casebot.mail import inbound as inbound_module
from casebot.mail import mime as mime_module
from casebot.transport import OVERSIZE_HEAD_BYTES

BASE = build()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_same_message_re_encoded_is_one_key(name: str) -> None:
    other = build(Fields(), VARIANTS[name])
    if name != "original":
        assert other != BASE
    assert dedupe_key(other) == dedupe_key(BASE)
    assert dedupe_key(other).startswith("inv-2211@client.example|")


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("one attachment byte", Fields(attachment=bytes(range(256)) * 39 + bytes(range(255)) + b"\x00")),
        ("other text", Fields(text="Hello,\n\nthe invoice 2212 lists 12 licences.\n")),
        ("other subject", Fields(subject="Invoice 2212 is wrong")),
        ("other sender", Fields(sender="Ana Lima <ana.lima@client.example>")),
        ("other date", Fields(date="Tue, 03 Mar 2026 10:15:01 +0100")),
        ("no log attachment", Fields(log=None)),
        ("other log", Fields(log="line 1 of the log\nline 3 of the log\n")),
        ("other message id", Fields(message_id="<inv-2211-resent@client.example>")),
    ],
)
def test_different_content_is_another_key(name: str, fields: Fields) -> None:
    assert dedupe_key(build(fields)) != dedupe_key(BASE)
    assert dedupe_key(build(fields, VARIANTS["all-at-once"])) != dedupe_key(BASE)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (b"no headers at all, just text", b"no headers at all, just other text"),
        (b"hello\n\nworld", b"hello\n\nthere"),
        (b"From: a@client.example\nSubject: x\nX-Ticket: 1", b"From: a@client.example\nSubject: x\nX-Ticket: 2"),
        (b"Subject: a\nthe first body", b"Subject: a\nthe second body"),
        (b"Message-ID: <same@x>\r\nX-A: 1", b"Message-ID: <same@x>\r\nX-A: 2"),
        (b"X-A: 1\r\n\r\n", b"X-A: 2\r\n\r\n"),  # a header block without sender or Message-ID identifies nothing
        (b"\r\n\r\nbody one", b"\r\n\r\nbody two"),
    ],
)
def test_two_different_unstructured_inputs_are_two_keys(a: bytes, b: bytes) -> None:
    assert dedupe_key(a) != dedupe_key(b)
    assert dedupe_key(a) == dedupe_key(a) == parse(a).dedupe_key
    assert dedupe_key(a.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")) == dedupe_key(a.replace(b"\r\n", b"\n"))


def test_big_base64_attachments_skip_the_parser_and_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Over 256 KiB of base64 goes past the MIME parser as a token (mail.mime._BLOB_RUN) and is put back after:
    # the text, the attachments and the key must be exactly what the plain parse gives.
    data = hashlib.sha256(b"seed").digest() * 20_000  # 640 KB
    variants = (Variant(), VARIANTS["all-at-once"], VARIANTS["lf-line-endings"])
    raws = [build(Fields(attachment=data), v) for v in variants]
    fast = [parse(r) for r in raws]
    assert any(a.lazy for a in fast[0].attachments)
    monkeypatch.setattr(mime_module, "_BLOB_RUN", re.compile(rb"(?!)"))
    slow = [parse(r) for r in raws]
    assert not any(a.lazy for a in slow[0].attachments)
    for f, s in zip(fast, slow, strict=True):
        assert f.dedupe_key == s.dedupe_key == fast[0].dedupe_key
        assert f.text == s.text
        assert [(a.filename, a.content_type, a.size, a.data) for a in f.attachments] == \
               [(a.filename, a.content_type, a.size, a.data) for a in s.attachments]
    pdf = next(a for a in fast[0].attachments if a.filename == "invoice-2211.pdf")
    assert pdf.data == data and pdf.size == len(data)


def test_deep_nesting_still_gets_a_key() -> None:
    depth = 5000
    raw = b"From: a@client.example\r\nMessage-ID: <deep@x>\r\n" + b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth)) + b"x\r\n"
    key = dedupe_key(raw)
    assert key.startswith("deep@x|")
    assert key != dedupe_key(raw.replace(b"x\r\n", b"y\r\n"))


def test_unparsed_mail_keeps_its_headers_and_says_so() -> None:
    head = build()[:OVERSIZE_HEAD_BYTES]
    m = parse_unparsed(head, 80_000_000, 52_428_800)
    assert m.unparsed_size == 80_000_000 and m.attachments == ()
    assert m.sender.addr == "ana@client.example" and m.subject == "Invoice 2211 is wrong"
    assert m.message_id == "inv-2211@client.example"
    assert "80000000 bytes" in m.text and "mailbox.max_message_bytes" in m.text
    assert any(d.startswith("oversize: 80000000 bytes") for d in m.defects)
    assert m.dedupe_key.startswith("inv-2211@client.example|")
    assert m.dedupe_key == parse_unparsed(head, 80_000_000, 52_428_800).dedupe_key
    assert m.dedupe_key != parse_unparsed(head, 80_000_001, 52_428_800).dedupe_key
    assert inbound_module.UNPARSED_HEAD_BYTES == OVERSIZE_HEAD_BYTES


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("from mx1.example by mx2.example; Tue, 03 Mar 2026 10:16:00 +0100",
         dt.datetime(2026, 3, 3, 9, 16, tzinfo=dt.UTC)),
        ("from mx1 by mx2 with ESMTPS id 4Fz;\r\n\tTue, 3 Mar 2026 10:16:00 +0000 (UTC)",
         dt.datetime(2026, 3, 3, 10, 16, tzinfo=dt.UTC)),
        ("from mx1 by mx2; not a date", None),
        ("from mx1 by mx2 without a date", None),
    ],
)
def test_arrival_is_the_top_received_headers_date(received: str, expected: dt.datetime | None) -> None:
    raw = (f"Received: {received}\r\nReceived: from far.example by mx1; Mon, 02 Mar 2026 01:00:00 +0000\r\n"
           "From: a@client.example\r\nSubject: hi\r\n\r\nbody\r\n").encode()
    assert parse(raw).arrived_at == expected


def test_no_received_header_no_arrival() -> None:
    assert parse(b"From: a@client.example\r\nSubject: hi\r\n\r\nbody\r\n").arrived_at is None
