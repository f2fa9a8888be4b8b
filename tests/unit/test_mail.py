"""The mail model (casebot/mail.py) on hand-built raw messages: parse(), dedupe_key(), compose(), visible_body()."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy

import pytest

from casebot import mail
from casebot.mail import Address, Outgoing, compose, dedupe_key, message_ids, parse, sanitize_filename, visible_body


def raw_message(*headers: str, body: str = "Hello\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")


# --- addresses --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_header", "name", "addr"),
    [
        ('"billing@bank.example" <real@client.example>', "billing@bank.example", "real@client.example"),
        ("billing@bank.example <real@client.example>", "billing@bank.example", "real@client.example"),
        ('"Billing <billing@bank.example>" <real@client.example>', "Billing", "real@client.example"),
        ("Real Person <Real.Person@Client.Example>", "Real Person", "real.person@client.example"),
        ("real@client.example", "", "real@client.example"),
        ("real@client.example (Real Person)", "", "real@client.example"),
        ("first@client.example second@other.example", "", "first@client.example"),
        ("=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jorg@client.example>", "Jörg Müller", "jorg@client.example"),
        ("<>", "", ""),
        ("", "", ""),
        ("undisclosed", "", ""),
    ],
)
def test_sender_address(from_header: str, name: str, addr: str) -> None:
    m = parse(raw_message(f"From: {from_header}", "Subject: x"))
    assert m.sender == Address(name, addr)


def test_null_sender_is_not_replaced_by_null_return_path() -> None:
    m = parse(raw_message("Return-Path: <>", "From: <>", "Subject: Undelivered Mail"))
    assert m.sender.addr == ""
    assert m.sender.domain == ""


def test_missing_from_falls_back_to_return_path() -> None:
    m = parse(raw_message("Return-Path: <Bounce@Lists.Example>", "Subject: x"))
    assert m.sender.addr == "bounce@lists.example"


@pytest.mark.parametrize(
    ("to_header", "addrs"),
    [
        ("a@b.example b@c.example", ["a@b.example", "b@c.example"]),
        ("a@b.example, b@c.example", ["a@b.example", "b@c.example"]),
        ("a@b.example; b@c.example", ["a@b.example", "b@c.example"]),
        ('"Doe, John" <john@x.example>, jane@y.example', ["john@x.example", "jane@y.example"]),
        ("Support <support@example.com>", ["support@example.com"]),
        ("undisclosed-recipients:;", []),
    ],
)
def test_recipient_lists(to_header: str, addrs: list[str]) -> None:
    m = parse(raw_message("From: a@client.example", f"To: {to_header}", f"Cc: {to_header}", "Subject: x"))
    assert [a.addr for a in m.to] == addrs
    assert [a.addr for a in m.cc] == addrs


def test_reply_to() -> None:
    m = parse(raw_message("From: a@client.example", "Reply-To: Desk <Desk@Client.Example>", "Subject: x"))
    assert m.reply_to == Address("Desk", "desk@client.example")
    assert parse(raw_message("From: a@client.example")).reply_to is None


# --- subject and headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject_header", "subject"),
    [
        ("=?utf-8?q?Hello=0D=0ABcc=3A_x=40evil.example?=", "Hello Bcc: x@evil.example"),
        ("=?utf-8?b?SGVsbG8NCkJjYzogeEBldmlsLmV4YW1wbGU=?=", "Hello Bcc: x@evil.example"),
        ("part one\r\n part two", "part one part two"),
        ("=?utf-8?q?Caf=C3=A9?= =?utf-8?q?_au_lait?=", "Café au lait"),
        ("tab\there", "tab here"),
        ("=?utf-8?q?broken", "=?utf-8?q?broken"),
        ("=?utf-8?q?nul=00byte?=", "nulbyte"),
    ],
)
def test_subject_is_one_clean_line(subject_header: str, subject: str) -> None:
    m = parse(raw_message("From: a@client.example", f"Subject: {subject_header}"))
    assert m.subject == subject
    assert "\r" not in m.subject and "\n" not in m.subject
    assert all("\r" not in v and "\n" not in v for v in m.headers.values())


def test_first_header_occurrence_wins() -> None:
    m = parse(raw_message("From: a@client.example", "Subject: first", "Subject: second"))
    assert m.subject == "first"
    assert m.header("SUBJECT") == "first"
    assert m.header("x-missing") == ""


# --- body text ------------------------------------------------------------------------------------------------


def test_html_only_mail_is_converted_and_hidden_text_dropped() -> None:
    html = (
        "<html><body><p>Visible text</p>"
        '<div style="display:none">HIDDEN production down</div>'
        "<p>More <b>bold</b></p></body></html>"
    )
    m = parse(raw_message("From: a@client.example", "Subject: html", "Content-Type: text/html; charset=utf-8",
                          body=html))
    assert m.content_type == "text/html"
    assert m.html is not None and "HIDDEN" in m.html
    assert "Visible text" in m.text
    assert "More bold" in m.text
    assert "HIDDEN" not in m.text
    assert "<p>" not in m.text


def test_plain_text_preferred_over_html() -> None:
    body = (
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain words\r\n"
        "--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html words</p>\r\n--B--\r\n"
    )
    m = parse(raw_message("From: a@client.example", "MIME-Version: 1.0",
                          'Content-Type: multipart/alternative; boundary="B"', body=body))
    assert m.content_type == "multipart/alternative"
    assert m.text == "plain words"


def test_unknown_charset_does_not_raise_and_records_defect() -> None:
    raw = b"From: a@client.example\r\nContent-Type: text/plain; charset=uft-8\r\n\r\nhello caf\xc3\xa9\r\n"
    m = parse(raw)
    assert "hello" in m.text
    assert any("uft-8" in d for d in m.defects)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"\r\n\r\n",
        b"no headers at all, just text",
        b"From: \xff\xfe\r\nSubject: \x80\r\n\r\n\xff",
        b"Content-Type: multipart/mixed; boundary=\"X\"\r\n\r\n--X\r\nContent-Type: text/plain\r\n",  # unterminated
        b"Content-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!",
        b"Subject: =?x-unknown?q?abc?=\r\n\r\nbody",
    ],
)
def test_garbage_never_raises(raw: bytes) -> None:
    m = parse(raw)
    assert m.raw == raw
    assert "\x00" not in m.text
    assert m.dedupe_key
    assert "\n" not in m.subject


def test_empty_bytes() -> None:
    m = parse(b"")
    assert m.sender.addr == ""
    assert m.subject == ""
    assert m.text == ""
    assert m.message_id is None
    assert m.attachments == ()
    assert m.dedupe_key.startswith("-|")


# --- attachments ------------------------------------------------------------------------------------------------


def _attachment_part(name_param: str, data: bytes, ctype: str = "application/octet-stream") -> str:
    b64 = base64.b64encode(data).decode()
    return (
        f"--XYZ\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; {name_param}\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
    )


def _with_attachments(*parts: str) -> bytes:
    body = "--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n" + "".join(parts) + "--XYZ--\r\n"
    return raw_message("From: a@client.example", "Subject: files", "MIME-Version: 1.0",
                       'Content-Type: multipart/mixed; boundary="XYZ"', body=body)


@pytest.mark.parametrize(
    ("name_param", "data", "ctype", "filename"),
    [
        ('filename="../../etc/passwd"', b"root:x:0:0\n", "application/octet-stream", "passwd"),
        ('filename="..\\\\..\\\\windows\\\\win.ini"', b"abc", "application/octet-stream", "win.ini"),
        ('filename="=?utf-8?q?evil=0D=0Aname.txt?="', b"12345", "text/plain", "evil name.txt"),
        ('filename=".."', b"xyz", "image/png", "attachment-1.png"),
        ('filename="..hidden"', b"h", "application/octet-stream", "hidden"),
        ('filename="a<b>c:d|e?.txt"', b"q", "text/plain", "a_b_c_d_e_.txt"),
        ('filename="report.pdf"', b"%PDF-1.4" + b"\x00" * 1000, "application/pdf", "report.pdf"),
        ('filename="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="', bytes(range(256)), "application/pdf", "résumé.pdf"),
    ],
)
def test_attachment_names_sanitised_and_sizes_exact(name_param: str, data: bytes, ctype: str, filename: str) -> None:
    m = parse(_with_attachments(_attachment_part(name_param, data, ctype)))
    assert m.text == "see attached"
    assert [(a.filename, a.content_type, a.size) for a in m.attachments] == [(filename, ctype, len(data))]
    assert m.attachments[0].data == data


def test_several_attachments_keep_order_and_sizes() -> None:
    m = parse(_with_attachments(
        _attachment_part('filename="one.bin"', b"1" * 10),
        _attachment_part('filename="../two.bin"', b"2" * 2000),
        _attachment_part('filename="three.bin"', b""),
    ))
    assert [(a.filename, a.size) for a in m.attachments] == [("one.bin", 10), ("two.bin", 2000), ("three.bin", 0)]


EMPTY_NAMES = ['filename=""', 'filename="=?utf-8?q?=0D=0A?="', 'filename="   "']


@pytest.mark.parametrize("name_param", EMPTY_NAMES)
def test_empty_attachment_name_is_replaced(name_param: str) -> None:
    m = parse(_with_attachments(_attachment_part(name_param, b"%PDF-1.4", "application/pdf")))
    (att,) = m.attachments
    assert att.size == 8
    assert att.filename.strip()
    assert not any(c in att.filename for c in "/\\\r\n\x00")


@pytest.mark.parametrize("name_param", EMPTY_NAMES)
def test_empty_attachment_name_gets_stable_fallback(name_param: str) -> None:
    raw = _with_attachments(_attachment_part(name_param, b"%PDF-1.4", "application/pdf"))
    first, second = parse(raw), parse(raw)
    assert first.attachments[0].filename == second.attachments[0].filename == "attachment-1.pdf"


@pytest.mark.parametrize(
    ("name", "index", "ctype", "expected"),
    [
        ("", 1, "application/pdf", "attachment-1.pdf"),
        ("", 2, "image/jpeg", "attachment-2.jpg"),
        ("", 3, "application/x-unknown", "attachment-3.bin"),
        ("../../etc/passwd", 1, "", "passwd"),
        ("C:\\Users\\x\\evil.exe", 1, "", "evil.exe"),
        ("a\r\nb.txt", 1, "", "a b.txt"),
        ("a\x00b.txt", 1, "", "ab.txt"),
        ("...", 4, "text/plain", "attachment-4.txt"),
        ("x" * 300 + ".pdf", 1, "", "x" * 170 + ".pdf"),
        ("y" * 300, 1, "", "y" * 180),
    ],
)
def test_sanitize_filename(name: str, index: int, ctype: str, expected: str) -> None:
    assert sanitize_filename(name, index, ctype) == expected


# --- dates --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_header", "expected"),
    [
        (None, None),
        ("Tue, 03 Mar 2026 10:15:00 +0100", dt.datetime(2026, 3, 3, 9, 15, tzinfo=dt.UTC)),
        ("Tue, 03 Mar 2026 10:15:00 -0500", dt.datetime(2026, 3, 3, 15, 15, tzinfo=dt.UTC)),
        ("Tue, 03 Mar 2026 10:15:00 +0000", dt.datetime(2026, 3, 3, 10, 15, tzinfo=dt.UTC)),
        ("Tue, 03 Mar 2026 10:15:00 -0000", dt.datetime(2026, 3, 3, 10, 15, tzinfo=dt.UTC)),
        ("Tue, 03 Mar 2026 10:15:00 GMT", dt.datetime(2026, 3, 3, 10, 15, tzinfo=dt.UTC)),
        ("Sun, 29 Mar 2026 02:30:00 +0100", dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)),
        ("not a date", None),
        ("", None),
    ],
)
def test_date(date_header: str | None, expected: dt.datetime | None) -> None:
    headers = ["From: a@client.example", "Subject: x"]
    if date_header is not None:
        headers.append(f"Date: {date_header}")
    got = parse(raw_message(*headers)).date
    assert got == expected
    if got is not None:
        assert got.utcoffset() == dt.timedelta(0)


# --- Message-IDs and threading ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("<a@x> <b@y>", ("a@x", "b@y")),
        ("<a@x>\r\n\t<b@y>", ("a@x", "b@y")),
        ("<a@x>,<b@y>", ("a@x", "b@y")),
        ("<a@x> <a@x>", ("a@x",)),
        ("a@x", ("a@x",)),
        ("  <a@x>  ", ("a@x",)),
        ("", ()),
        ("garbage", ()),
        ("<>", ()),
        ("<no-at-sign>", ("no-at-sign",)),
        ("comment (x) <c@z>", ("c@z",)),
    ],
)
def test_message_ids(value: str, ids: tuple[str, ...]) -> None:
    assert message_ids(value) == ids


@pytest.mark.parametrize(
    ("in_reply_to", "references", "thread_ids"),
    [
        ("<c@x>", "<a@x> <b@x> <c@x>", ("c@x", "b@x", "a@x")),
        (None, "<a@x> <b@x> <c@x>", ("c@x", "b@x", "a@x")),
        ("<d@x>", "<a@x> <b@x>", ("d@x", "b@x", "a@x")),
        ("<d@x>", None, ("d@x",)),
        (None, None, ()),
        ("<b@x>", "<a@x> <b@x> <c@x>", ("b@x", "c@x", "a@x")),
    ],
)
def test_thread_ids_nearest_first(
    in_reply_to: str | None, references: str | None, thread_ids: tuple[str, ...]
) -> None:
    headers = ["From: a@client.example", "Subject: x", "Message-ID: <self@x>"]
    if in_reply_to is not None:
        headers.append(f"In-Reply-To: {in_reply_to}")
    if references is not None:
        headers.append(f"References: {references}")
    m = parse(raw_message(*headers))
    assert m.message_id == "self@x"
    assert m.thread_ids == thread_ids


# --- dedupe key ---------------------------------------------------------------------------------------------------

BASE = raw_message(
    "Return-Path: <a@client.example>",
    "Received: from mx1.example by mx2.example; Tue, 03 Mar 2026 10:15:01 +0000",
    "From: A <a@client.example>",
    "To: support@example.com",
    "Subject: Printer",
    "Date: Tue, 03 Mar 2026 10:15:00 +0000",
    "Message-ID: <abc@client.example>",
    body="The printer is on fire.\r\n",
)


def test_dedupe_same_bytes_same_key() -> None:
    assert dedupe_key(BASE) == dedupe_key(bytes(BASE)) == parse(BASE).dedupe_key
    assert dedupe_key(BASE).startswith("abc@client.example|")


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("other-received", BASE.replace(b"mx1.example by mx2.example", b"relay.example by mx9.example")),
        ("extra-received", b"Received: from elsewhere; Tue, 03 Mar 2026 10:16:00 +0000\r\n" + BASE),
        ("other-return-path", BASE.replace(b"Return-Path: <a@client.example>", b"Return-Path: <bounce@x.example>")),
        ("extra-delivered-to", b"Delivered-To: support@example.com\r\n" + BASE),
        ("lf-line-endings", BASE.replace(b"\r\n", b"\n")),
        ("trailing-blank-lines", BASE + b"\r\n\r\n"),
    ],
)
def test_dedupe_ignores_transport_differences(name: str, other: bytes) -> None:
    assert other != BASE
    assert dedupe_key(other) == dedupe_key(BASE)


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("different-body", BASE.replace(b"on fire", b"out of paper")),
        ("different-subject", BASE.replace(b"Subject: Printer", b"Subject: Scanner")),
        ("different-from", BASE.replace(b"From: A <a@client.example>", b"From: B <b@client.example>")),
        ("different-date", BASE.replace(b"10:15:00 +0000\r\nMessage", b"10:16:00 +0000\r\nMessage")),
    ],
)
def test_dedupe_same_message_id_different_content(name: str, other: bytes) -> None:
    assert other != BASE
    assert dedupe_key(other) != dedupe_key(BASE)
    assert dedupe_key(other).split("|")[0] == dedupe_key(BASE).split("|")[0] == "abc@client.example"


def test_dedupe_without_message_id() -> None:
    raw = BASE.replace(b"Message-ID: <abc@client.example>\r\n", b"")
    assert b"Message-ID" not in raw
    key = dedupe_key(raw)
    assert key.startswith("-|")
    assert key != dedupe_key(BASE)
    assert parse(raw).message_id is None


# --- compose ----------------------------------------------------------------------------------------------------


def _outgoing(**overrides: object) -> Outgoing:
    values: dict[str, object] = {
        "from_address": "Support <support@example.com>",
        "to": ("Client <client@client.example>",),
        "subject": "[CASE-000001] Printer",
        "text": "Your case is CASE-000001.\n",
        "message_id": "casebot.1@example.com",
        "in_reply_to": "orig@client.example",
        "references": ("root@client.example", "orig@client.example"),
        "date": dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC),
    }
    values.update(overrides)
    return Outgoing(**values)  # type: ignore[arg-type]


def test_compose_parses_back() -> None:
    raw = compose(_outgoing())
    m = parse(raw)
    assert m.sender == Address("Support", "support@example.com")
    assert [a.addr for a in m.to] == ["client@client.example"]
    assert m.subject == "[CASE-000001] Printer"
    assert m.message_id == "casebot.1@example.com"
    assert m.in_reply_to == ("orig@client.example",)
    assert m.references == ("root@client.example", "orig@client.example")
    assert m.date == dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)
    assert m.text == "Your case is CASE-000001."
    assert m.header("auto-submitted") == "auto-replied"
    assert m.header("x-auto-response-suppress") == "All"
    assert m.defects == ()


def test_compose_without_threading_headers() -> None:
    m = parse(compose(_outgoing(in_reply_to=None, references=())))
    assert m.in_reply_to == ()
    assert m.references == ()
    assert "in-reply-to" not in m.headers
    assert "references" not in m.headers


def test_compose_trims_long_reference_chains() -> None:
    chain = tuple(f"m{i}@x" for i in range(30))
    m = parse(compose(_outgoing(references=chain)))
    assert m.references == (chain[0], *chain[-19:])


def test_compose_with_html_alternative() -> None:
    m = parse(compose(_outgoing(html="<p>Hello <b>there</b></p>")))
    assert m.content_type == "multipart/alternative"
    assert m.html is not None and "<b>there</b>" in m.html


@pytest.mark.parametrize(
    "field",
    [
        {"subject": "Hello\r\nBcc: x@evil.example"},
        {"subject": "Hello\nBcc: x@evil.example"},
        {"subject": "Hello\rBcc: x@evil.example"},
        {"to": ("client@client.example\r\nBcc: x@evil.example",)},
        {"from_address": "Support <support@example.com>\r\nBcc: x@evil.example"},
        {"in_reply_to": "orig@client.example>\r\nBcc: x@evil.example"},
        {"references": ("a@x\r\nBcc: x@evil.example",)},
        {"headers": (("X-Casebot-Reference", "CASE-000001\r\nBcc: x@evil.example"),)},
    ],
)
def test_compose_header_injection_impossible(field: dict[str, object]) -> None:
    raw = compose(_outgoing(**field))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_all("Bcc") is None
    assert "bcc" not in parse(raw).headers
    assert b"\r\nBcc:" not in raw and b"\nBcc:" not in raw


def test_compose_subject_injection_stays_in_subject() -> None:
    m = parse(compose(_outgoing(subject="Hello\r\nBcc: x@evil.example")))
    assert m.subject == "Hello Bcc: x@evil.example"


def test_compose_non_ascii_subject_round_trips() -> None:
    subject = "Café ☕ " + "long " * 30
    m = parse(compose(_outgoing(subject=subject)))
    assert m.subject == subject.strip()


def test_make_message_id_is_stable_per_key() -> None:
    a = mail.make_message_id("example.com", "ack:1")
    assert a == mail.make_message_id("example.com", "ack:1")
    assert a != mail.make_message_id("example.com", "ack:2")
    assert a.endswith("@example.com")
    assert mail.make_message_id("", "ack:1").endswith("@casebot.invalid")


# --- visible body -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "visible"),
    [
        ("Thanks\n\n> quoted\nmore", 4000, "Thanks\n\nmore"),
        ("New words\nOn Tue, 3 Mar 2026, Bob <bob@x> wrote:\n> old\nold tail", 4000, "New words"),
        ("Top\n-----Original Message-----\nFrom: x\nproduction down", 4000, "Top"),
        ("Top\n----- Original Message -----\nold", 4000, "Top"),
        ("Top\nFrom: Bob <bob@x>\nSent: Monday\nold", 4000, "Top"),
        ("  > indented quote\nkept", 4000, "kept"),
        (">>> deep\n> one\nmine", 4000, "mine"),
        ("abcdefghij", 4, "abcd"),
        ("", 100, ""),
    ],
)
def test_visible_body(text: str, limit: int, visible: str) -> None:
    m = parse(raw_message("From: a@client.example", "Subject: x", body=text.replace("\n", "\r\n")))
    assert visible_body(m, limit) == visible


def test_multipart_without_boundary_still_shows_the_body() -> None:
    raw = (
        b"From: a@client.example\r\nTo: support@example.com\r\nSubject: no boundary\r\n"
        b"Message-ID: <nb@client.example>\r\nContent-Type: multipart/mixed\r\n\r\n"
        b"Our invoices page shows the wrong totals.\r\n"
    )
    m = parse(raw)
    assert "wrong totals" in m.text
    assert any("raw body" in d for d in m.defects)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("invoice_\u202efdp.exe", "invoice_fdp.exe"),  # RIGHT-TO-LEFT OVERRIDE: shown as "invoice_exe.pdf"
        ("re\u200bport\u2066.pdf\u2069", "report.pdf"),
        ("\ufeffnotes.txt", "notes.txt"),
        ("..\\..\\windows\\evil.dll", "evil.dll"),
        ("a\x07b.txt", "ab.txt"),  # control characters go with the header decoding
    ],
)
def test_attachment_names_lose_bidi_and_format_characters(given: str, expected: str) -> None:
    assert sanitize_filename(given, 1) == expected
