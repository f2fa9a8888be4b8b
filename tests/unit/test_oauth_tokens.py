"""OAuth2 without a network: the config keys and their errors, the token set, the token file, the SASL strings,
the refresh decisions of `OAuthToken` (with a scripted provider), and the staff alert's once-only queueing."""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from casebot.config import ConfigError, OAuth2Settings, from_mapping
from casebot.jobs.oauth_alerts import OAuthAlerts
from casebot.notices import Identity, Notices
from casebot.oauth import (
    OAuthToken,
    TokenRefused,
    TokenSet,
    TokenStatus,
    TokenUnavailable,
    classify,
    oauthbearer,
    read_token_file,
    write_token_file,
    xoauth2,
)
from casebot.oauth_setup import build_tokens
from casebot.service import build_deps
from casebot.store import Store

NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


def mapping(mailbox_oauth2: dict[str, Any] | None = None, **outgoing: Any) -> dict[str, Any]:
    o = {"provider": "generic", "client_id": "cid", "token_url": "https://idp.example/token",
         "token_file": "/tmp/t.json", **(mailbox_oauth2 or {})}
    return {"mailbox": {"host": "imap.example.com", "username": "support@example.com", "auth": "oauth2",
                        "oauth2": o},
            "outgoing": {"host": "smtp.example.com", **outgoing}}


# -- config ---------------------------------------------------------------------------------------------------


def test_defaults_are_password_auth() -> None:
    s = from_mapping({"mailbox": {"host": "h", "username": "u"}})
    assert s.mailbox.auth == "password" and s.outgoing.auth == "password"
    assert s.oauth2_for("mailbox") is None and s.oauth2_for("outgoing") is None
    assert s.mailbox.oauth2 == OAuth2Settings() and s.outgoing.oauth2 == ""


def test_outgoing_shares_the_mailbox_token() -> None:
    s = from_mapping(mapping(username="support@example.com", auth="oauth2", oauth2="mailbox"))
    assert s.oauth2_for("outgoing") == ("mailbox", s.mailbox.oauth2)
    tokens = build_tokens(s)
    assert tokens["outgoing"] is tokens["mailbox"]


def test_outgoing_has_its_own_table() -> None:
    own = {"provider": "google", "client_id": "g", "token_file": "/tmp/o.json"}
    s = from_mapping(mapping(username="support@example.com", auth="oauth2", oauth2=own))
    found = s.oauth2_for("outgoing")
    assert found is not None and found[0] == "outgoing" and found[1].provider == "google"
    tokens = build_tokens(s)
    assert tokens["outgoing"] is not tokens["mailbox"]


