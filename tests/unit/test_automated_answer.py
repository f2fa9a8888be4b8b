"""Bounces, delivery reports and auto-replies through the whole decision chain (loop_guard -> automated_answer),
with a fake `Lookup`: on the case of the mail they answer, or kept without a case; never a case of their own,
never a priority, never an acknowledgement; a person's forwarded bounce is still a person's mail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from casebot.case import Status
from casebot.config import from_mapping
from casebot.mail import parse
from casebot.pipeline import CaseView, Incoming, Lookup, PipelineConfig, Verdict, run_chain
from casebot.refs import ReferenceFormat
from casebot.service import load_patterns, load_rules

NOW = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)
OWN = "support@example.com"
ACK_ID = "casebot.0123456789abcdef01234567@example.com"
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = from_mapping({"mailbox": {"kind": "pipe"}})
CONFIG = PipelineConfig(reference_format=ReferenceFormat(), own_addresses=frozenset({OWN}),
                        public_domains=frozenset({"gmail.com"}), rules=load_rules(ROOT / "config" / "priority.toml"),
                        automated=load_patterns(SETTINGS))
OPEN = CaseView("CASE-000001", Status.OPEN, "dana@client.example", frozenset({"dana@client.example"}), id=1)
CLOSED = CaseView("CASE-000001", Status.CLOSED, "dana@client.example", frozenset({"dana@client.example"}), id=1)


@dataclass
class Cases:
    """The store's answers: which case holds (or sent) a Message-ID, and which ids casebot sent."""

    by_id: dict[str, CaseView] = field(default_factory=dict)
    own: set[str] = field(default_factory=set)

    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        return next((self.by_id[m] for m in message_ids if m in self.by_id), None)

    def case_view(self, reference: str) -> CaseView | None:
        return next((c for c in self.by_id.values() if c.reference == reference), None)

    def is_own_message_id(self, message_id: str) -> bool:
        return message_id in self.own

    def acks_to(self, *args: object) -> int:
        return 0

    def acks_for_sender(self, *args: object) -> int:
        return 0


def ours(case: CaseView = OPEN) -> Cases:
    return Cases({ACK_ID: case, "dana-1@client.example": case}, {ACK_ID})


def run(raw: bytes, cases: Cases | None = None) -> Verdict:
    return run_chain(Incoming(parse(raw), NOW, CONFIG, cast(Lookup, cases or Cases())))


def step(verdict: Verdict, name: str) -> dict[str, object]:
    return next(t for t in verdict.trace if t["step"] == name)


def dsn(original: str, action: str = "failed", status: str = "5.1.1") -> bytes:
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.client.example>\r\nTo: {OWN}\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.client.example>\r\n"
            "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.client.example\r\n\r\n"
            f"Final-Recipient: rfc822; dana@client.example\r\nAction: {action}\r\nStatus: {status}\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
            "--B\r\nContent-Type: message/rfc822\r\n\r\n"
            f"From: {OWN}\r\nTo: dana@client.example\r\nSubject: [CASE-000001] Production down\r\n"
            f"Message-ID: <{original}>\r\n\r\nOur production system is down, data loss, security breach!\r\n"
            "--B--\r\n").encode()


def ooo(in_reply_to: str | None, subject: str = "Automatic reply: [CASE-000001] Production down",
        sender: str = "dana@client.example") -> bytes:
    thread = f"In-Reply-To: <{in_reply_to}>\r\n" if in_reply_to else ""
    return (f"From: Dana <{sender}>\r\nTo: {OWN}\r\nSubject: {subject}\r\nMessage-ID: <ooo1@client.example>\r\n"
            f"{thread}Auto-Submitted: auto-replied\r\n\r\nI am out of the office until Monday.\r\n").encode()


def test_dsn_for_our_acknowledgement_lands_on_its_case_with_evidence_and_no_priority() -> None:
    v = run(dsn(ACK_ID), ours())
    assert step(v, "loop_guard")["why"] == f"DSN: 5.1.1 for dana@client.example, original <{ACK_ID}>"
    assert v.origin.answer == "dsn" and v.origin.bounced == ACK_ID
    assert v.placement.case == OPEN and not v.placement.caseless and not v.opens_case
    assert v.triage.priority is None  # "data loss" in the embedded mail is not the client's word
    assert [t["step"] for t in v.trace][-1] == "automated_answer" and v.ack.send is False
    assert step(v, "automated_answer")["reference"] == "CASE-000001"


