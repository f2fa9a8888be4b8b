"""Tests of the test servers themselves (tests/servers.py via the conftest fixtures)."""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from servers import ImapAccount, PostgresDatabase, SmtpSink

pytestmark = pytest.mark.integration

RAW = (
    b"From: Customer <c@example.org>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: URGENT: broken\r\n"
    b"Message-ID: <t1@example.org>\r\n"
    b"\r\n"
    b"help\r\n"
)


def _ack() -> EmailMessage:
    m = EmailMessage()
    m["From"] = "support@example.com"
    m["To"] = "c@example.org"
    m["Subject"] = "ack"
    m.set_content("hi")
    return m


def _send(sink: SmtpSink) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as s:
        s.send_message(_ack())


# -- IMAP -------------------------------------------------------------------------------------


def test_append_and_peek_keeps_unseen(imap_account: ImapAccount) -> None:
    imap_account.append(RAW)
    c = imap_account.connect()
    try:
        c.select_folder("INBOX")
        uids = c.search(["UNSEEN"])
        assert len(uids) == 1
        data = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"])
        assert data[uids[0]][b"BODY[]"] == RAW
        assert b"\\Seen" not in data[uids[0]][b"FLAGS"]
        assert c.search(["UNSEEN"]) == uids
    finally:
        c.logout()


def test_each_user_starts_empty(imap_account: ImapAccount) -> None:
    imap_account.deliver(RAW)
    other = imap_account.server.new_user()
    assert other != imap_account.user
    c = imap_account.server.imap(other)
    try:
        assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    finally:
        c.logout()
    c = imap_account.connect()
    try:
        info = c.select_folder("INBOX", readonly=True)
        assert info[b"EXISTS"] == 1
        assert info[b"UIDNEXT"] == 2
    finally:
        c.logout()


def test_idle_sees_append_from_other_connection(imap_account: ImapAccount) -> None:
    c = imap_account.connect()
    try:
        c.select_folder("INBOX")
        c.idle()
        imap_account.append(RAW)
        responses = c.idle_check(timeout=5)
        c.idle_done()
        assert (1, b"EXISTS") in responses
    finally:
        c.logout()


def test_imap_processes_lists_sessions(imap_account: ImapAccount) -> None:
    before = set(imap_account.server.imap_processes())
    c = imap_account.connect()
    try:
        c.noop()
        assert set(imap_account.server.imap_processes()) - before
    finally:
        c.logout()


# -- SMTP -------------------------------------------------------------------------------------


def test_smtp_sink_receives(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink)
    assert smtp_sink.wait_for(1, timeout=5)
    (msg,) = smtp_sink.messages
    assert msg.mail_from == "support@example.com"
    assert msg.rcpt_tos == ["c@example.org"]
    assert b"Subject: ack" in msg.content


@pytest.mark.parametrize(("mode", "code"), [("tempfail", 451), ("permfail", 550)])
def test_smtp_sink_failure_modes(smtp_sink: SmtpSink, mode: str, code: int) -> None:
    smtp_sink.mode = mode
    with pytest.raises(smtplib.SMTPDataError) as exc_info:
        _send(smtp_sink)
    assert exc_info.value.smtp_code == code
    assert smtp_sink.messages == []
    assert smtp_sink.data_commands == 1


def test_smtp_sink_fail_next_once(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(1, "451 4.3.0 try later")
    with pytest.raises(smtplib.SMTPDataError) as exc_info:
        _send(smtp_sink)
    assert exc_info.value.smtp_code == 451
    _send(smtp_sink)
    assert smtp_sink.wait_for(1, timeout=5)
    assert len(smtp_sink.messages) == 1


# -- PostgreSQL -------------------------------------------------------------------------------


def test_postgres_throwaway_database(postgres_base_url: str) -> None:
    db = PostgresDatabase(postgres_base_url).create()
    try:
        assert db.exists()
        assert db.name.startswith(f"casebot_test_{os.getpid()}_")
        engine = sa.create_engine(db.url)
        conn = engine.connect()  # left open on purpose: drop() must still succeed
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == db.name
    finally:
        db.drop()
    assert not db.exists()
    engine.dispose()


def test_db_url_fixture(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        engine.dispose()
