"""Addresses that cannot be written get no mail; internationalised ones are written correctly (issue 8 item 4).

`a@b@c`, raw bytes that are not UTF-8, a missing domain or control characters: no acknowledgement, the reason in
the trace. `user@bücher.example`: the domain as an A-label in the To header and the envelope, the display name an
encoded word, never an encoded word around the addr-spec; a non-ASCII local part is raw UTF-8 (RFC 6532).
"""

from __future__ import annotations

import email
import email.policy

import pytest

from casebot import mail
from casebot.mail import Outgoing, compose, envelope_address, needs_smtputf8, parse_addresses
from casebot.mail.address import address_problem, ascii_domain

UNWRITABLE = [
    ("a@b@c", "more than one @"),
    ("<a@b@c.example>", "more than one @"),
    ("<user@>", "no domain"),
    ("<@example.com>", "no local part"),
    ("Ann <ann\x01x@example.com>", "control or space character U+0001"),
    ("<ann\x7f@example.com>", "control or space character U+007F"),
    ("<a..b@example.com>", "not a dot-atom"),
    ("<.a@example.com>", "not a dot-atom"),
    ("<x@exa!mple.com>", "not a host name"),
    ("<x@a..example>", "not a host name"),
    ("<x@☃.example>", "not a valid internationalised domain"),
    ("<x@[192.0.2.1]>", "domain literal"),
    ("<" + "a" * 65 + "@example.com>", "too long"),
    ("<ann\u202e@example.com>", "U+202E"),
]


@pytest.mark.parametrize(("value", "problem"), UNWRITABLE, ids=[u[0][:30] for u in UNWRITABLE])
def test_unwritable_addresses_keep_their_problem(value: str, problem: str) -> None:
    [found] = parse_addresses(value)
    assert problem in found.problem
    with pytest.raises(ValueError, match="not deliverable"):
        compose(Outgoing("Support <support@example.com>", (value,), "s", "t", "m@x"))


@pytest.mark.parametrize("value", [
    "ann@example.com", "Ann Example <ann@example.com>", "o'brien+tag@example.co.uk", "jörg@bücher.example",
    "user@xn--bcher-kva.example", "user@localhost", "用户@例子.广告", "x@straße.de",
])
def test_writable_addresses_have_no_problem(value: str) -> None:
    [found] = parse_addresses(value)
    assert found.problem == ""


def test_raw_8bit_local_part_that_is_not_utf8_is_refused_but_utf8_is_accepted() -> None:
    latin1 = mail.parse(b"From: j\xf6rg@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
    assert latin1.sender.problem == "raw 8-bit bytes that are not UTF-8"
    utf8 = mail.parse("From: jörg@example.com\r\nSubject: hi\r\n\r\nhello\r\n".encode())
    assert utf8.sender.addr == "jörg@example.com" and utf8.sender.problem == ""


def test_idn_domains_become_a_labels_idna_2008() -> None:
    assert ascii_domain("bücher.example") == "xn--bcher-kva.example"
    assert ascii_domain("BÜCHER.example") == "xn--bcher-kva.example"
    assert ascii_domain("straße.de") == "xn--strae-oqa.de"  # IDNA 2003 would have written strasse.de
    assert envelope_address("user@bücher.example") == "user@xn--bcher-kva.example"
    assert envelope_address("jörg@bücher.example") == "jörg@xn--bcher-kva.example"
    assert not needs_smtputf8("user@xn--bcher-kva.example") and needs_smtputf8("jörg@xn--bcher-kva.example")
    assert address_problem("") == "empty address"


def _to_header(to: str) -> bytes:
    raw = compose(Outgoing("Support <support@example.com>", (to,), "s", "t", "m@x"))
    [line] = [line for line in raw.split(b"\r\n") if line.startswith(b"To:")]
    return line


def test_idn_domain_in_the_to_header_is_punycode_and_the_name_an_encoded_word() -> None:
    line = _to_header("Jörg Müller <joerg@bücher.example>")
    assert line == b"To: =?utf-8?b?SsO2cmcgTcO8bGxlcg==?= <joerg@xn--bcher-kva.example>"
    parsed = email.message_from_bytes(line + b"\r\n\r\n", policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == "Jörg Müller"
    assert parsed["To"].addresses[0].addr_spec == "joerg@xn--bcher-kva.example"


def test_non_ascii_local_part_is_raw_utf8_never_an_encoded_word() -> None:
    line = _to_header("Jörg <jörg@bücher.example>")
    assert line == "To: =?utf-8?b?SsO2cmc=?= <jörg@xn--bcher-kva.example>".encode()
    bare = _to_header("jörg@example.com")
    assert bare == "To: jörg@example.com".encode()
    assert b"=?" not in bare


def test_ascii_addresses_are_written_as_before() -> None:
    assert _to_header("Ann <ann@example.com>") == b"To: Ann <ann@example.com>"
    assert _to_header('"Müller, Jörg" <j@example.com>') == b"To: =?utf-8?b?TcO8bGxlciwgSsO2cmc=?= <j@example.com>"


def test_formatted_never_raises_for_a_non_ascii_address() -> None:
    [found] = parse_addresses("Jörg <jörg@bücher.example>")
    assert found.formatted() == "Jörg <jörg@bücher.example>"
