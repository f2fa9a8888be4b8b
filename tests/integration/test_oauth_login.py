"""`casebot oauth login` and the provider adapters against the real token server of tests/oauth_servers.py.

Generic (authlib): the loopback authorization-code flow with PKCE, the browser played by urllib following the
server's redirect to casebot's one-shot listener. Microsoft (msal): the token server speaks HTTPS with a
throw-away certificate and serves Entra-style metadata under a tenant path, so msal itself runs its device code
flow and its refresh_token grant against it (`authority` points there; `ca_file` trusts the certificate).
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
import stat
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cbtest import quiet_logs
from oauth_servers import CLIENT_ID, CLIENT_SECRET, TokenServer

from casebot import cli, clock
from casebot.config import Settings, from_mapping
from casebot.oauth import TokenRefused, read_token_file, write_token_file
from casebot.oauth_setup import login, make_token, token_config

USER = "support@example.com"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


def settings(tmp_path: Path, oauth2: dict[str, Any], **outgoing: Any) -> Settings:
    return from_mapping({
        "mailbox": {"kind": "imap", "host": "127.0.0.1", "security": "none", "username": USER,
                    "auth": "oauth2", "oauth2": {"token_file": str(tmp_path / "token.json"), **oauth2}},
        "outgoing": {"kind": "smtp", "host": "127.0.0.1", "security": "none", **outgoing},
        "database": {"url": f"sqlite:///{tmp_path / 'casebot.db'}"},
    }, source=tmp_path / "casebot.toml")


def browser(shown: list[str], cafile: Path | None = None) -> Any:
    """What a person does with the printed URL: open it (the server approves and redirects to casebot)."""
    def show(text: str) -> None:
        shown.append(text)
        url = re.search(r"https?://\S+/authorize\?\S+", text)
        assert url, text
        ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
        with urllib.request.urlopen(url.group(0), timeout=10, context=ctx) as resp:  # follows a 302 to casebot
            page = resp.read()
        form = re.search(rb'<form method="post" action="([^"]+)">(.*)</form>', page)
        if form:  # response_mode=form_post: post the form, as a browser's script would
            fields = dict(re.findall(rb'name="([^"]+)" value="([^"]*)"', form.group(2)))
            body = urllib.parse.urlencode({k.decode(): v.decode() for k, v in fields.items()}).encode()
            with urllib.request.urlopen(form.group(1).decode(), body, timeout=10) as resp:
                page = resp.read()
        assert b"logged in" in page
    return show


def test_generic_loopback_login_writes_a_0600_token_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(CLIENT_SECRET + "\n")
    with TokenServer(user=USER) as server:
        s = settings(tmp_path, {"provider": "generic", "client_id": CLIENT_ID, "client_secret_file": "secret",
                                "token_url": server.token_url, "auth_url": server.auth_url, "scopes": ["mail"]})
        shown: list[str] = []
        cfg = login(s, "mailbox", browser(shown), timeout=30)
        assert "Open this URL" in shown[0] and "code_challenge_method=S256" in shown[0]
        assert server.grants() == ["authorization_code"]  # the server checked the PKCE verifier
        path = tmp_path / "token.json"
        assert cfg.token_file == path and stat.S_IMODE(path.stat().st_mode) == 0o600
        tokens = read_token_file(path)
        assert tokens.refresh_token and server.active(tokens.access_token) == USER
        # The token it wrote is the one casebot then refreshes.
        token = make_token(cfg)
        assert token.access_token(force_refresh=True) != tokens.access_token
        assert server.grants() == ["authorization_code", "refresh_token"]


def test_generic_login_with_a_wrong_secret_fails_and_writes_nothing(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_SECRET", "wrong")
    with TokenServer(user=USER) as server:
        s = settings(tmp_path, {"provider": "generic", "client_id": CLIENT_ID, "client_secret_env": "CB_SECRET",
                                "token_url": server.token_url, "auth_url": server.auth_url})
        with pytest.raises(TokenRefused, match="invalid_client"):
            login(s, "mailbox", browser([]), timeout=30)
    assert not (tmp_path / "token.json").exists()


@pytest.fixture(scope="module")
def entra() -> Iterator[TokenServer]:
    with TokenServer(tls=True, user=USER) as server:
        yield server


def microsoft(server: TokenServer, **extra: Any) -> dict[str, Any]:
    assert server.cert_path is not None
    return {"provider": "microsoft", "tenant": "contoso.example", "authority": f"{server.base}/contoso.example",
            "ca_file": str(server.cert_path), **extra}


def test_microsoft_device_code_login_and_refresh_through_msal(tmp_path: Path, entra: TokenServer) -> None:
    s = settings(tmp_path, microsoft(entra, client_id="public-client"))
    shown: list[str] = []
    before = len(entra.grants())
    cfg = login(s, "mailbox", shown.append, timeout=30)
    assert shown == [f"To sign in, open {entra.base}/device and enter the code ABCD-EFGH."]
    device = "urn:ietf:params:oauth:grant-type:device_code"
    assert entra.grants()[before:] == [device, device]  # msal polled: pending, then the tokens
    tokens = read_token_file(cfg.token_file)
    assert stat.S_IMODE(cfg.token_file.stat().st_mode) == 0o600 and tokens.refresh_token
    now = clock.utcnow()
    token = make_token(cfg, lambda: now + dt.timedelta(hours=2))  # expired by then: msal refreshes
    fresh = token.access_token()
    assert fresh != tokens.access_token and entra.active(fresh) == USER
    assert entra.grants()[-1] == "refresh_token"


def test_microsoft_confidential_client_refresh_and_revocation(tmp_path: Path, entra: TokenServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_SECRET", CLIENT_SECRET)
    s = settings(tmp_path, microsoft(entra, client_id=CLIENT_ID, client_secret_env="CB_SECRET",
                                     client_secret_expires="2099-01-01"))
    cfg = token_config(s, "mailbox")
    assert cfg is not None and cfg.client_secret == CLIENT_SECRET
    answer = entra.issue(USER)
    from casebot.oauth import TokenSet

    write_token_file(cfg.token_file, TokenSet(answer["access_token"], answer["refresh_token"], None))
    token = make_token(cfg)
    assert entra.active(token.access_token(force_refresh=True)) == USER  # the server checked the secret
    entra.revoke(answer["refresh_token"])
    with pytest.raises(TokenRefused, match="invalid_grant"):
        token.access_token(force_refresh=True)
    assert token.status().failing and token.status().secret_expires == dt.date(2099, 1, 1)


def test_microsoft_confidential_client_browser_login_through_msal(tmp_path: Path, entra: TokenServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_SECRET", CLIENT_SECRET)
    s = settings(tmp_path, microsoft(entra, client_id=CLIENT_ID, client_secret_env="CB_SECRET"))
    shown: list[str] = []
    before = len(entra.grants())
    cfg = login(s, "mailbox", browser(shown, entra.cert_path), timeout=30)
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A" in shown[0]  # Entra's Web redirect for confidential apps
    assert "code_challenge_method=S256" in shown[0] and "offline_access" in shown[0]
    assert "response_mode=form_post" in shown[0]  # the code never sits in a URL
    assert entra.grants()[before:] == ["authorization_code"]  # with the secret and the PKCE verifier
    tokens = read_token_file(cfg.token_file)
    assert tokens.refresh_token and entra.active(tokens.access_token) == USER


# -- the command line ---------------------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "casebot.toml"
    path.write_text(text)
    return path


BASE = """
[mailbox]
host = "127.0.0.1"
security = "none"
username = "support@example.com"
auth = "oauth2"
[mailbox.oauth2]
provider = "generic"
client_id = "casebot-test-client"
token_url = "{token_url}"
auth_url = "{auth_url}"
token_file = "token.json"
[outgoing]
host = "127.0.0.1"
security = "none"
username = "support@example.com"
auth = "oauth2"
oauth2 = "mailbox"
[database]
url = "sqlite:///casebot.db"
"""


def test_cli_oauth_status_and_login_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, BASE.format(token_url="http://127.0.0.1:9/token",
                                              auth_url="http://127.0.0.1:9/authorize"))
    assert cli.main(["--config", str(path), "oauth", "status"]) == 1  # no token yet
    out = capsys.readouterr().out
    assert "mailbox: generic, no token file" in out and "outgoing: shares the mailbox token" in out
    assert cli.main(["--config", str(path), "oauth", "login", "--for", "outgoing"]) == 78
    assert "casebot oauth login --for mailbox" in capsys.readouterr().err
    write_token_file(tmp_path / "token.json", read_token_file_or_new())
    assert cli.main(["--config", str(path), "oauth", "status"]) == 0
    assert "refresh token present" in capsys.readouterr().out


def read_token_file_or_new() -> Any:
    from casebot.oauth import TokenSet

    return TokenSet("at", "rt", clock.utcnow() + dt.timedelta(hours=1))


def test_cli_oauth_login_without_an_answer_times_out(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE.format(token_url="http://127.0.0.1:9/token",
                                              auth_url="http://127.0.0.1:9/authorize"))
    # Port 9 (discard) is closed: the "browser" cannot even reach the authorization endpoint, so the login
    # waits for an answer that never comes; --timeout bounds it.
    assert cli.main(["--config", str(path), "oauth", "login", "--timeout", "0.3"]) == 1


def test_cli_oauth_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, BASE.format(token_url="x", auth_url="y").replace(
        'provider = "generic"', 'provider = "google"\ntenant = "contoso.onmicrosoft.com"'))
    assert cli.main(["--config", str(path), "oauth", "status"]) == 78
    assert "mailbox.oauth2.tenant: only for provider microsoft" in capsys.readouterr().err
