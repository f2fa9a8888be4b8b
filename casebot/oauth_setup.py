"""From `[mailbox.oauth2]` / `[outgoing.oauth2]` to working tokens, and `casebot oauth login`.

Owns the choice of adapter per provider (msal for "microsoft", authlib for "google" and "generic"), the
providers' default endpoints and scopes, reading the client secret, building the `OAuthToken` each section logs
in with (one shared instance when `outgoing.oauth2 = "mailbox"`), and the interactive first login: the device
code flow (Microsoft, public client) or the authorization-code flow with a one-shot loopback listener on
127.0.0.1 (Google, generic, Microsoft with a client secret), ending with the token file written with mode 0600.
Must not log or print a token, nor decide when tokens are refreshed (`casebot.oauth` does).
"""

from __future__ import annotations

import datetime as dt
import html
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from casebot import clock
from casebot.config import ConfigError, OAuth2Settings, SecretSource, Settings
from casebot.oauth import Clock, OAuthError, OAuthToken, Provider, TokenSet, TokenStatus, write_token_file

GOOGLE_AUTH = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPES = ("https://mail.google.com/",)


class LoginProvider(Provider, Protocol):
    def authorization_url(self, redirect_uri: str) -> tuple[str, str]: ...

    def exchange(self, callback_url: str, state: str) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class TokenConfig:
    """Everything needed for one token: whose it is, its settings and the resolved paths."""

    section: str  # "mailbox" or "outgoing": whose [*.oauth2] table
    settings: OAuth2Settings
    token_file: Path
    client_secret: str | None
    ca_file: str


def token_config(settings: Settings, section: str) -> TokenConfig | None:
    """The token `section` logs in with (the mailbox's for `outgoing.oauth2 = "mailbox"`), None for passwords.
    Reads the client secret now; ConfigError names the key."""
    found = settings.oauth2_for(section)
    if found is None:
        return None
    owner, o = found
    base = settings.source.parent if settings.source is not None else None
    secret = SecretSource(f"{owner}.oauth2", None, o.client_secret_file or None, o.client_secret_env or None, base,
                          names=("client_secret_file", "client_secret_env")).resolve()
    ca = str(settings.resolve_path(o.ca_file)) if o.ca_file else ""
    return TokenConfig(owner, o, settings.resolve_path(o.token_file), secret, ca)


def make_provider(cfg: TokenConfig) -> LoginProvider:
    o = cfg.settings
    if o.provider == "microsoft":
        from casebot.oauth_msal import MsalProvider

        return MsalProvider(client_id=o.client_id, client_secret=cfg.client_secret, tenant=o.tenant,
                            authority=o.authority, scopes=o.scopes, ca_file=cfg.ca_file)
    from casebot.oauth_authlib import AuthlibProvider

    google = o.provider == "google"
    return AuthlibProvider(
        client_id=o.client_id, client_secret=cfg.client_secret,
        token_url=o.token_url or (GOOGLE_TOKEN if google else ""),
        auth_url=o.auth_url or (GOOGLE_AUTH if google else ""),
        scopes=o.scopes or (GOOGLE_SCOPES if google else ()), ca_file=cfg.ca_file,
        # Google hands out a refresh token only for offline access, and again only with consent.
        extra_auth_params={"access_type": "offline", "prompt": "consent"} if google else None,
    )


def make_token(cfg: TokenConfig, now: Clock = clock.utcnow, provider: Provider | None = None) -> OAuthToken:
    o = cfg.settings
    expires = dt.date.fromisoformat(o.client_secret_expires) if o.client_secret_expires else None
    return OAuthToken(cfg.section, cfg.token_file, provider or make_provider(cfg), now, margin=o.refresh_margin,
                      secret_expires=expires, secret_warn_days=o.secret_warn_days)


def build_tokens(settings: Settings, now: Clock = clock.utcnow) -> dict[str, OAuthToken]:
    """`{"mailbox": token, "outgoing": token}` for the sections that use OAuth2 (sharing one when configured)."""
    out: dict[str, OAuthToken] = {}
    by_owner: dict[str, OAuthToken] = {}
    for section in ("mailbox", "outgoing"):
        cfg = token_config(settings, section)
        if cfg is None:
            continue
        if cfg.section not in by_owner:
            by_owner[cfg.section] = make_token(cfg, now)
        out[section] = by_owner[cfg.section]
    return out


def token_statuses(tokens: Mapping[str, OAuthToken]) -> list[TokenStatus]:
    """One snapshot per distinct token (a shared one once, under the name of its owner): what
    `monitor.sync_tokens` copies onto the metrics and health board."""
    return [t.status() for t in {id(t): t for t in tokens.values()}.values()]


# --- casebot oauth login ------------------------------------------------------------------------------------------


class _Callback(BaseHTTPRequestHandler):
    """Answers the browser's redirect once (a GET with the query, or msal's `form_post`) and hands the parameters
    to the waiting login."""

    server: _LoopbackServer

    def do_GET(self) -> None:
        self._answer(parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(parse_qs(self.rfile.read(min(length, 65536)).decode("ascii", "replace")))

    def _answer(self, query: dict[str, list[str]]) -> None:
        if "code" not in query and "error" not in query:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ok = "code" in query
        body = ("<p>casebot is logged in: you can close this window.</p>" if ok else
                f"<p>Login failed: {html.escape(query.get('error', ['?'])[0])}</p>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.params = {k: v[0] for k, v in query.items()}
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        return  # the query carries the authorization code: keep it out of stderr


class _LoopbackServer(HTTPServer):
    params: dict[str, str]

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.done = threading.Event()
        self.params = {}


def _loopback_login(provider: LoginProvider, port: int, host: str, show: Callable[[str], None],
                    timeout: float) -> Mapping[str, Any]:
    server = _LoopbackServer(port)
    redirect = f"http://{host}:{server.server_port}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        url, state = provider.authorization_url(redirect)
        show(f"Open this URL in a browser on this machine and sign in as the mailbox user:\n\n  {url}\n\n"
             f"Waiting for the answer on {redirect} ...")
        if not server.done.wait(timeout):
            raise OAuthError(f"no answer on {redirect} within {timeout:.0f} seconds")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    answer = server.params
    if "error" in answer:
        raise OAuthError(f"authorization refused: {answer['error']}: {answer.get('error_description', '')}")
    return provider.exchange(f"{redirect}?{urlencode(answer)}", state)


def login(settings: Settings, section: str, show: Callable[[str], None], now: Clock = clock.utcnow,
          timeout: float = 600.0, provider: LoginProvider | None = None) -> TokenConfig:
    """`casebot oauth login --for SECTION`: the first token, written to its token_file with mode 0600."""
    owner = settings.oauth2_for(section)
    if owner is None:
        raise ConfigError(f"{section}.auth: not 'oauth2', nothing to log in to")
    if owner[0] != section:
        raise ConfigError("outgoing.oauth2: \"mailbox\" shares the mailbox's token: run "
                          "'casebot oauth login --for mailbox'")
    cfg = token_config(settings, section)
    assert cfg is not None
    p = provider or make_provider(cfg)
    device = getattr(p, "device_flow", None)
    if device is not None and getattr(p, "public", False):
        answer = device(show)
    else:
        host = "localhost" if cfg.settings.provider == "microsoft" else "127.0.0.1"
        answer = _loopback_login(p, cfg.settings.redirect_port, host, show, timeout)
    tokens = TokenSet.from_response(answer, now())
    if not tokens.refresh_token:
        raise OAuthError("the server gave no refresh token (Microsoft: offline_access; Google: access_type=offline)")
    write_token_file(cfg.token_file, tokens)
    return cfg
