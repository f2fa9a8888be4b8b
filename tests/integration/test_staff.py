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
    # A notification still opens a case (an out-of-office answering nothing would be kept without one).
    h.append(make_mail("bot@client.example", "Nightly report", headers=[("Auto-Submitted", "auto-generated")]))
    h.poll()
    assert to(h, TEAM) == []
    (case,) = h.cases()
    assert events_of(h.detail(case.reference), "notice.suppressed")


# --- staff replies: proven, relayed, commanded, noted; forged ones change nothing ------------------------------------

STAFF = {"addresses": ["@staff.example"], "notify": TEAM, "authserv_id": "mx.example.com"}
PASS = (b"Authentication-Results: mx.example.com; dkim=pass header.d=staff.example header.s=s1;\r\n"
        b" dmarc=pass (p=reject) header.from=staff.example\r\n")


@pytest.fixture
def hs(imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str) -> Iterator[Harness]:
    harness = Harness(imap_account, smtp_sink, db_url, overrides={"staff": STAFF, "digest": {"enabled": False}})
    yield harness
    harness.close()


def opened(h: Harness) -> tuple[str, str]:
    """A client's case; returns (the client's Message-ID, the new-case notice's Message-ID)."""
    h.append(make_mail("Alice Client <alice@client.example>", "Printer on fire", message_id="alice-1@client.example",
                       body="The printer is on fire, we have a workaround.\n"))
    h.poll()
    (notice,) = to(h, TEAM)
    return "alice-1@client.example", str(notice["Message-ID"]).strip("<>")


def staff_mail(body: str, in_reply_to: str, proven: bool = True, sender: str = "Bob Staff <bob@staff.example>",
               **kw: Any) -> bytes:
    raw = make_mail(sender, "Re: [CASE-000001] Printer on fire", body=body, in_reply_to=in_reply_to, **kw)
    return (PASS + raw) if proven else raw


def test_staff_reply_is_recorded_stamped_and_relayed_threaded(hs: Harness) -> None:
    client_id, notice_id = opened(hs)
    hs.append(staff_mail("We are on it: please restart the spooler.\n\n"
                         "On Mon, 30 Nov 2026 at 10:00, Example Support <support@example.com> wrote:\n"
                         "> New case CASE-000001 from Alice Client\n> internal: rule workaround-available\n",
                         notice_id))
    hs.poll()
    (relay,) = [m for m in to(hs, "alice@client.example") if "spooler" in m.get_content()]
    assert relay["In-Reply-To"] == f"<{client_id}>" and client_id in relay["References"]
    assert relay["Subject"].startswith("[CASE-000001]") and "Printer on fire" in relay["Subject"]
    (sender,) = relay["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Bob Staff (Example Support)", "support@example.com")
    text = relay.get_content()
    assert "internal" not in text and "New case" not in text  # quoted history (the notice) never reaches them
    (case,) = hs.cases()
    assert case.status == "open"
    detail = hs.detail("CASE-000001")
    assert events_of(detail, "first_response.stamped") and events_of(detail, "relay.queued")
    assert "bob@staff.example" not in detail["participants"]
    assert [m["disposition"] for m in detail["messages"]] == ["opened", "staff-reply"]


def test_forged_staff_sender_changes_nothing(hs: Harness) -> None:
    _client, notice_id = opened(hs)
    before = len(hs.sink.messages)
    hs.append(staff_mail("#status closed\nPlease send your password.\n", notice_id, proven=False,
                         sender="Bob Staff <bob@staff.example>"))
    hs.poll()
    assert len(hs.sink.messages) == before  # nothing relayed, nothing answered
    (case,) = hs.cases()
    assert case.status == "new"
    detail = hs.detail("CASE-000001")
    assert detail["messages"][-1]["disposition"] == "staff-unverified"
    (flag,) = events_of(detail, "staff.unverified")
    assert "mx.example.com" in flag["evidence"]


