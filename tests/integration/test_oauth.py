"""OAuth2 end to end: a real token server on 127.0.0.1, Dovecot with its oauth2 passdb introspecting tokens there,
and an aiosmtpd server that takes AUTH XOAUTH2 only.

Covered: login with a valid token; an access token about to expire is refreshed before use; a token the server
rejects is refreshed once and retried; a rejection of the fresh token too is reported; a revoked refresh token is
logged as an error, makes the token's status failing and mails staff.notify once through the outbox; a rotated
refresh token rewrites token_file atomically with mode 0600; SMTP XOAUTH2; `outgoing.oauth2 = "mailbox"`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from cbtest import Harness, quiet_logs
from oauth_servers import CLIENT_ID, CLIENT_SECRET, OAuthSmtpSink, TokenServer, start_oauth_dovecot
from servers import DovecotServer, ImapAccount, SmtpSink, dovecot_available

from casebot import clock, metrics, monitor
from casebot.oauth import OAuthToken, TokenSet, read_token_file, write_token_file
from casebot.oauth_setup import build_tokens
from casebot.passes import poll
from casebot.service import Runtime, build_mailbox, build_sender
from casebot.transport import MailboxUnavailable, TransientSendError

USER = "support@example.com"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback test sink


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield
    metrics.forget_tokens()  # Runtime.build puts its tokens on the process-wide board: leave it clean


@pytest.fixture(scope="module")
def tokens() -> Iterator[TokenServer]:
    with TokenServer(user=USER) as server:
        yield server


@pytest.fixture(scope="module")
def oauth_dovecot(tokens: TokenServer) -> Iterator[DovecotServer]:
    if not dovecot_available():
        pytest.skip("dovecot not installed")
    server = start_oauth_dovecot(tokens)
    try:
        yield server
    finally:
        server.stop()


class Clock:
    """The test's clock: casebot's idea of now, moved by hand."""

    def __init__(self) -> None:
        self.at = clock.utcnow()

    def __call__(self) -> dt.datetime:
        return self.at


def oauth2(tokens: TokenServer, token_file: Path, **extra: Any) -> dict[str, Any]:
    return {"provider": "generic", "client_id": CLIENT_ID, "client_secret_env": "CASEBOT_TEST_CLIENT_SECRET",
            "token_url": tokens.token_url, "auth_url": tokens.auth_url, "scopes": ["mail"],
            "token_file": str(token_file), **extra}


@pytest.fixture(autouse=True)
def _client_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEBOT_TEST_CLIENT_SECRET", CLIENT_SECRET)


def harness(oauth_dovecot: DovecotServer, sink: SmtpSink, tokens: TokenServer, tmp_path: Path,
            user: str = USER, db_url: str = "", **outgoing: Any) -> Harness:
    account = ImapAccount(oauth_dovecot.host, oauth_dovecot.port, user, "", oauth_dovecot)
    return Harness(account, sink, db_url or f"sqlite:///{tmp_path / 'casebot.db'}", overrides={
        "mailbox": {"password": "", "auth": "oauth2", "oauth2": oauth2(tokens, tmp_path / "token.json")},
        "outgoing": outgoing,
        "staff": {"notify": "team@example.com"},
    })


def stored(tokens: TokenServer, path: Path, now: dt.datetime, expires_in: float = 3600.0) -> TokenSet:
    """Log in once (as `casebot oauth login` would) and write token_file; casebot believes it `expires_in`."""
    answer = tokens.issue(USER)
    ts = TokenSet(answer["access_token"], answer["refresh_token"], now + dt.timedelta(seconds=expires_in))
    write_token_file(path, ts)
    return ts


def mailbox_of(h: Harness, now: Clock) -> tuple[Any, OAuthToken]:
    settings = h.settings()
    built = build_tokens(settings, now)
    mailbox = build_mailbox(settings, built)
    assert mailbox is not None
    return mailbox, built["mailbox"]


def test_login_with_a_valid_token(oauth_dovecot: DovecotServer, smtp_sink: SmtpSink, tokens: TokenServer,
                                  tmp_path: Path) -> None:
    now = Clock()
    h = harness(oauth_dovecot, smtp_sink, tokens, tmp_path)
    stored(tokens, tmp_path / "token.json", now())
    before = tokens.refreshes()
    mailbox, token = mailbox_of(h, now)
    mailbox.open()
    try:
        assert mailbox.pending() == []
    finally:
        mailbox.close()
    assert tokens.refreshes() == before  # valid for an hour: no refresh
    assert f"user=<{USER}>, method=XOAUTH2" in oauth_dovecot.log()
    assert not token.status().failing and token.status().expires_at is not None


def test_oauthbearer_when_the_server_offers_only_that(smtp_sink: SmtpSink, tokens: TokenServer,
                                                      tmp_path: Path) -> None:
    if not dovecot_available():
        pytest.skip("dovecot not installed")
    dovecot = start_oauth_dovecot(tokens, mechanisms="oauthbearer")
    try:
        now = Clock()
        h = harness(dovecot, smtp_sink, tokens, tmp_path)
        stored(tokens, tmp_path / "token.json", now())
        mailbox, _token = mailbox_of(h, now)
        mailbox.open()
        mailbox.close()
        assert f"user=<{USER}>, method=OAUTHBEARER" in dovecot.log()
    finally:
        dovecot.stop()


def test_expiring_access_token_is_refreshed_before_use(oauth_dovecot: DovecotServer, smtp_sink: SmtpSink,
                                                       tokens: TokenServer, tmp_path: Path) -> None:
    now = Clock()
    h = harness(oauth_dovecot, smtp_sink, tokens, tmp_path)
    old = stored(tokens, tmp_path / "token.json", now(), expires_in=120)  # inside the 300 s margin
    before = tokens.refreshes()
    mailbox, token = mailbox_of(h, now)
    mailbox.open()
    mailbox.close()
    assert tokens.refreshes() == before + 1
    new = read_token_file(tmp_path / "token.json")
    assert new.access_token != old.access_token and new.refresh_token == old.refresh_token  # not rotated
    assert new.expires_at is not None and new.expires_at > now() + dt.timedelta(minutes=50)
    # An hour later by casebot's clock the new one is due too.
    now.at += dt.timedelta(hours=1)
    mailbox.open()
    mailbox.close()
    assert tokens.refreshes() == before + 2
    assert token.status().expires_at == read_token_file(tmp_path / "token.json").expires_at


def test_rejected_token_is_refreshed_once_and_retried(oauth_dovecot: DovecotServer, smtp_sink: SmtpSink,
                                                      tokens: TokenServer, tmp_path: Path) -> None:
    now = Clock()
    h = harness(oauth_dovecot, smtp_sink, tokens, tmp_path)
    old = stored(tokens, tmp_path / "token.json", now())
    tokens.expire(old.access_token)  # the server no longer takes it; casebot thinks it has an hour left
    before = tokens.refreshes()
    mailbox, token = mailbox_of(h, now)
    with structlog.testing.capture_logs() as logs:
        mailbox.open()
    mailbox.close()
    assert tokens.refreshes() == before + 1
    assert [e["event"] for e in logs if e["log_level"] != "info"] == ["oauth.rejected"]  # a warning, not an error
    assert not token.status().failing


def test_rejection_of_the_fresh_token_is_reported(oauth_dovecot: DovecotServer, smtp_sink: SmtpSink,
                                                  tokens: TokenServer, tmp_path: Path) -> None:
    now = Clock()
    # The token is for USER, but casebot logs in as someone else: Dovecot refuses every token.
    h = harness(oauth_dovecot, smtp_sink, tokens, tmp_path, user="other@example.com")
    stored(tokens, tmp_path / "token.json", now())
    before = tokens.refreshes()
    mailbox, token = mailbox_of(h, now)
    with structlog.testing.capture_logs() as logs, pytest.raises(MailboxUnavailable, match="login"):
        mailbox.open()
    assert tokens.refreshes() == before + 1  # once, not in a loop
    status = token.status()
    assert status.failing and "rejected" in status.reason
    assert [e["log_level"] for e in logs if e["event"] == "oauth.token_failed"] == ["error"]


def test_revoked_refresh_token_alerts_once(oauth_dovecot: DovecotServer, smtp_sink: SmtpSink, tokens: TokenServer,
                                           tmp_path: Path, db_url: str) -> None:
    """On SQLite and PostgreSQL: the alert's once-only key is the outbox's unique index."""
    now = Clock()
    h = harness(oauth_dovecot, smtp_sink, tokens, tmp_path, db_url=db_url)
    old = stored(tokens, tmp_path / "token.json", now(), expires_in=-60)  # expired: casebot must refresh
    tokens.revoke(old.refresh_token)
    runtime = Runtime.build(h.settings(), now)
    try:
        stop = threading.Event()
        with structlog.testing.capture_logs() as logs, pytest.raises(MailboxUnavailable, match="invalid_grant"):
            runtime.ingest_once(stop)
        failed = [e for e in logs if e["event"] == "oauth.token_failed"]
        assert [e["log_level"] for e in failed] == ["error"]
        assert old.refresh_token not in json.dumps(logs, default=str)  # never a token in the log
        (status,) = runtime.token_statuses()
        assert status.failing and "invalid_grant" in status.reason
        monitor.sync_tokens(runtime.token_statuses())  # as the daemon does before /healthz and the state file
        assert "invalid_grant" in metrics.tokens()["mailbox"].error  # what /metrics and /healthz show
        runtime.deliver_once(stop)  # queues the alert, then delivers it (outgoing still works: no login)
        assert smtp_sink.wait_for(1)
        mail = smtp_sink.messages[0]
        assert mail.rcpt_tos == ["team@example.com"]
        assert b"casebot oauth login --for mailbox" in mail.content
        # The failure lasts: more passes, no second mail, no second error line.
        with structlog.testing.capture_logs() as again:
            for _ in range(2):
                with pytest.raises(MailboxUnavailable):
                    runtime.ingest_once(stop)
                runtime.deliver_once(stop)
        assert len(smtp_sink.messages) == 1
        assert not [e for e in again if e["event"] == "oauth.token_failed"]
        # The admin logs in again: the next pass works and the status recovers.
        stored(tokens, tmp_path / "token.json", now())
        runtime.ingest_once(stop)
        assert not runtime.token_statuses()[0].failing
        monitor.sync_tokens(runtime.token_statuses())
        board = metrics.tokens()["mailbox"]
        assert board.error == "" and board.expires_at is not None and board.expires_at > now()
    finally:
        runtime.close()


def test_rotated_refresh_token_rewrites_the_file_atomically_0600(oauth_dovecot: DovecotServer,
                                                                 smtp_sink: SmtpSink, tmp_path: Path) -> None:
    with TokenServer(user=USER, rotate=True) as rotating:
        dovecot = start_oauth_dovecot(rotating)
        try:
            now = Clock()
            h = harness(dovecot, smtp_sink, rotating, tmp_path)
            path = tmp_path / "token.json"
            old = stored(rotating, path, now(), expires_in=0)
            os.chmod(path, 0o644)  # even if someone loosened it, the rewrite is 0600 again
            inode = path.stat().st_ino
            mailbox, _token = mailbox_of(h, now)
            mailbox.open()
            mailbox.close()
            new = read_token_file(path)
            assert new.refresh_token != old.refresh_token
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
            assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".token")) == []
            # The old refresh token is dead at the server; the new one works for the next refresh.
            now.at += dt.timedelta(hours=2)
            mailbox.open()
            mailbox.close()
            assert read_token_file(path).refresh_token not in (old.refresh_token, new.refresh_token)
        finally:
            dovecot.stop()


# -- SMTP ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def oauth_sink(tokens: TokenServer) -> Iterator[OAuthSmtpSink]:
    sink = OAuthSmtpSink(tokens).start()
    try:
        yield sink
    finally:
        sink.stop()


RAW = b"From: support@example.com\r\nTo: c@example.org\r\nSubject: hi\r\nMessage-ID: <x@example.com>\r\n\r\nhi\r\n"


def test_smtp_xoauth2_and_one_retry_after_a_rejection(oauth_dovecot: DovecotServer, oauth_sink: OAuthSmtpSink,
                                                      tokens: TokenServer, tmp_path: Path) -> None:
    now = Clock()
    h = harness(oauth_dovecot, oauth_sink, tokens, tmp_path, username=USER, auth="oauth2", oauth2="mailbox")
    first = stored(tokens, tmp_path / "token.json", now())
    settings = h.settings()
    built = build_tokens(settings, now)
    assert built["outgoing"] is built["mailbox"]  # one token, one refresh schedule
    sender = build_sender(settings, built)
    try:
        sender.send(USER, ["c@example.org"], RAW, "k1")
        assert oauth_sink.wait_for(1) and oauth_sink.logins == [(USER, True)]
        sender.close()
        tokens.expire(first.access_token)
        before = tokens.refreshes()
        sender.send(USER, ["c@example.org"], RAW, "k2")
        assert oauth_sink.wait_for(2)
        assert oauth_sink.logins[1:] == [(USER, False), (USER, True)]
        assert tokens.refreshes() == before + 1
    finally:
        sender.close()


def test_smtp_refused_token_is_a_transient_connection_error(oauth_dovecot: DovecotServer, oauth_sink: OAuthSmtpSink,
                                                            tokens: TokenServer, tmp_path: Path) -> None:
    now = Clock()
    h = harness(oauth_dovecot, oauth_sink, tokens, tmp_path, username=USER, auth="oauth2", oauth2="mailbox")
    old = stored(tokens, tmp_path / "token.json", now(), expires_in=10)
    tokens.revoke(old.refresh_token)
    settings = h.settings()
    built = build_tokens(settings, now)
    sender = build_sender(settings, built)
    with pytest.raises(TransientSendError, match="invalid_grant") as caught:
        sender.send(USER, ["c@example.org"], RAW, "k1")
    assert caught.value.connection
    assert built["outgoing"].status().failing
    assert oauth_sink.messages == []


def test_poll_reports_the_token_failure(oauth_dovecot: DovecotServer, smtp_sink: SmtpSink, tokens: TokenServer,
                                        tmp_path: Path) -> None:
    now = Clock()
    h = harness(oauth_dovecot, smtp_sink, tokens, tmp_path)
    (tmp_path / "token.json").unlink(missing_ok=True)  # never logged in
    result = poll(h.settings(), now)
    assert any("casebot oauth login" in e for e in result.errors)
    assert smtp_sink.wait_for(1)  # the alert went out in the same pass (with the day's digest, maybe)
    alerts = [m for m in smtp_sink.messages if b"OAuth2 token failing" in m.content]
    assert len(alerts) == 1 and alerts[0].rcpt_tos == ["team@example.com"]
