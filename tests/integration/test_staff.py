"""Staff are told of each new case by mail, through the outbox, once (Dovecot, the SMTP sink, SQLite/PostgreSQL)."""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from typing import Any

import pytest
from cbtest import Harness, events_of, make_mail, quiet_logs
from servers import ImapAccount, SmtpSink

TEAM = "support-team@example.com"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


@pytest.fixture
def h(imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str) -> Iterator[Harness]:
    harness = Harness(imap_account, smtp_sink, db_url,
                      overrides={"staff": {"notify": TEAM}, "digest": {"enabled": False}})
    yield harness
    harness.close()


def to(h: Harness, address: str) -> list[Any]:
    return [email.message_from_bytes(m.content, policy=email.policy.default)
            for m in h.sink.messages if address in m.rcpt_tos]


def test_new_case_notice_to_staff_once(h: Harness) -> None:
    h.append(make_mail("Alice Client <alice@client.example>", "Production down",
                       body="Our production system is down since 9.\n"))
    h.poll()
    h.poll()  # a second pass sends nothing again
    (notice,) = to(h, TEAM)
    assert notice["Subject"] == "[CASE-000001] Production down"
    assert notice["Reply-To"] == notice["From"] == "Example Support <support@example.com>"  # "Reply" comes back
    text = notice.get_content()
    assert "Our production system is down since 9." in text and "alice@client.example" in text
    assert "Critical" in text
    detail = h.detail("CASE-000001")
    assert len(events_of(detail, "notice.queued")) == 1
    assert {o["kind"] for o in detail["outbox"]} == {"ack", "notice"}


def test_no_notice_for_an_automated_mail(h: Harness) -> None:
    h.append(make_mail("bot@client.example", "Out of office", headers=[("Auto-Submitted", "auto-replied")]))
    h.poll()
    assert to(h, TEAM) == []
    (case,) = h.cases()
    assert events_of(h.detail(case.reference), "notice.suppressed")
