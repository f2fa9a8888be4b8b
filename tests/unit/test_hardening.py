"""Regression tests for hostile or broken input found in review: each names the attack or breakage it stops."""

from __future__ import annotations

import datetime as dt

import pytest

from casebot import cli, mail
from casebot.case import Priority
from casebot.pipeline import CaseView, Incoming, PipelineConfig, Verdict, run_chain
from casebot.refs import ReferenceFormat
from casebot.rules import PriorityRule

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


class Lookup:
    def __init__(self, acks_to: int = 0, acks_for_sender: int = 0) -> None:
        self._to, self._sender = acks_to, acks_for_sender

    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        return None

    def case_view(self, reference: str) -> CaseView | None:
        return None

    def is_own_message_id(self, message_id: str) -> bool:
        return False

    def acks_to(self, address: str, since: dt.datetime, until: dt.datetime) -> int:
        return self._to

    def acks_for_sender(self, sender: str, since: dt.datetime, until: dt.datetime) -> int:
        return self._sender


def run(raw: bytes, lookup: Lookup | None = None) -> Verdict:
    config = PipelineConfig(
        reference_format=ReferenceFormat(), own_addresses=frozenset({"support@example.com"}),
        public_domains=frozenset({"gmail.com"}), rules=(PriorityRule("q", Priority("low"), ("question",)),),
        ack_rate_limit=3,
    )
    return run_chain(Incoming(mail.parse(raw), NOW, config, lookup or Lookup()))


@pytest.mark.parametrize(
    ("from_header", "expected"),
    [
        ("mallory@evil.example (Alice <alice@corp.example>)", "mallory@evil.example"),
        ("<mallory@evil.example> (=?utf-8?q?=3Calice@corp.example=3E?=)", "mallory@evil.example"),
        ('"Alice (Sales)" <alice@corp.example>', "alice@corp.example"),
        ("alice@corp.example (Alice Smith)", "alice@corp.example"),
    ],
)
def test_a_comment_never_supplies_the_sender(from_header: str, expected: str) -> None:
    m = mail.parse(f"From: {from_header}\r\nSubject: x\r\n\r\nbody\r\n".encode())
    assert m.sender.addr == expected


def test_raw_utf8_headers_are_read_as_utf8() -> None:
    m = mail.parse("From: Jürgen <j@client.example>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode())
    assert m.subject == "Grüße"
    assert m.sender.name == "Jürgen"


def test_control_characters_never_reach_a_message_id() -> None:
    m = mail.parse(b"From: a@client.example\r\nMessage-ID: <a\x00b@x>\r\nIn-Reply-To: <c\x01d@y>\r\n\r\nbody\r\n")
    assert m.message_id == "ab@x"
    assert m.in_reply_to == ("cd@y",)


def test_a_five_thousand_digit_reference_is_no_reference() -> None:
    assert ReferenceFormat().find("Re: [CASE-" + "1" * 5000 + "] help") == []


def test_empty_return_path_means_no_acknowledgement() -> None:
    ctx = run(b"Return-Path: <>\r\nFrom: vacation@other.example\r\nSubject: I am away\r\n\r\nback soon\r\n")
    assert ctx.origin.automated == "null envelope sender (Return-Path: <>)"
    # An automatic answer to nothing casebot has: kept without a case (pipeline step automated_answer).
    assert not ctx.ack.send and not ctx.opens_case and ctx.placement.caseless


def test_rate_limit_counts_per_sender_whatever_the_reply_to() -> None:
    raw = b"From: spammer@evil.example\r\nReply-To: victim9@target.example\r\nSubject: hi\r\n\r\nbody\r\n"
    assert run(raw, Lookup(acks_to=0, acks_for_sender=2)).ack.send
    ctx = run(raw, Lookup(acks_to=0, acks_for_sender=3))
    assert not ctx.ack.send and "spammer@evil.example" in ctx.ack.why


def test_an_internationalised_address_composes() -> None:
    out = mail.Outgoing(
        from_address="Support <support@example.com>", to=("jürgen@example.de",), subject="[CASE-000001] Grüße",
        text="Hallo", message_id="casebot.x@example.com", date=NOW,
    )
    raw = mail.compose(out)
    back = mail.parse(raw)
    assert back.to[0].addr == "jürgen@example.de"
    assert back.subject == "[CASE-000001] Grüße"


def test_usage_errors_exit_64(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 64
    with pytest.raises(SystemExit) as exc:
        cli.main(["cases", "list", "--status", "bogus"])
    assert exc.value.code == 64
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "hidden",
    [
        "<span hidden>security breach</span>",
        '<div style="visibility:hidden">security breach</div>',
        '<div style="display:none !important">security breach</div>',
        '<div style="font-size:0">security breach</div>',
        '<div style="FONT-SIZE: 0px; color:#fff">security breach</div>',
        "<template>security breach</template>",
        "<noscript>security breach</noscript>",
    ],
)
def test_hidden_html_cannot_raise_priority(hidden: str) -> None:
    raw = (
        "From: a@client.example\r\nSubject: hello there\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body><p>How do I change my password?</p>{hidden}</body></html>\r\n"
    ).encode()
    m = mail.parse(raw)
    assert "security breach" not in m.text
    assert "change my password" in m.text
