"""SMTP pipelining (RFC 2920) against the real aiosmtpd sink: used where the server offers it, not otherwise.

The sink records, at each MAIL FROM, whether the client's DATA command had already arrived, which is what
pipelining means on the wire. Failures come out as without pipelining: a refused recipient fails its mail and
the connection goes on with the next one, a 451 after the data is retried, dot-stuffing and SMTPUTF8 hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from cbtest import Harness, make_mail, quiet_logs, settings_mapping
from servers import ImapAccount, SmtpSink

from casebot.config import from_mapping
from casebot.smtp import SmtpSender
from casebot.transport import PermanentSendError, TransientSendError


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


class Utf8Sink(SmtpSink):
    controller_kwargs: ClassVar[dict[str, Any]] = {"enable_SMTPUTF8": True}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = Utf8Sink().start()
    s.pipelining = True
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def h(imap_account: ImapAccount, sink: SmtpSink, sqlite_url: str) -> Iterator[Harness]:
    harness = Harness(imap_account, sink, sqlite_url, overrides={"outgoing": {"retry_base": 0.1, "retry_max": 0.5}})
    try:
        yield harness
    finally:
        harness.close()


def sender(sink: SmtpSink, **outgoing: Any) -> SmtpSender:
    mapping = settings_mapping(imap_host="127.0.0.1", imap_port=1, imap_user="u", smtp_host=sink.host,
                               smtp_port=sink.port, db_url="sqlite://")
    mapping["outgoing"].update(outgoing)
    return SmtpSender(from_mapping(mapping).outgoing, None)


def clients(h: Harness, *names: str) -> None:
    h.append(*(make_mail(f"{n}@client.example", f"Question from {n}") for n in names))


def test_acknowledgements_go_out_pipelined_over_one_connection(h: Harness) -> None:
    clients(h, "ann", "ben", "cat")
    assert h.poll().deliver.sent == 3
    assert h.sink.pipelined == [True, True, True]
    assert sorted(m.rcpt_tos[0] for m in h.sink.messages) == [f"{n}@client.example" for n in ("ann", "ben", "cat")]


def test_pipelining_false_sends_one_command_at_a_time(h: Harness) -> None:
    clients(h, "ann", "ben")
    assert h.poll(outgoing={"pipelining": False}).deliver.sent == 2
    assert h.sink.pipelined == [False, False]


def test_without_the_servers_offer_nothing_is_pipelined(h: Harness) -> None:
    h.sink.pipelining = False
    clients(h, "ann", "ben")
    assert h.poll().deliver.sent == 2
    assert h.sink.pipelined == [False, False]


def test_a_refused_recipient_fails_its_mail_and_the_next_mail_still_goes(h: Harness) -> None:
    h.sink.refuse["ben@client.example"] = "550 5.1.1 no such user"
    clients(h, "ann", "ben", "cat")
    result = h.poll().deliver
    assert (result.sent, result.failed) == (2, 1)
    assert sorted(m.rcpt_tos[0] for m in h.sink.messages) == ["ann@client.example", "cat@client.example"]
    assert all(h.sink.pipelined)
    failed = [row for c in h.cases() for row in h.detail(c.reference)["outbox"] if row["status"] == "failed"]
    assert [(r["to"], "550" in (r["last_error"] or "")) for r in failed] == [(["ben@client.example"], True)]


def test_a_451_after_the_data_is_retried_and_sent_once(h: Harness) -> None:
    h.sink.fail_next(1)
    clients(h, "ann", "ben")
    first = h.poll().deliver
    assert (first.sent, first.retried) == (1, 1)
    h.advance(1)
    assert h.poll().deliver.sent == 1
    assert sorted(m.rcpt_tos[0] for m in h.sink.messages) == ["ann@client.example", "ben@client.example"]


def test_dot_stuffing_and_several_recipients(sink: SmtpSink) -> None:
    raw = (b"From: support@example.com\r\nTo: a@client.example\r\nSubject: dots\r\n\r\n"
           b"line one\r\n.\r\n..two dots\r\n.three\r\nlast line")
    s = sender(sink)
    try:
        assert s.send("support@example.com", ["a@client.example", "b@client.example"], raw, "k1") == ""
    finally:
        s.close()
    got = sink.messages[0]
    assert got.rcpt_tos == ["a@client.example", "b@client.example"]
    assert got.content.replace(b"\r\n", b"\n").rstrip(b"\n") == raw.replace(b"\r\n", b"\n")
    assert sink.pipelined == [True]


def test_one_refused_of_two_recipients_is_reported_and_the_other_gets_it(sink: SmtpSink) -> None:
    sink.refuse["b@client.example"] = "550 5.1.1 no such user"
    s = sender(sink)
    try:
        note = s.send("support@example.com", ["a@client.example", "b@client.example"], b"Subject: x\r\n\r\nhi\r\n", "k")
        with pytest.raises(PermanentSendError, match="550"):
            s.send("support@example.com", ["b@client.example"], b"Subject: y\r\n\r\nhi\r\n", "k2")
        sink.fail_next(1)
        with pytest.raises(TransientSendError, match="451"):
            s.send("support@example.com", ["a@client.example"], b"Subject: z\r\n\r\nhi\r\n", "k3")
        assert s.send("support@example.com", ["a@client.example"], b"Subject: w\r\n\r\nhi\r\n", "k4") == ""
    finally:
        s.close()
    assert "b@client.example" in note and "550" in note
    assert [m.rcpt_tos for m in sink.messages] == [["a@client.example"], ["a@client.example"]]
    assert sink.pipelined == [True, True, True, True]


def test_smtputf8_envelope_pipelined(sink: SmtpSink) -> None:
    s = sender(sink)
    try:
        s.send("support@example.com", ["josé@client.example"], "Subject: é\r\n\r\nolá\r\n".encode(), "k")
    finally:
        s.close()
    assert sink.messages[0].rcpt_tos == ["josé@client.example"]
    assert sink.pipelined == [True]