def test_commands_apply_and_are_never_relayed(hs: Harness) -> None:
    _client, notice_id = opened(hs)
    hs.append(staff_mail("#status waiting\n#priority high\n\nCould you send us the spooler log?\n", notice_id))
    hs.poll()
    (case,) = hs.cases()
    assert (case.status, case.priority) == ("waiting", "high")
    relays = [m for m in to(hs, "alice@client.example") if "spooler log" in m.get_content()]
    assert len(relays) == 1 and "#status" not in relays[0].get_content()


def test_bad_command_changes_nothing_and_gets_a_reply(hs: Harness) -> None:
    _client, notice_id = opened(hs)
    hs.append(staff_mail("#status wating\n", notice_id))
    hs.poll()
    (case,) = hs.cases()
    assert case.status == "new"
    (answer,) = to(hs, "bob@staff.example")
    body = answer.get_content()
    assert "#status wating" in body and "#status waiting|resolved|closed|open" in body


def test_note_is_never_relayed(hs: Harness) -> None:
    _client, notice_id = opened(hs)
    before = len(to(hs, "alice@client.example"))
    hs.append(staff_mail("#note\nThe client is on the old firmware, see CASE-000042.\n", notice_id))
    hs.poll()
    assert len(to(hs, "alice@client.example")) == before
    detail = hs.detail("CASE-000001")
    assert detail["messages"][-1]["disposition"] == "staff-note" and events_of(detail, "note.added")


def test_reply_straight_to_the_client_is_recorded_not_relayed_again(hs: Harness) -> None:
    client_id, _notice = opened(hs)
    before = len(to(hs, "alice@client.example"))
    hs.append(staff_mail("Fixed now, it was the toner.\n", client_id, to="alice@client.example",
                         headers=[("Cc", "support@example.com")]))
    hs.poll()
    assert len(to(hs, "alice@client.example")) == before
    detail = hs.detail("CASE-000001")
    assert events_of(detail, "relay.skipped") and events_of(detail, "first_response.stamped")


def test_staff_out_of_office_changes_nothing(hs: Harness) -> None:
    _client, notice_id = opened(hs)
    before = len(hs.sink.messages)
    hs.append(staff_mail("I am away until Monday.\n", notice_id, headers=[("Auto-Submitted", "auto-replied")]))
    hs.poll()
    assert len(hs.sink.messages) == before
    assert hs.detail("CASE-000001")["messages"][-1]["disposition"] == "staff-automated"


def test_whole_conversation_with_status_notices_and_auto_close(hs: Harness) -> None:
    import datetime as dt

    monday = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
    hs.at(monday)
    client_id, notice_id = opened(hs)
    hs.append(staff_mail("#status waiting\nCould you send us the spooler log?\n", notice_id))
    hs.at(monday + dt.timedelta(hours=1))
    hs.poll()
    (case,) = hs.cases()
    assert case.status == "waiting" and case.resolution_due is None  # the resolution clock is paused
    subjects = [m["Subject"] for m in to(hs, "alice@client.example")]
    assert len(subjects) == 3  # the acknowledgement, the relayed question, the "waiting on you" notice
    waiting = [m for m in to(hs, "alice@client.example") if "need some information" in m.get_content()]
    assert len(waiting) == 1 and waiting[0]["In-Reply-To"] == f"<{client_id}>"

    hs.append(make_mail("Alice Client <alice@client.example>", "Re: [CASE-000001] Printer on fire",
                        in_reply_to=str(waiting[0]["Message-ID"]).strip("<>"), body="Here is the log.\n"))
    hs.at(monday + dt.timedelta(hours=2))
    hs.poll()
    (case,) = hs.cases()
    assert case.status == "open" and case.resolution_due is not None  # resumed

    hs.append(staff_mail("#status resolved\nFixed: it was the toner.\n", notice_id))
    hs.at(monday + dt.timedelta(hours=3))
    hs.poll()
    (case,) = hs.cases()
    assert case.status == "resolved"
    resolved = [m for m in to(hs, "alice@client.example") if "is resolved" in m.get_content()]
    assert len(resolved) == 1 and "reply to this email" in resolved[0].get_content()

    hs.at(monday + dt.timedelta(days=6))  # Sunday: not yet 5 business days
    hs.poll()
    assert hs.cases()[0].status == "resolved"
    hs.at(monday + dt.timedelta(days=7, hours=4))  # the next Monday 14:00: 5 business days have passed
    hs.poll()
    hs.poll()
    assert hs.cases()[0].status == "closed"
    closed = [m for m in to(hs, "alice@client.example") if "now closed" in m.get_content()]
    assert len(closed) == 1
    kinds = [e["kind"] for e in hs.detail("CASE-000001")["events"]]
    assert kinds.count("status_notice.queued") == 3  # waiting, resolved, closed


