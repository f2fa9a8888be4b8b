"""SLA notices (casebot/notices.py, casebot/sla_notices.py): reminder, breach, escalation, page and digest mails,
their keys, subjects, recipients and wording in local time, and the acknowledgement's out-of-hours and 24x7 text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.message
import email.policy
from pathlib import Path
from typing import Any

import jinja2.meta
import pytest

from casebot.alerts import Alert, time_left
from casebot.case import Priority
from casebot.commands import parse as parse_commands
from casebot.config import from_mapping
from casebot.mail import parse
from casebot.notices import (
    ACK,
    BREACH,
    CLIENT_ESCALATION,
    COMMAND_ERRORS,
    DIGEST,
    ESCALATION,
    ESCALATION_ACK,
    KINDS,
    OAUTH_ALERT,
    PAGE,
    RELAY,
    REMINDER,
    STAFF_NOTICE,
    STATUS,
    CaseFacts,
    DigestFacts,
    Identity,
    Notice,
    NoticeError,
    Notices,
    alert_key,
    digest_key,
    page_key,
    templates_used,
)
from casebot.sla import SlaPolicy
from casebot.staff_notices import Triage
from casebot.templates import Rendered, Templates

UTC = dt.UTC
SUMMER = dt.datetime(2026, 6, 2, 10, 0, tzinfo=UTC)  # Tuesday 2 June 2026, 11:00 BST
WINTER = dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # Tuesday 1 December 2026, 10:00 GMT
SATURDAY_NIGHT = dt.datetime(2026, 6, 6, 1, 0, tzinfo=UTC)  # Saturday 6 June 2026, 02:00 BST
STAFF, MANAGER, ONCALL = ("staff@example.com",), ("manager@example.com",), ("oncall@example.com",)
RAW = (b"From: Bob Client <bob@client.example>\r\nTo: support@example.com\r\nSubject: Site down\r\n"
       b"Message-ID: <root@client.example>\r\n\r\nHelp\r\n")


class Recording(Templates):
    """The shipped templates, remembering the variables each render got."""

    def __init__(self, override: Path | None = None) -> None:
        super().__init__(override, "Europe/London")
        self.seen: dict[str, dict[str, Any]] = {}

    def render(self, name: str, variables: dict[str, Any]) -> Rendered:
        self.seen[name] = dict(variables)
        return super().render(name, variables)


def policy() -> SlaPolicy:
    return from_mapping({
        "mailbox": {"kind": "pipe"},
        "plans": {"gold": {"clients": ["@client.example"], "out_of_hours": ["critical"],
                           "oncall": "oncall@example.com"}},
    }).sla_policy()


def notices(templates: Templates | None = None) -> Notices:
    return Notices(templates or Recording(), Identity.parse("Example Support <support@example.com>"), policy())


def facts(n: Notices, priority: Priority = Priority.HIGH, opened: dt.datetime = SUMMER, plan: str | None = None,
          subject: str = "Printer on fire", reference: str = "CASE-000123", status: str = "open") -> CaseFacts:
    found = next((p for p in n.sla.plans if p.name == plan), None)
    d = n.sla.deadlines(priority, opened, found)
    return CaseFacts(reference, subject, "alice@client.example", "Alice Example", priority, plan, status, opened,
                     d.first_response_due, d.resolution_due)


def message(notice: Notice) -> email.message.EmailMessage:
    assert max(len(line) for line in notice.raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(notice.raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    assert msg["Message-ID"] == f"<{notice.message_id}>"
    assert notice.envelope_from == "support@example.com"
    return msg


def body(msg: email.message.EmailMessage) -> str:
    content = msg.get_content()
    assert isinstance(content, str)
    return " ".join(content.split())


def alert_notice(n: Notices, kind: str, case: CaseFacts, now: dt.datetime, target: str = "first_response",
                 threshold: float = 1.0) -> Notice:
    due = case.first_response_due if target == "first_response" else case.resolution_due
    assert due is not None
    plan = next((p for p in n.sla.plans if p.name == case.plan), None)
    alert = Alert(kind, target, threshold, due, now if kind == "reminder" else due)  # type: ignore[arg-type]
    to = MANAGER if kind == "escalation" else STAFF
    return n.alert(alert, case, to, now, time_left(n.sla, case.priority, due, now, plan))


def names_the_case(text: str) -> None:
    for fragment in ("CASE-000123", "Alice Example <alice@client.example>", '"Printer on fire"'):
        assert fragment in text


# --- kinds, templates and keys ------------------------------------------------------------------------------------


def test_every_kind_has_a_template_that_compiles() -> None:
    assert KINDS == (ACK, REMINDER, BREACH, ESCALATION, PAGE, DIGEST, STAFF_NOTICE, RELAY, COMMAND_ERRORS, STATUS,
                     CLIENT_ESCALATION, ESCALATION_ACK, OAUTH_ALERT)
    assert templates_used() == ["acknowledgement.txt.j2", "reminder.txt.j2", "breach.txt.j2", "escalation.txt.j2",
                                "page.txt.j2", "digest.txt.j2", "staff_notice.txt.j2", "relay.txt.j2",
                                "command_errors.txt.j2", "status.txt.j2", "client_escalation.txt.j2",
                                "escalation_ack.txt.j2", "oauth_alert.txt.j2"]
    Templates(None).check(templates_used())
    assert [k.name for k in KINDS] == ["ack", "remind", "breach", "escalate", "page", "digest", "notice", "relay",
                                       "cmderr", "status", "clientesc", "escack", "oauth"]


def test_keys() -> None:
    assert alert_key("CASE-000123", "reminder", "first_response", 0.75) == "remind:CASE-000123:first_response:0.75"
    assert alert_key("CASE-000123", "remind", "resolution", 0.5) == "remind:CASE-000123:resolution:0.5"
    assert alert_key("CASE-000123", "breach", "resolution", 1.0) == "breach:CASE-000123:resolution"
    assert alert_key("CASE-000123", "escalation", "first_response", 1.0) == "escalate:CASE-000123:first_response"
    assert alert_key("CASE-000123", "escalate", "first_response", 1.0) == "escalate:CASE-000123:first_response"
    assert page_key("CASE-000123") == "page:CASE-000123"
    assert digest_key(dt.date(2026, 12, 1)) == "digest:2026-12-01"
    with pytest.raises(ValueError, match="unknown alert kind"):
        alert_key("CASE-000123", "ack", "first_response", 1.0)


def all_notices(n: Notices, subject: str = "Printer on fire") -> list[Notice]:
    case = facts(n, subject=subject)
    night = facts(n, Priority.CRITICAL, SATURDAY_NIGHT, "gold", subject=subject, status="new")
    reminder_at = SUMMER + dt.timedelta(hours=3)
    digest = DigestFacts({"critical": 1, "high": 1, "medium": 0, "low": 0}, (case,),
                         ((night, ("first_response", "resolution")),), (facts(n, status="waiting", subject=subject),))
    m = parse(RAW.replace(b"Subject: Site down", b"Subject: " + subject.encode()))
    return [
        alert_notice(n, "reminder", case, reminder_at, threshold=0.75),
        alert_notice(n, "breach", case, SUMMER + dt.timedelta(hours=6)),
        alert_notice(n, "escalation", case, SUMMER + dt.timedelta(hours=6)),
        n.page(night, ONCALL, SATURDAY_NIGHT),
        n.digest(dt.date(2026, 6, 2), digest, STAFF, SUMMER),
        n.acknowledgement(mail=m, to="bob@client.example", reference="CASE-000124", subject=m.subject,
                          priority=Priority.CRITICAL, deadlines=n.sla.deadlines(Priority.CRITICAL, SATURDAY_NIGHT,
                                                                                n.sla.plans[0]),
                          now=SATURDAY_NIGHT, plan=n.sla.plans[0], clock_start=SATURDAY_NIGHT),
        n.staff_notice(m, case, Triage("production-down", "body", "down"), STAFF, SUMMER, 0),
        n.relay(mail=m, text="Please restart the spooler.", reference="CASE-000123", to=("alice@client.example",),
                thread=("a1@client.example", "a2@client.example"), key="relay:test", now=SUMMER),
        n.command_errors(mail=m, reference="CASE-000123", key="cmderr:test", now=SUMMER,
                         errors=parse_commands("#status wating\n").errors),
        *(n.status(reference="CASE-000123", subject=subject, requester="alice@client.example",
                   requester_name="Alice Example", status=st, why="test", to=("alice@client.example",),
                   thread=("a1@client.example",), key=f"status:{st}", now=SUMMER)
          for st in ("waiting", "resolved", "closed", "reopened")),
        n.client_escalation(case=case, mail=m, why="subject says 'escalate'", to=STAFF, key="clientesc:t", now=SUMMER),
        n.escalation_ack(case=case, mail=m, to=("alice@client.example",), key="escack:t", thread=(), now=SUMMER),
    ]


def test_every_template_gets_every_variable_it_uses() -> None:
    templates = Recording()
    n = notices(templates)
    all_notices(n)
    for problem in ("token_failed", "secret_expiring"):  # not about a case: no case subject to check above
        n.oauth_alert(token="mailbox", problem=problem, detail="invalid_grant", day=dt.date(2026, 6, 2), to=STAFF,
                      now=SUMMER, days_left=3, since=SUMMER)
    assert sorted(templates.seen) == sorted(templates_used())
    for name in templates_used():
        source = templates.env.loader.get_source(templates.env, name)[0]  # type: ignore[union-attr]
        used = jinja2.meta.find_undeclared_variables(templates.env.parse(source))
        assert used <= set(templates.seen[name]), f"{name} uses {sorted(used - set(templates.seen[name]))}"


@pytest.mark.parametrize("subject", ["x" * 1000, ("word " * 200).strip(), "é" * 600, "Ünïcødé " + "y" * 990])
def test_long_subjects_stay_within_line_limits(subject: str) -> None:
    for notice in all_notices(notices(), subject):
        msg = message(notice)  # every line <= 998
        assert " ".join(subject.split()) in " ".join(str(msg["Subject"]).split()) + body(msg)


# --- reminder, breach, escalation ---------------------------------------------------------------------------------


def test_reminder_in_summer_time() -> None:
    n = notices()
    case = facts(n)  # high, opened 11:00 BST: first response due 15:00 BST
    notice = alert_notice(n, "reminder", case, SUMMER + dt.timedelta(hours=3), threshold=0.75)
    assert (notice.kind, notice.key, notice.recipients) == ("remind", "remind:CASE-000123:first_response:0.75", STAFF)
    msg = message(notice)
    assert msg["Subject"] == "[CASE-000123] Reminder: first response due 15:00 Tue 2 Jun - Printer on fire"
    assert msg["X-Casebot-Reference"] == "CASE-000123" and msg["To"] == "staff@example.com"
    text = body(msg)
    names_the_case(text)
    assert "75% of the first response target of high case CASE-000123 has elapsed" in text and "Priority: High" in text
    assert "Due: 15:00 on Tuesday 2 June 2026, UK time" in text and "Now: 1 hour left" in text
    assert "First response within 4 hours" in text


def test_breach_in_winter_with_business_days_overdue() -> None:
    n = notices()
    case = facts(n, Priority.MEDIUM, WINTER)  # first response 1 business day: due 10:00 Wed 2 Dec
    now = dt.datetime(2026, 12, 3, 12, 30, tzinfo=UTC)  # Thu: 8.5 h + 3.5 h business time later
    notice = alert_notice(n, "breach", case, now)
    assert (notice.kind, notice.key, notice.recipients) == ("breach", "breach:CASE-000123:first_response", STAFF)
    msg = message(notice)
    assert msg["Subject"] == "[CASE-000123] Breached: first response was due 10:00 Wed 2 Dec - Printer on fire"
    assert msg["X-Casebot-Reference"] == "CASE-000123"
    text = body(msg)
    names_the_case(text)
    assert "missed its first response target" in text and "Priority: Medium" in text
    assert "Due: 10:00 on Wednesday 2 December 2026, UK time" in text
    assert "Now: overdue by 1 business day 2 hours 30 minutes" in text


def test_breach_at_the_deadline_is_due_now() -> None:
    n = notices()
    case = facts(n)
    assert case.resolution_due is not None
    text = body(message(alert_notice(n, "breach", case, case.resolution_due, target="resolution")))
    assert "Now: due now" in text and "Resolution within 1 business day" in text


def test_escalation_goes_to_the_manager() -> None:
    n = notices()
    case = facts(n, Priority.CRITICAL, WINTER)  # due 11:00 GMT
    notice = alert_notice(n, "escalation", case, WINTER + dt.timedelta(hours=2, minutes=15))
    assert (notice.kind, notice.key, notice.recipients) == ("escalate", "escalate:CASE-000123:first_response",
                                                            MANAGER)
    msg = message(notice)
    assert msg["Subject"] == ("[CASE-000123] Escalation: critical case missed its first response target "
                              "(11:00 Tue 1 Dec) - Printer on fire")
    assert msg["X-Casebot-Reference"] == "CASE-000123" and msg["To"] == "manager@example.com"
    text = body(msg)
    names_the_case(text)
    assert "Priority: Critical" in text and "Due: 11:00 on Tuesday 1 December 2026, UK time" in text
    assert "Now: overdue by 1 hour 15 minutes" in text


def test_24x7_overdue_is_counted_in_hours_not_business_days() -> None:
    n = notices()
    case = facts(n, Priority.CRITICAL, SATURDAY_NIGHT, "gold")  # first response due 03:00 BST Saturday
    text = body(message(alert_notice(n, "breach", case, SATURDAY_NIGHT + dt.timedelta(hours=11))))
    assert "Now: overdue by 10 hours" in text
    assert "Plan: gold (24x7 cover: every hour counts)" in text
    assert "Due: 03:00 on Saturday 6 June 2026, UK time" in text


def test_a_tagged_reply_subject_gets_one_tag_first() -> None:
    n = notices()
    case = facts(n, subject="Re: [CASE-000123] Printer on fire")
    msg = message(alert_notice(n, "reminder", case, SUMMER + dt.timedelta(hours=3), threshold=0.75))
    assert msg["Subject"] == "[CASE-000123] Reminder: first response due 15:00 Tue 2 Jun - Printer on fire"


def test_a_case_without_subject() -> None:
    n = notices()
    msg = message(alert_notice(n, "breach", facts(n, subject=""), SUMMER + dt.timedelta(hours=6)))
    assert msg["Subject"] == "[CASE-000123] Breached: first response was due 15:00 Tue 2 Jun"
    assert "Subject: (no subject)" in body(msg)


def test_message_id_derives_from_the_key() -> None:
    n = notices()
    first, second = (alert_notice(n, "breach", facts(n), SUMMER + dt.timedelta(hours=h)) for h in (6, 7))
    assert first.key == second.key and first.message_id == second.message_id


# --- page and digest ----------------------------------------------------------------------------------------------


def test_page_for_an_out_of_hours_case_with_24x7_cover() -> None:
    n = notices()
    case = facts(n, Priority.CRITICAL, SATURDAY_NIGHT, "gold", status="new")
    notice = n.page(case, ONCALL, SATURDAY_NIGHT + dt.timedelta(minutes=15))
    assert (notice.kind, notice.key, notice.recipients) == ("page", "page:CASE-000123", ONCALL)
    msg = message(notice)
    assert msg["Subject"] == ("[CASE-000123] Page: critical case out of hours, first response due 03:00 Sat 6 Jun "
                              "- Printer on fire")
    assert msg["X-Casebot-Reference"] == "CASE-000123" and msg["To"] == "oncall@example.com"
    text = body(msg)
    names_the_case(text)
    assert "arrived at 02:00 on Saturday 6 June 2026, UK time, outside business hours" in text
    assert "plan, gold, covers critical cases 24x7" in text and "Priority: Critical" in text
    assert "First response within 1 hour" in text and "Due: 03:00 on Saturday 6 June 2026, UK time" in text
    assert "Now: 45 minutes left" in text
    assert "Resolution: due 06:00 on Saturday 6 June 2026, UK time (3 hours 45 minutes left)" in text


def test_digest_lists_every_section() -> None:
    n = notices()
    due = facts(n, Priority.CRITICAL, WINTER, reference="CASE-000001", subject="Due one")
    late = facts(n, Priority.HIGH, WINTER - dt.timedelta(days=2), reference="CASE-000002", subject="Late one")
    waiting = facts(n, Priority.LOW, WINTER - dt.timedelta(days=7), reference="CASE-000003", subject="Waiting one",
                    status="waiting")
    waiting = dataclasses.replace(waiting, resolution_due=None)  # paused
    digest = DigestFacts({"critical": 1, "high": 1, "medium": 0, "low": 1}, (due,),
                         ((late, ("first_response", "resolution")),), (waiting,))
    notice = n.digest(dt.date(2026, 12, 1), digest, STAFF, WINTER)
    assert (notice.kind, notice.key, notice.recipients) == ("digest", "digest:2026-12-01", STAFF)
    msg = message(notice)
    assert msg["Subject"] == "casebot daily digest for Tuesday 1 December 2026: 3 open, 1 due today, 1 breached, " \
                             "1 waiting"
    assert msg["X-Casebot-Reference"] is None
    text = body(msg)
    assert "Open cases: 3 Critical: 1 High: 1 Medium: 0 Low: 1" in text
    assert ("Due today (1): CASE-000001 [critical] Due one first response due 11:00 on Tuesday 1 December 2026, "
            "UK time; resolution due 14:00 on Tuesday 1 December 2026, UK time") in text
    # Opened on a Sunday: the clock started at 09:00 on Monday.
    assert ("Breached (1): CASE-000002 [high] Late one first response was due 13:00 on Monday 30 November 2026, "
            "UK time; resolution was due 17:30 on Monday 30 November 2026, UK time") in text
    assert ("Waiting on the client, oldest first (1): CASE-000003 [low] Waiting one first response due 10:00 on "
            "Thursday 26 November 2026, UK time") in text
    assert "none" not in text


def test_digest_in_summer_and_empty_sections_say_none() -> None:
    n = notices()
    notice = n.digest(dt.date(2026, 6, 2), DigestFacts({"critical": 0, "high": 0}, (), (), ()), STAFF, SUMMER)
    text = body(message(notice))
    assert "Due today (0): none" in text and "Breached (0): none" in text
    assert "Waiting on the client, oldest first (0): none" in text
    assert message(notice)["Subject"].startswith("casebot daily digest for Tuesday 2 June 2026: 0 open")


def test_digest_due_today_in_local_time() -> None:
    n = notices()
    case = facts(n, Priority.CRITICAL, SUMMER)  # due 12:00 and 15:00 BST
    text = body(message(n.digest(dt.date(2026, 6, 2), DigestFacts({}, (case,), (), ()), STAFF, SUMMER)))
    assert "first response due 12:00 on Tuesday 2 June 2026, UK time" in text


def test_a_broken_override_is_a_notice_error(tmp_path: Path) -> None:
    (tmp_path / "breach.txt.j2").write_text("Subject: {{ reference }}\n{{ nope }}\n", encoding="utf-8")
    n = notices(Templates(tmp_path))
    with pytest.raises(NoticeError, match="'nope' is undefined"):
        alert_notice(n, "breach", facts(n), SUMMER + dt.timedelta(hours=6))


# --- the acknowledgement ------------------------------------------------------------------------------------------


def ack(n: Notices, priority: Priority, now: dt.datetime, with_plan: bool, clock_start: bool = True) -> str:
    m = parse(RAW)
    plan = n.sla.plans[0] if with_plan else None
    start = n.sla.clock_start(priority, now, plan) if clock_start else None
    notice = n.acknowledgement(mail=m, to="bob@client.example", reference="CASE-000124", subject=m.subject,
                               priority=priority, deadlines=n.sla.deadlines(priority, now, plan), now=now,
                               plan=plan, clock_start=start)
    return body(message(notice))


@pytest.mark.parametrize("clock_start", [True, False])
def test_acknowledgement_out_of_hours_says_when_the_clock_starts(clock_start: bool) -> None:
    n = notices()
    text = ack(n, Priority.HIGH, SATURDAY_NIGHT, with_plan=True, clock_start=clock_start)  # gold: critical only
    assert "Priority: High" in text
    assert "First response: within 4 hours, by 13:00 on Monday 8 June 2026, UK time" in text
    assert "Resolution target: within 1 business day, by 17:30 on Monday 8 June 2026, UK time" in text
    assert "arrived outside our support hours, so the clock starts at 09:00 on Monday 8 June 2026, UK time" in text
    assert "09:00-17:30 Europe/London, Monday to Friday" in text
    assert "24x7" not in text


def test_acknowledgement_with_24x7_cover() -> None:
    n = notices()
    text = ack(n, Priority.CRITICAL, SATURDAY_NIGHT, with_plan=True)
    assert "Priority: Critical" in text
    assert "First response: within 1 hour, by 03:00 on Saturday 6 June 2026, UK time" in text
    assert "Resolution target: within 4 hours, by 06:00 on Saturday 6 June 2026, UK time" in text
    assert "Your gold plan covers critical cases 24x7: these targets count round the clock" in text
    assert "outside our support hours" not in text


def test_acknowledgement_within_hours_in_winter() -> None:
    text = ack(notices(), Priority.HIGH, WINTER, with_plan=False, clock_start=False)
    assert "First response: within 4 hours, by 14:00 on Tuesday 1 December 2026, UK time" in text
    assert "outside our support hours" not in text and "24x7" not in text
    assert "Response times run in business hours: 09:00-17:30 Europe/London" in text


def test_acknowledgement_variables() -> None:
    templates = Recording()
    n = notices(templates)
    ack(n, Priority.HIGH, SATURDAY_NIGHT, with_plan=True)
    seen = templates.seen["acknowledgement.txt.j2"]
    assert seen["first_response_by"] == "13:00 on Monday 8 June 2026, UK time"
    assert seen["resolution_by"] == "17:30 on Monday 8 June 2026, UK time"
    assert seen["clock_starts"] == "09:00 on Monday 8 June 2026, UK time"
    assert (seen["out_of_hours"], seen["plan"], seen["round_the_clock"]) == (True, "gold", False)
    ack(n, Priority.CRITICAL, SATURDAY_NIGHT, with_plan=True)
    seen = templates.seen["acknowledgement.txt.j2"]
    assert (seen["clock_starts"], seen["out_of_hours"], seen["plan"], seen["round_the_clock"]) == ("", False, "gold",
                                                                                                   True)


# --- the new-case notice to staff ---------------------------------------------------------------------------------


def test_staff_notice_carries_the_message_its_files_and_how_to_answer() -> None:
    n = notices()
    raw = (b"From: Bob Client <bob@client.example>\r\nTo: support@example.com\r\nCc: carol@client.example\r\n"
           b"Subject: Site down\r\nMessage-ID: <root2@client.example>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
           b"The site is down since 9.\r\n--b\r\nContent-Type: application/pdf\r\n"
           b'Content-Disposition: attachment; filename="small.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
           b"JVBERi0xLjQK\r\n--b\r\nContent-Type: application/zip\r\n"
           b'Content-Disposition: attachment; filename="big.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
           + b"UEsDBA" * 400 + b"\r\n--b--\r\n")
    m = parse(raw)
    case = facts(n, subject="Site down")
    notice = n.staff_notice(m, case, Triage("production-down", "body", "down"), STAFF, SUMMER, 100)
    assert (notice.kind, notice.key, notice.recipients) == ("notice", "notice:CASE-000123", STAFF)
    msg = message(notice)
    assert msg["Subject"] == "[CASE-000123] Site down"
    assert msg["Reply-To"] == "Example Support <support@example.com>"
    assert msg["X-Casebot-Reference"] == "CASE-000123"
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["small.pdf"]  # big.zip is over the limit: listed, not attached
    text = " ".join(msg.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    for expected in ("The site is down since 9.", "Alice Example <alice@client.example>", "carol@client.example",
                     "rule production-down: body matches 'down'", "small.pdf (application/pdf, 9 bytes), attached",
                     "big.zip", "kept on the case", "support@example.com in Cc", "15:00 on Tuesday 2 June 2026"):
        assert expected in text, expected
