"""Bounces tied to their case, through the real thing: a client's mail over Dovecot, the acknowledgement through
the aiosmtpd sink, then a DSN for that acknowledgement's Message-ID (stored on the case, the outbox row bounced, no
new case, shown by `casebot cases show`), an unknown bounce (kept without a case, listed by `casebot messages list
--automated`) and an out-of-office to the acknowledgement (stored on the case, nothing changes). SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cbtest import SUPPORT, Harness, bare_id, events_of, make_mail, parse, quiet_logs
from servers import ImapAccount, SmtpSink

from casebot import cli

CLIENT = "dana@client.example"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


@pytest.fixture
def h(imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str) -> Iterator[Harness]:
    harness = Harness(imap_account, smtp_sink, db_url, overrides={"digest": {"enabled": False}})
    yield harness
    harness.close()


def dsn(original_id: str, failed: str = CLIENT, mid: str = "dsn-1@mx.client.example") -> bytes:
    """A Postfix-style RFC 3464 report that returns only the headers of the mail it is about (no In-Reply-To:
    the original is named only inside the report)."""
    return (
        f"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.client.example>\r\nTo: {SUPPORT}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{mid}>\r\n"
        "Date: Tue, 03 Mar 2026 10:05:00 +0000\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. Production down, security breach, data loss.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.client.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nOriginal-Recipient: rfc822;{failed}\r\nAction: failed\r\n"
        f"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <{failed}>: Recipient address rejected: User unknown\r\n"
        "--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Example Support <{SUPPORT}>\r\nTo: {failed}\r\nSubject: [CASE-000001] Printer jammed\r\n"
        f"Message-ID: <{original_id}>\r\n"
        "--R--\r\n"
    ).encode()


def acknowledged(h: Harness) -> tuple[str, dict[str, object]]:
    """A client's mail opens CASE-000001 and its acknowledgement goes out: its Message-ID and the case before."""
    h.append(make_mail(f"Dana <{CLIENT}>", "Printer jammed", message_id="dana-1@client.example"))
    assert h.poll().ingest.counts == {"opened": 1}
    assert h.sink.wait_for(1)
    ack_id = bare_id(parse(h.sink.messages[0].content)["Message-ID"])
    assert ack_id and ack_id.startswith("casebot.")
    return ack_id, h.detail("CASE-000001")


def cli_config(h: Harness, tmp_path: Path) -> str:
    path = tmp_path / "casebot.toml"
    path.write_text(f'[mailbox]\nkind = "pipe"\n[database]\nurl = "{h.db_url}"\n[logging]\nlevel = "error"\n',
                    encoding="utf-8")
    return str(path)


def test_dsn_for_our_acknowledgement_is_stored_on_its_case_and_bounces_the_outbox_row(
        h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ack_id, before = acknowledged(h)
    h.append(dsn(ack_id))
    result = h.poll()

    assert result.errors == [] and result.ingest.counts == {"bounced": 1}
    assert [c.reference for c in h.cases()] == ["CASE-000001"]  # no new case
    d = h.detail("CASE-000001")
    assert (d["status"], d["priority"], d["first_response_due"], d["resolution_due"]) == (
        before["status"], before["priority"], before["first_response_due"], before["resolution_due"])
    bounce = d["messages"][-1]
    assert (bounce["disposition"], bounce["from"]) == ("bounce", "mailer-daemon@mx.client.example")
    assert bounce["automated"] == f"DSN: 5.1.1 for {CLIENT}, original <{ack_id}>"
    (ack,) = [o for o in d["outbox"] if o["kind"] == "ack"]
    assert ack["status"] == "bounced" and ack["bounce_recipient"] == CLIENT and ack["bounced_at"]
    assert ack["bounce_diagnostic"] == f"550 5.1.1 <{CLIENT}>: Recipient address rejected: User unknown"
    assert ack["bounce_message"] == bounce["id"]
    (event,) = events_of(d, "mail.bounced")
    assert (event["message_id"], event["recipient"], event["status"]) == (ack_id, CLIENT, "5.1.1")
    assert not events_of(d, "status.changed") and len(events_of(d, "ack.queued")) == 1
    assert len(h.sink.messages) == 1  # nothing answered the bounce
    assert h.poll().ingest.seen == 0

    cfg = cli_config(h, tmp_path)
    capsys.readouterr()
    assert cli.main(["--config", cfg, "cases", "show", "case-000001"]) == 0
    shown = capsys.readouterr().out
    assert f"ack to {CLIENT}: bounced" in shown
    assert f"{CLIENT}: 550 5.1.1 <{CLIENT}>: Recipient address rejected: User unknown" in shown
    assert cli.main(["--config", cfg, "cases", "show", "CASE-000001", "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert [o["status"] for o in as_json["outbox"] if o["kind"] == "ack"] == ["bounced"]


def test_unknown_bounce_is_kept_without_a_case_and_listed(
        h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h.append(dsn("never-sent@elsewhere.example", failed="someone@elsewhere.example"))
    result = h.poll()

    assert result.errors == [] and result.ingest.counts == {"automated": 1}
    assert h.cases() == [] and h.stored_message_count() == 1
    assert h.sink.messages == [] and h.store.outbox_counts() == {}
    cfg = cli_config(h, tmp_path)
    capsys.readouterr()
    assert cli.main(["--config", cfg, "messages", "list", "--automated"]) == 0
    listed = capsys.readouterr().out
    assert "(no case)" in listed and "mailer-daemon@mx.client.example" in listed
    assert "DSN: 5.1.1 for someone@elsewhere.example, original <never-sent@elsewhere.example>" in listed


def test_out_of_office_to_the_acknowledgement_is_stored_on_the_case_and_changes_nothing(h: Harness) -> None:
    ack_id, before = acknowledged(h)
    h.append(make_mail(f"Dana <{CLIENT}>", "Automatic reply: [CASE-000001] Printer jammed",
                       body="I am out of the office until Monday.\n", in_reply_to=ack_id,
                       headers=[("Auto-Submitted", "auto-replied")]))
    result = h.poll()

    assert result.errors == [] and result.ingest.counts == {"threaded": 1}
    d = h.detail("CASE-000001")
    assert len(h.cases()) == 1 and d["message_count"] == 2
    assert d["messages"][-1]["disposition"] == "automated"
    same = ("status", "priority", "first_response_due", "resolution_due", "updated_at", "participants")
    assert {k: d[k] for k in same} == {k: before[k] for k in same}
    assert [o["status"] for o in d["outbox"]] == ["sent"]  # not bounced
    assert not events_of(d, "status.changed") and not events_of(d, "mail.bounced")
    assert len(h.sink.messages) == 1