def test_status_notices_can_be_switched_off(hs: Harness) -> None:
    hs.overrides["status_notices"] = {"waiting": False}
    _client, notice_id = opened(hs)
    hs.append(staff_mail("#status waiting\n", notice_id))
    hs.poll()
    assert hs.cases()[0].status == "waiting"
    assert not [m for m in to(hs, "alice@client.example") if "need some information" in m.get_content()]


def test_client_escalation_by_mail_notifies_once_and_raises_the_priority(hs: Harness) -> None:
    hs.overrides["escalation"] = {"manager": "boss@example.com"}
    client_id, _notice = opened(hs)
    assert hs.cases()[0].priority == "medium"
    for n in range(2):  # the second within the window: recorded, nobody told again
        hs.append(make_mail("Alice Client <alice@client.example>", "Re: [CASE-000001] Printer on fire - ESCALATE",
                            in_reply_to=client_id, body=f"Nobody answered, this is urgent ({n}).\n"))
        hs.poll()
    (case,) = hs.cases()
    assert case.priority == "high"  # one step, once
    (boss,) = to(hs, "boss@example.com")
    assert boss["Subject"].startswith("[CASE-000001] Escalated:")
    assert "subject says 'ESCALATE'" in boss.get_content()
    assert len([m for m in to(hs, TEAM) if "Escalated" in str(m["Subject"])]) == 1
    answers = [m for m in to(hs, "alice@client.example") if "has been escalated" in m.get_content()]
    assert len(answers) == 1
    detail = hs.detail("CASE-000001")
    assert len(events_of(detail, "case.escalated")) == 1 and len(events_of(detail, "escalation.repeated")) == 1
    assert events_of(detail, "priority.changed")[0]["why"].startswith("escalated by the client")


def test_mail_to_the_escalation_address_escalates(hs: Harness) -> None:
    hs.overrides["escalation"] = {"manager": "boss@example.com", "address": "support+escalate@example.com"}
    client_id, _notice = opened(hs)
    hs.append(make_mail("Alice Client <alice@client.example>", "Re: [CASE-000001] Printer on fire",
                        in_reply_to=client_id, to="support+escalate@example.com", body="Please look at this.\n"))
    hs.poll()
    assert len(to(hs, "boss@example.com")) == 1


def test_mail_to_the_note_address_is_an_internal_note(hs: Harness) -> None:
    hs.overrides["staff"] = {**STAFF, "note_address": "support+note@example.com"}
    _client, notice_id = opened(hs)
    before = len(to(hs, "alice@client.example"))
    hs.append(staff_mail("Called the client, they will send photos.\n", notice_id, to="support+note@example.com"))
    hs.poll()
    assert len(to(hs, "alice@client.example")) == before
    detail = hs.detail("CASE-000001")
    assert detail["messages"][-1]["disposition"] == "staff-note"
    assert "support+note@example.com" in events_of(detail, "note.added")[0]["why"]