def test_dsn_for_mail_casebot_never_sent_is_kept_without_a_case() -> None:
    v = run(dsn("someone-else@elsewhere.example"), ours())
    assert v.origin.answer == "dsn" and v.origin.bounced is None
    assert v.placement.case is None and v.placement.caseless and not v.opens_case
    assert "answers nothing casebot has" in v.placement.caseless


def test_bounce_of_our_mail_to_a_closed_case_still_lands_there() -> None:
    v = run(dsn(ACK_ID), ours(CLOSED))
    assert v.placement.case == CLOSED and v.placement.linked_to is None and not v.opens_case


def test_delayed_dsn_is_stored_on_the_case_but_bounces_nothing() -> None:
    v = run(dsn(ACK_ID, action="delayed", status="4.4.7"), ours())
    assert v.placement.case == OPEN and v.origin.bounced is None
    assert str(step(v, "loop_guard")["why"]).startswith("DSN (delayed): 4.4.7")


def test_out_of_office_to_our_acknowledgement_is_stored_on_that_case() -> None:
    v = run(ooo(ACK_ID), ours())
    assert (v.origin.answer, v.origin.bounced) == ("auto-reply", None)
    assert v.placement.case == OPEN and v.triage.priority is None and v.ack.send is False


def test_out_of_office_on_a_closed_case_is_not_a_new_linked_case() -> None:
    v = run(ooo(ACK_ID), ours(CLOSED))
    assert v.placement.case == CLOSED and v.placement.linked_to is None


def test_out_of_office_to_a_staff_members_own_mail_is_kept_without_a_case() -> None:
    v = run(ooo("private-42@staff.example", subject="Out of office: lunch on Friday?"), ours())
    assert v.placement.case is None and v.placement.caseless and not v.opens_case


def test_a_strangers_auto_reply_quoting_a_reference_reaches_no_case() -> None:
    v = run(ooo(None, sender="mallory@elsewhere.example"), ours())
    assert v.placement.case is None and v.placement.linked_to is None and v.placement.caseless


def test_mdn_of_our_mail_is_stored_on_the_case_and_bounces_nothing() -> None:
    raw = (f"From: dana@client.example\r\nTo: {OWN}\r\nSubject: Read: [CASE-000001] Production down\r\n"
           'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary="B"'
           "\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nDisplayed.\r\n"
           "--B\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: client.example\r\n"
           f"Original-Message-ID: <{ACK_ID}>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n"
           "--B--\r\n").encode()
    v = run(raw, ours())
    assert v.origin.answer == "mdn" and v.origin.bounced is None and v.placement.case == OPEN
    assert str(step(v, "loop_guard")["why"]).startswith("MDN (read receipt): manual-action")


def test_list_mail_is_automated_but_still_opens_a_case() -> None:
    raw = (f"From: news@lists.example\r\nTo: {OWN}\r\nSubject: Weekly news\r\nList-Id: <news.lists.example>\r\n"
           "\r\nThis week...\r\n").encode()
    v = run(raw)
    assert v.origin.automated and v.origin.answer is None and v.opens_case


def test_a_persons_forwarded_bounce_is_a_persons_mail() -> None:
    """A client forwards the bounce they got: flufl.bounce would call it a bounce, the loop guard never asks."""
    raw = (b"From: Dana <dana@client.example>\r\nTo: support@example.com\r\nSubject: Fwd: why did this bounce?\r\n"
           b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="F"\r\n\r\n'
           b"--F\r\nContent-Type: text/plain\r\n\r\nMy mail to you bounced, production is down!\r\n"
           b"--F\r\nContent-Type: message/rfc822\r\n\r\n" + dsn("dana-1@client.example") + b"--F--\r\n")
    v = run(raw, ours())
    assert v.origin.automated is None and v.origin.answer is None
    assert v.opens_case and v.triage.priority == "critical" and v.ack.send is True