@pytest.mark.parametrize(("change", "outgoing", "message"), [
    ({"provider": "yahoo"}, {}, "mailbox.oauth2.provider: must be one of"),
    ({"client_id": ""}, {}, "mailbox.oauth2.client_id: required"),
    ({"token_file": ""}, {}, "mailbox.oauth2.token_file: required"),
    ({"provider": "microsoft"}, {}, "mailbox.oauth2.tenant: required for provider microsoft"),
    ({"tenant": "contoso.onmicrosoft.com"}, {}, "mailbox.oauth2.tenant: only for provider microsoft"),
    ({"provider": "google", "authority": "https://x"}, {}, "mailbox.oauth2.authority: only for provider microsoft"),
    ({"token_url": ""}, {}, "mailbox.oauth2.token_url: required for provider generic"),
    ({"token_url": "http://idp.example/token"}, {}, "mailbox.oauth2.token_url: must be an https:// URL"),
    ({"client_secret_file": "a", "client_secret_env": "B"}, {}, "mailbox.oauth2: set only one of"),
    ({"client_secret_expires": "30.06.2027"}, {}, "mailbox.oauth2.client_secret_expires: expected a date"),
    ({"secret_warn_days": -1}, {}, "mailbox.oauth2.secret_warn_days"),
    ({"scopes": ["a b"]}, {}, "mailbox.oauth2.scopes[0]: one scope per entry"),
    ({"redirect_port": 70000}, {}, "mailbox.oauth2.redirect_port"),
    ({"unknown": 1}, {}, "mailbox.oauth2.unknown: unknown key"),
    ({}, {"auth": "oauth2", "username": "u@example.com"}, "outgoing.oauth2: required when outgoing.auth"),
    ({}, {"auth": "oauth2", "oauth2": "mailbox"}, "outgoing.username: required when outgoing.auth"),
    ({}, {"oauth2": "imap"}, "outgoing.oauth2: a table, or \"mailbox\""),
    ({}, {"oauth2": 3}, "outgoing.oauth2: expected a string"),
    ({}, {"auth": "oauth2", "username": "u@example.com", "oauth2": {"provider": "generic", "client_id": "x",
                                                                    "token_file": "/t"}},
     "outgoing.oauth2.token_url: required for provider generic"),
    ({}, {"auth": "kerberos"}, "outgoing.auth: must be one of"),
])
def test_bad_oauth2_settings_name_the_key(change: dict[str, Any], outgoing: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping(mapping(change, **outgoing))
    assert message in str(caught.value)


def test_mailbox_oauth2_and_a_password_do_not_mix() -> None:
    data = mapping()
    data["mailbox"]["password"] = "x"
    with pytest.raises(ConfigError, match=r"mailbox\.auth: 'oauth2' logs in with a token"):
        from_mapping(data)


def test_sharing_needs_mailbox_oauth2() -> None:
    data = mapping(username="u@example.com", auth="oauth2", oauth2="mailbox")
    data["mailbox"] = {"host": "h", "username": "u"}
    with pytest.raises(ConfigError, match=r"outgoing\.oauth2: \"mailbox\" shares"):
        from_mapping(data)


def test_client_secret_errors_name_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    s = from_mapping(mapping({"client_secret_env": "NOPE"}))
    with pytest.raises(ConfigError, match=r"mailbox.oauth2.client_secret_env: environment variable NOPE"):
        build_tokens(s)
    s = from_mapping(mapping({"client_secret_file": "missing"}), source=tmp_path / "casebot.toml")
    with pytest.raises(ConfigError, match=r"mailbox.oauth2.client_secret_file: cannot read"):
        build_tokens(s)


# -- tokens ---------------------------------------------------------------------------------------------------


def test_token_set_from_responses_and_refresh_decision() -> None:
    first = TokenSet.from_response({"access_token": "a1", "refresh_token": "r1", "expires_in": 3600}, NOW)
    assert first.expires_at == NOW + dt.timedelta(hours=1)
    assert not first.needs_refresh(NOW, 300)
    assert first.needs_refresh(NOW + dt.timedelta(minutes=55), 300)  # inside the margin
    again = TokenSet.from_response({"access_token": "a2", "expires_in": "60"}, NOW, first)
    assert again.refresh_token == "r1"  # Google: no new refresh token, keep the old one
    assert "a1" not in repr(first) and "r1" not in repr(first)
    with pytest.raises(TokenUnavailable):
        TokenSet.from_response({"token_type": "Bearer"}, NOW)
    assert TokenSet.from_json(first.to_json()) == first


def test_classify() -> None:
    assert isinstance(classify("invalid_grant", "AADSTS70008: expired"), TokenRefused)
    assert isinstance(classify("invalid_client"), TokenRefused)
    assert isinstance(classify("temporarily_unavailable"), TokenUnavailable)


def test_token_file_is_written_atomically_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "token.json"
    old_umask = os.umask(0)  # even with a careless umask
    try:
        write_token_file(path, TokenSet("a", "r", NOW))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_token_file(path) == TokenSet("a", "r", NOW)
    assert [p.name for p in path.parent.iterdir()] == ["token.json"]  # no temp file left
    path.write_text("{not json")
    with pytest.raises(TokenRefused, match="not valid JSON"):
        read_token_file(path)
    with pytest.raises(TokenRefused, match="casebot oauth login"):
        read_token_file(tmp_path / "none.json")


def test_sasl_strings() -> None:
    assert xoauth2("u@example.com", "tok") == "user=u@example.com\x01auth=Bearer tok\x01\x01"
    assert oauthbearer("u@example.com", "tok", "imap.example.com", 993) == (
        "n,a=u@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01")
    # What goes on the wire is the base64 of it, as Google documents for XOAUTH2.
    assert base64.b64encode(xoauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
                                    ).encode()).startswith(b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5")


class Scripted:
    """A provider that answers from a list: a dict is a token response, an exception is raised."""

    def __init__(self, *answers: Mapping[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def refresh(self, refresh_token: str) -> Mapping[str, Any]:
        self.calls.append(refresh_token)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_oauth_token_refreshes_only_when_due_and_reports_refusal(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_token_file(path, TokenSet("a1", "r1", NOW + dt.timedelta(hours=1)))
    now = [NOW]
    provider = Scripted({"access_token": "a2", "expires_in": 3600, "refresh_token": "r2"},
                        TokenUnavailable("timeout"), TokenRefused("invalid_grant: revoked"))
    token = OAuthToken("mailbox", path, provider, lambda: now[0], margin=300)
    assert token.access_token() == "a1" and provider.calls == []
    now[0] = NOW + dt.timedelta(minutes=56)
    assert token.access_token() == "a2" and provider.calls == ["r1"]
    assert read_token_file(path).refresh_token == "r2"  # rotated: written through
    with pytest.raises(TokenUnavailable):
        token.access_token(force_refresh=True)
    assert not token.status().failing  # a network problem is not the admin's to fix
    with pytest.raises(TokenRefused):
        token.access_token(force_refresh=True)
    status = token.status()
    assert status.failing and "revoked" in status.reason and status.failing_since == now[0]
    # Another process (casebot oauth login) writes a new file: it is picked up.
    write_token_file(path, TokenSet("a9", "r9", NOW + dt.timedelta(hours=3)))
    assert token.access_token() == "a9"
    token.accepted()
    assert not token.status().failing


def test_a_rejection_by_one_server_is_not_ended_by_the_other(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_token_file(path, TokenSet("a1", "r1", NOW + dt.timedelta(hours=1)))
    token = OAuthToken("mailbox", path, Scripted(), lambda: NOW)
    token.rejected("SMTP smtp.example.com", "535 5.7.139 SmtpClientAuthentication is disabled")
    token.accepted("IMAP imap.example.com")  # the shared token works for IMAP: SMTP is still broken
    assert token.status().failing and "SMTP smtp.example.com rejected" in token.status().reason
    token.accepted("SMTP smtp.example.com")
    assert not token.status().failing


def test_secret_days_left() -> None:
    status = TokenStatus("mailbox", secret_expires=dt.date(2027, 6, 30), secret_warn_days=30)
    assert status.secret_days_left(dt.date(2027, 5, 1)) is None
    assert status.secret_days_left(dt.date(2027, 6, 1)) == 29
    assert status.secret_days_left(dt.date(2027, 7, 2)) == -2
    assert TokenStatus("m").secret_days_left(dt.date(2027, 6, 1)) is None


def test_alerts_are_queued_once(tmp_path: Path) -> None:
    settings = from_mapping({"mailbox": {"host": "h", "username": "u"},
                             "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"}})
    store = Store(settings.database.url)
    store.upgrade()
    try:
        notices: Notices = build_deps(settings).notices
        assert isinstance(notices.identity, Identity)
        alerts = OAuthAlerts(notices, "team@example.com")
        expiring = TokenStatus("mailbox", secret_expires=dt.date(2026, 12, 20), secret_warn_days=30)
        failing = TokenStatus("outgoing", failing=True, reason="refresh refused: invalid_grant",
                              failing_since=NOW - dt.timedelta(hours=1))
        first = alerts.run(store, [expiring, failing], NOW)
        assert first == ["oauth:secret_expiring:mailbox:2026-12-20", "oauth:token_failed:outgoing:2026-12-03"]
        assert alerts.run(store, [expiring, failing], NOW + dt.timedelta(hours=5)) == []
        # A new failure on a later day is a new mail.
        later = TokenStatus("outgoing", failing=True, reason="x", failing_since=NOW + dt.timedelta(days=2))
        assert alerts.run(store, [later], NOW + dt.timedelta(days=2)) == ["oauth:token_failed:outgoing:2026-12-05"]
        with store.transaction() as tx:
            claims = tx.outbox_has("oauth:secret_expiring:mailbox:2026-12-20")
        assert claims
        assert OAuthAlerts(notices, "").run(store, [failing], NOW) == []  # no staff.notify: logged only
    finally:
        store.close()
