"""Deadlines that hold, end to end against Dovecot, the SMTP sink and SQLite/PostgreSQL, with a fixed clock.

Every poll says what time it is (the harness's clock), so reminders, breaches and escalations come due without
anybody sleeping; "downtime" is simply a poll that comes late.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import json
import threading
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cbtest import Harness, events_of, make_mail, quiet_logs
from servers import ImapAccount, SmtpSink

from casebot.case import Status
from casebot.jobs.remind import remind
from casebot.jobs.update import update_case
from casebot.service import Admin

LONDON = ZoneInfo("Europe/London")
MON_10 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=LONDON).astimezone(dt.UTC)  # Monday 30 November 2026
NOTIFY, MANAGER, ONCALL = "team@example.com", "boss@example.com", "oncall@example.com"
SLA: dict[str, Any] = {
    "staff": {"notify": NOTIFY},
    "escalation": {"manager": MANAGER},
    "digest": {"enabled": False},
    "acknowledgement": {"rate_limit": 0},
}


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


@pytest.fixture
def h(imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str) -> Iterator[Harness]:
    harness = Harness(imap_account, smtp_sink, db_url, overrides=dict(SLA))
    yield harness
    harness.close()


def mails_to(h: Harness, address: str, notices: bool = False) -> list[Any]:
    """What `address` received; without `notices`, the new-case notices to staff are left out (tests/
    integration/test_staff.py covers those): these tests count reminders, breaches and escalations."""
    out = []
    for m in h.sink.messages:
        if address in m.rcpt_tos:
            msg = email.message_from_bytes(m.content, policy=email.policy.default)
            if notices or not str(msg["Message-ID"]).startswith(f"<{_notice_id(h, msg)}"):
                out.append(msg)
    return out


def _notice_id(h: Harness, msg: Any) -> str:
    """The Message-ID casebot gives the new-case notice of the case `msg` is about (it derives from the key)."""
    from casebot.mail import make_message_id
    from casebot.notices import notice_key

    return make_message_id("example.com", notice_key(str(msg["X-Casebot-Reference"])))


def subjects_to(h: Harness, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mails_to(h, address)]


def poll_at(h: Harness, when: dt.datetime, **sections: Any) -> Any:
    h.at(when)
    return h.poll(**sections)


def test_reminder_then_breach_and_escalation_each_once(h: Harness) -> None:
    h.append(make_mail("alice@client.example", "Production down", body="Our production system is down.\n"))
    poll_at(h, MON_10)
    (case,) = h.cases()
    assert case.priority == "critical"
    assert case.first_response_due == MON_10 + dt.timedelta(hours=1)
    assert subjects_to(h, NOTIFY) == []

    poll_at(h, MON_10 + dt.timedelta(minutes=44))  # 0.75 of 1 h is 45 minutes: not yet
    assert subjects_to(h, NOTIFY) == []
    poll_at(h, MON_10 + dt.timedelta(minutes=46))
    (reminder,) = mails_to(h, NOTIFY)
    assert str(reminder["Subject"]).startswith("[CASE-000001]")
    body = reminder.get_content()
    assert "Production down" in body and "alice@client.example" in body and "critical" in body
    assert "11:00" in body  # the deadline in local time (GMT in November)

    poll_at(h, MON_10 + dt.timedelta(minutes=50))  # nothing new between thresholds
    assert len(mails_to(h, NOTIFY)) == 1
    poll_at(h, MON_10 + dt.timedelta(hours=1, minutes=1))
    assert len(mails_to(h, NOTIFY)) == 2  # the first-response breach
    assert len(mails_to(h, MANAGER)) == 1  # and the escalation of a critical breach
    assert str(mails_to(h, MANAGER)[0]["Subject"]).startswith("[CASE-000001]")
    for _ in range(2):  # rescans, as after a restart: nothing twice
        poll_at(h, MON_10 + dt.timedelta(hours=1, minutes=2))
    assert (len(mails_to(h, NOTIFY)), len(mails_to(h, MANAGER))) == (2, 1)
    kinds = [e["kind"] for e in h.detail("CASE-000001")["events"]]
    assert kinds.count("remind.queued") == 1 and kinds.count("breach.queued") == 1
    assert kinds.count("escalate.queued") == 1


def test_after_downtime_only_the_latest_state_is_sent(h: Harness) -> None:
    h.append(make_mail("bob@client.example", "Production down", body="production system is down\n"))
    poll_at(h, MON_10)
    # casebot was down for a day: both targets (1 h and 4 h) breached meanwhile.
    poll_at(h, MON_10 + dt.timedelta(days=1))
    notify = subjects_to(h, NOTIFY)
    assert len(notify) == 2, notify  # two breach alerts (first response, resolution), no stale reminders
    assert len(mails_to(h, MANAGER)) == 2
    events = h.detail("CASE-000001")["events"]
    assert not events_of(h.detail("CASE-000001"), "remind.queued")
    assert {e["target"] for e in events if e["kind"] == "breach.queued"} == {"first_response", "resolution"}


def test_waiting_pauses_and_nothing_is_sent_until_the_client_answers(h: Harness) -> None:
    h.append(make_mail("carol@client.example", "Printer offline",
                       body="The printer is not working, we have a workaround.\n"))
    poll_at(h, MON_10)
    (case,) = h.cases()
    admin = Admin.open(h.settings())
    try:
        update_case(admin.store, admin.deps.clocks, case.reference, MON_10 + dt.timedelta(hours=1),
                    responded=True, status=Status.WAITING, why="asked for the logs")
    finally:
        admin.close()
    (paused,) = h.cases()
    assert paused.status == "waiting" and paused.resolution_due is None
    poll_at(h, MON_10 + dt.timedelta(days=10))  # long past any target: a paused case gets nothing
    assert subjects_to(h, NOTIFY) == []
    detail = h.detail(case.reference)
    changed = events_of(detail, "deadline.changed")
    assert changed and changed[-1]["resolution_due"] is None and "clock.paused" in changed[-1]["cause"]


def test_priority_change_after_a_pause_keeps_the_paused_time(h: Harness) -> None:
    h.append(make_mail("dave@client.example", "Question about invoices", body="A quick question.\n"))
    poll_at(h, MON_10)
    (case,) = h.cases()
    assert case.priority == "low"
    admin = Admin.open(h.settings())
    try:
        clocks = admin.deps.clocks
        # Paused from Monday 11:00 to Tuesday 11:00: 8.5 business hours never count.
        update_case(admin.store, clocks, case.reference, MON_10 + dt.timedelta(hours=1), status=Status.WAITING)
        update_case(admin.store, clocks, case.reference, MON_10 + dt.timedelta(days=1, hours=1), status=Status.OPEN)
        from casebot.case import Priority

        update_case(admin.store, clocks, case.reference, MON_10 + dt.timedelta(days=1, hours=2),
                    priority=Priority.HIGH, why="it blocks the month's invoicing")
    finally:
        admin.close()
    (raised,) = h.cases()
    # High: resolution 1 business day (8.5 h) from Monday 10:00, plus the 8.5 paused hours = Wednesday 10:00.
    assert raised.resolution_due == dt.datetime(2026, 12, 2, 10, 0, tzinfo=LONDON)
    # First response 4 h from Monday 10:00 = Monday 14:00, already past: the raise makes it breached at once.
    assert raised.first_response_due == dt.datetime(2026, 11, 30, 14, 0, tzinfo=LONDON)
    poll_at(h, MON_10 + dt.timedelta(days=1, hours=2, minutes=1))
    assert any("CASE-000001" in s for s in subjects_to(h, NOTIFY))
    assert len(mails_to(h, MANAGER)) == 1  # the first-response breach of a high case is escalated


def test_plan_with_cover_counts_from_0200_sunday_and_pages_once(h: Harness) -> None:
    plans = {"enterprise": {"clients": ["@bigclient.example"], "out_of_hours": ["critical", "high"],
                            "oncall": ONCALL}}
    h.overrides["plans"] = plans
    sunday_2am = dt.datetime(2026, 11, 29, 2, 0, tzinfo=LONDON).astimezone(dt.UTC)
    h.append(make_mail("cto@bigclient.example", "Production down", body="production system is down\n"))
    poll_at(h, sunday_2am)
    (case,) = h.cases()
    assert case.plan == "enterprise"
    assert case.first_response_due == sunday_2am + dt.timedelta(hours=1)
    assert case.resolution_due == sunday_2am + dt.timedelta(hours=4)
    pages = mails_to(h, ONCALL)
    assert len(pages) == 1 and str(pages[0]["Subject"]).startswith("[CASE-000001]")
    ack = mails_to(h, "cto@bigclient.example")[0].get_content()
    assert "enterprise" in ack
    poll_at(h, sunday_2am + dt.timedelta(minutes=1))
    assert len(mails_to(h, ONCALL)) == 1
    # A client without the plan, same time: the clock starts at Monday's opening, nobody is paged.
    h.append(make_mail("eve@smallclient.example", "Production down", body="production system is down\n"))
    poll_at(h, sunday_2am + dt.timedelta(minutes=2))
    other = next(c for c in h.cases() if c.reference == "CASE-000002")
    assert other.plan is None
    assert other.first_response_due == dt.datetime(2026, 11, 30, 10, 0, tzinfo=LONDON)
    assert len(mails_to(h, ONCALL)) == 1


def test_daily_digest_once_per_business_day(h: Harness) -> None:
    h.overrides["digest"] = {"enabled": True}
    h.append(make_mail("frank@client.example", "Export is slow", body="a workaround exists\n"))
    poll_at(h, dt.datetime(2026, 11, 27, 16, 0, tzinfo=LONDON))  # Friday afternoon: the case opens
    before = len(mails_to(h, NOTIFY))
    poll_at(h, dt.datetime(2026, 11, 28, 10, 0, tzinfo=LONDON))  # Saturday: no digest
    assert len(mails_to(h, NOTIFY)) == before
    poll_at(h, dt.datetime(2026, 11, 30, 8, 59, tzinfo=LONDON))  # Monday before the opening
    assert len(mails_to(h, NOTIFY)) == before
    for minute in (1, 2):
        poll_at(h, dt.datetime(2026, 11, 30, 9, minute, tzinfo=LONDON))
    digests = [m for m in mails_to(h, NOTIFY)[before:] if "digest" in str(m["Subject"]).lower()]
    assert len(digests) == 1
    assert "CASE-000001" in digests[0].get_content()


def test_two_instances_scan_and_send_each_reminder_once(h: Harness, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("several instances need PostgreSQL")
    n = 30
    h.append(*(make_mail(f"c{i}@client.example", f"Production down {i}", body="production system is down\n")
               for i in range(n)))
    poll_at(h, MON_10)
    assert len(h.cases()) == n
    later = MON_10 + dt.timedelta(minutes=46)
    admins = [Admin.open(h.settings()) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def scan(admin: Admin) -> None:
        barrier.wait(timeout=30)
        stats = remind(admin.store, admin.deps.clocks, admin.deps.notices, later)
        results.append(sum(stats.queued.values()))

    threads = [threading.Thread(target=scan, args=(a,)) for a in admins]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for a in admins:
        a.close()
    assert sum(results) == n  # shared between the two, none twice
    poll_at(h, later)
    reminders = mails_to(h, NOTIFY)
    assert len(reminders) == n
    assert len({m["Message-ID"] for m in reminders}) == n


def test_cli_explain_remind_dry_run_and_update(h: Harness, db_url: str, tmp_path: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from casebot import cli

    h.append(make_mail("gina@client.example", "Production down", body="production system is down\n"))
    poll_at(h, MON_10)
    config = tmp_path / "casebot.toml"
    config.write_text(f'[mailbox]\nkind = "pipe"\n[database]\nurl = "{db_url}"\n[staff]\nnotify = "{NOTIFY}"\n'
                      f'[escalation]\nmanager = "{MANAGER}"\n[logging]\nlevel = "error"\n', encoding="utf-8")
    base = ["--config", str(config)]
    later = (MON_10 + dt.timedelta(hours=3, minutes=5)).isoformat()
    assert cli.main([*base, "remind", "--at", later, "--dry-run"]) == 0
    planned = capsys.readouterr().out
    assert "breach CASE-000001 first_response" in planned and "escalation CASE-000001" in planned
    assert "reminder CASE-000001 resolution" in planned  # 0.75 of 4 h reached at 13:00
    assert not events_of(h.detail("CASE-000001"), "breach.queued")  # a dry run queues nothing

    assert cli.main([*base, "remind", "--at", later]) == 0
    assert "queued breach 1, escalation 1, reminder 1" in capsys.readouterr().out
    assert cli.main([*base, "remind", "--at", later]) == 0
    assert "nothing due" in capsys.readouterr().out

    assert cli.main([*base, "cases", "update", "CASE-000001", "--responded", "--priority", "high"]) == 0
    out = capsys.readouterr().out
    assert "first_response.stamped" in out and "priority.changed" in out
    assert cli.main([*base, "sla", "explain", "CASE-000001"]) == 0
    explained = capsys.readouterr().out
    assert "CASE-000001" in explained and "First response given" in explained
    assert "breach.queued" in explained and "deadline.changed" in explained
    assert cli.main([*base, "cases", "update", "CASE-999999", "--status", "open"]) == 1
    assert cli.main([*base, "cases", "update", "CASE-000001"]) == 64
    assert cli.main([*base, "cases", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["plan"] is None and "first_response" in listed["breached"]


def test_two_instances_send_one_digest(h: Harness, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("several instances need PostgreSQL")
    from casebot.jobs.remind import digest

    h.overrides["digest"] = {"enabled": True}
    h.append(make_mail("hal@client.example", "Export is slow", body="a workaround exists\n"))
    poll_at(h, dt.datetime(2026, 11, 27, 16, 0, tzinfo=LONDON))
    monday = dt.datetime(2026, 11, 30, 9, 1, tzinfo=LONDON).astimezone(dt.UTC)
    admins = [Admin.open(h.settings()) for _ in range(3)]
    barrier = threading.Barrier(len(admins))
    keys: list[str | None] = []

    def run(admin: Admin) -> None:
        barrier.wait(timeout=30)
        keys.append(digest(admin.store, admin.deps.clocks, admin.deps.notices, monday))

    threads = [threading.Thread(target=run, args=(a,)) for a in admins]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for a in admins:
        a.close()
    assert sorted(k for k in keys if k) == ["digest:2026-11-30"] and len(keys) == len(admins)
