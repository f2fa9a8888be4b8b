"""Notices (casebot/notices.py): the acknowledgement's variables, key, Message-ID and threading, and line limits."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from casebot.case import Priority
from casebot.config import from_mapping
from casebot.mail import parse
from casebot.notices import ACK, KINDS, Identity, NoticeError, Notices, ack_key, templates_used
from casebot.templates import Templates

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
RAW = (b"From: Client <client@client.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n"
       b"Message-ID: <root@client.example>\r\nReferences: <older@client.example>\r\n\r\nHelp\r\n")


def notices(from_address: str = "Example Support <support@example.com>") -> Notices:
    sla = from_mapping({"mailbox": {"kind": "pipe"}}).sla_policy()
    return Notices(Templates(None, "Europe/London"), Identity.parse(from_address), sla)


def ack(raw: bytes = RAW, n: Notices | None = None) -> email.message.EmailMessage:
    n = n or notices()
    m = parse(raw)
    notice = n.acknowledgement(mail=m, to="client@client.example", reference="CASE-000001", subject=m.subject,
                               priority=Priority.HIGH, deadlines=n.sla.deadlines(Priority.HIGH, NOW), now=NOW)
    assert notice.kind == "ack" and notice.key == ack_key(m.dedupe_key)
    assert notice.envelope_from == "support@example.com" and notice.recipients == ("client@client.example",)
    assert max(len(line) for line in notice.raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(notice.raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    assert msg["Message-ID"] == f"<{notice.message_id}>"
    return msg


def test_every_kind_has_a_template() -> None:
    assert ACK in KINDS and templates_used()[0] == "acknowledgement.txt.j2" and len(templates_used()) == len(KINDS)
    assert len({k.template for k in KINDS}) == len({k.name for k in KINDS}) == len(KINDS)
    Templates(None).check(templates_used())


def test_acknowledgement_threads_and_quotes_the_reference() -> None:
    msg = ack()
    assert msg["Subject"] == "[CASE-000001] Printer on fire"
    assert msg["In-Reply-To"] == "<root@client.example>"
    assert msg["References"] == "<older@client.example> <root@client.example>"
    assert msg["X-Casebot-Reference"] == "CASE-000001" and msg["Auto-Submitted"] == "auto-replied"
    assert msg["From"] == "Example Support <support@example.com>"
    body = msg.get_content()
    assert "CASE-000001" in body and "4 hours" in body and "Example Support" in body


def test_message_id_derives_from_the_key_and_the_sender_domain() -> None:
    first, second = ack(), ack()
    assert first["Message-ID"] == second["Message-ID"]  # the same mail, however often it is built
    assert first["Message-ID"].startswith("<casebot.") and first["Message-ID"].endswith("@example.com>")


@pytest.mark.parametrize(
    "subject",
    ["x" * 1000, ("word " * 250).strip(), "é" * 600, "Ünïcødé " + "y" * 990],
)
def test_long_subjects_stay_within_line_limits(subject: str) -> None:
    raw = RAW.replace(b"Subject: Printer on fire", b"Subject: " + subject.encode())
    msg = ack(raw)
    assert msg["Subject"] == "[CASE-000001] " + " ".join(subject.split())


def test_a_broken_override_template_is_a_notice_error(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "acknowledgement.txt.j2").write_text("Subject: {{ reference }}\n{{ 1 // 0 }}\n", encoding="utf-8")
    base = notices()
    broken = Notices(Templates(folder), base.identity, base.sla)
    m = parse(RAW)
    with pytest.raises(NoticeError, match="ZeroDivisionError"):
        broken.acknowledgement(mail=m, to="client@client.example", reference="CASE-000001", subject=m.subject,
                               priority=Priority.LOW, deadlines=None, now=NOW)
