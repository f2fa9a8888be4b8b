"""Real OAuth2 servers for the tests: a token server, Dovecot with its oauth2 passdb, aiosmtpd with XOAUTH2.

* :class:`TokenServer` -- a small OAuth2 authorization server on ``127.0.0.1:<random>`` (stdlib ``http.server`` in
  a thread; HTTPS with a throw-away certificate when asked, which msal needs). It issues, refreshes (optionally
  rotating the refresh token), expires and revokes tokens, runs the authorization-code flow with PKCE
  (``/authorize`` approves at once and redirects), the device code flow (``.../devicecode``), Microsoft-style
  OpenID metadata under any tenant path, and token introspection (``/introspect``) for Dovecot and the SMTP sink.
* :func:`start_oauth_dovecot` -- a :class:`servers.DovecotServer` whose only passdb is ``oauth2``, introspecting
  tokens at that server (mechanisms XOAUTH2 and OAUTHBEARER).
* :class:`OAuthSmtpSink` -- a :class:`servers.SmtpSink` that requires AUTH XOAUTH2 and checks the token by
  introspection at the token server.

Does not import pytest (``tests/conftest.py`` style fixtures live in the tests that use them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult
from servers import DovecotServer, SmtpSink, _self_signed

CLIENT_ID = "casebot-test-client"
CLIENT_SECRET = "s3cret-client"


@dataclass
class _Access:
    user: str
    expires: float  # wall clock: what the server believes


@dataclass
class TokenServerState:
    access: dict[str, _Access] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # code -> user, redirect_uri, challenge
    devices: dict[str, tuple[str, int]] = field(default_factory=dict)  # device code -> user, pending polls left
    grants: list[str] = field(default_factory=list)  # grant_type of every /token request, in order
    introspections: int = 0


class TokenServer:
    """An OAuth2 server for tests. `clients` maps client ids to their secret (None: a public client)."""

    def __init__(self, *, tls: bool = False, expires_in: int = 3600, rotate: bool = False,
                 clients: dict[str, str | None] | None = None, user: str = "support@example.com") -> None:
        self.tls, self.expires_in, self.rotate = tls, expires_in, rotate
        self.clients = clients if clients is not None else {CLIENT_ID: CLIENT_SECRET, "public-client": None}
        self.user = user  # who signs in at /authorize and for the device code
        self.state = TokenServerState()
        self.lock = threading.Lock()
        self.cert_path: Path | None = None
        self._root: Path | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> Self:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.token_server = self  # type: ignore[attr-defined]
        if self.tls:
            import tempfile

            self._root = Path(tempfile.mkdtemp(prefix="casebot-tokens-"))
            _self_signed(self._root)
            self.cert_path = self._root / "cert.pem"
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self._root / "cert.pem", self._root / "key.pem")
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
        if self._root is not None:
            import shutil

            shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    @property
    def auth_url(self) -> str:
        return f"{self.base}/authorize"

    @property
    def introspect_url(self) -> str:
        return f"{self.base}/introspect"

    # -- what a test does to tokens --

    def issue(self, user: str | None = None, expires_in: int | None = None) -> dict[str, Any]:
        """A fresh token response for `user`, as the token endpoint would answer."""
        with self.lock:
            return self._issue(user or self.user, expires_in)

    def _issue(self, user: str, expires_in: int | None = None, refresh: str | None = None) -> dict[str, Any]:
        life = self.expires_in if expires_in is None else expires_in
        access = "at-" + secrets.token_urlsafe(18)
        self.state.access[access] = _Access(user, time.time() + life)
        if refresh is None:
            refresh = "rt-" + secrets.token_urlsafe(18)
            self.state.refresh[refresh] = user
        info = base64.urlsafe_b64encode(json.dumps({"uid": user, "utid": "tenant"}).encode()).decode().rstrip("=")
        return {"access_token": access, "token_type": "Bearer", "expires_in": life, "refresh_token": refresh,
                "scope": "mail", "client_info": info}

    def expire(self, access_token: str) -> None:
        """The server forgets an access token: it is rejected from now on (casebot still thinks it is valid)."""
        with self.lock:
            self.state.access.pop(access_token, None)

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and every access token of its user."""
        with self.lock:
            user = self.state.refresh.pop(refresh_token, None)
            for token in [t for t, a in self.state.access.items() if a.user == user]:
                del self.state.access[token]

    def grants(self) -> list[str]:
        with self.lock:
            return list(self.state.grants)

    def refreshes(self) -> int:
        return self.grants().count("refresh_token")

    def active(self, access_token: str) -> str | None:
        """The user of a valid access token, else None."""
        with self.lock:
            a = self.state.access.get(access_token)
            return a.user if a is not None and a.expires > time.time() else None

    # -- endpoints --

    def _client_ok(self, form: dict[str, str], header: str | None) -> bool:
        cid, secret = form.get("client_id", ""), form.get("client_secret")
        if header and header.startswith("Basic "):
            cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            cid, secret = urllib.parse.unquote(cid), urllib.parse.unquote(secret)
        if cid not in self.clients:
            return False
        expected = self.clients[cid]
        return expected is None or secret == expected

    def token(self, form: dict[str, str], auth_header: str | None) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        with self.lock:
            self.state.grants.append(grant)
            if not self._client_ok(form, auth_header):
                return 401, {"error": "invalid_client", "error_description": "unknown client or bad secret"}
            if grant == "refresh_token":
                rt = form.get("refresh_token", "")
                user = self.state.refresh.get(rt)
                if user is None:
                    return 400, {"error": "invalid_grant", "error_description": "refresh token revoked or expired"}
                if self.rotate:
                    del self.state.refresh[rt]
                    return 200, self._issue(user)
                return 200, self._issue(user, refresh=rt)
            if grant == "authorization_code":
                found = self.state.codes.pop(form.get("code", ""), None)
                if found is None or found[1] != form.get("redirect_uri"):
                    return 400, {"error": "invalid_grant", "error_description": "bad code or redirect_uri"}
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                if found[2] and challenge != found[2]:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE verifier does not match"}
                return 200, self._issue(found[0])
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                code = form.get("device_code", "")
                if code not in self.state.devices:
                    return 400, {"error": "expired_token"}
                user, pending = self.state.devices[code]
                if pending > 0:
                    self.state.devices[code] = (user, pending - 1)
                    return 400, {"error": "authorization_pending"}
                del self.state.devices[code]
                return 200, self._issue(user)
            return 400, {"error": "unsupported_grant_type"}

    def authorize(self, query: dict[str, str]) -> tuple[str, dict[str, str]]:
        """Approve at once as `self.user`: where the browser goes next (the redirect URI) and with what."""
        code = "code-" + secrets.token_urlsafe(12)
        with self.lock:
            self.state.codes[code] = (self.user, query.get("redirect_uri", ""), query.get("code_challenge", ""))
        return query.get("redirect_uri", ""), {"code": code, "state": query.get("state", "")}

    def devicecode(self) -> dict[str, Any]:
        code = "dc-" + secrets.token_urlsafe(12)
        with self.lock:
            self.state.devices[code] = (self.user, 1)  # one "authorization_pending" first: msal polls
        return {"device_code": code, "user_code": "ABCD-EFGH", "verification_uri": f"{self.base}/device",
                "expires_in": 600, "interval": 1,
                "message": f"To sign in, open {self.base}/device and enter the code ABCD-EFGH."}

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.state.introspections += 1
        user = self.active(form.get("token", ""))
        return {"active": True, "username": user, "scope": "mail"} if user else {"active": False}

    def metadata(self, tenant_path: str) -> dict[str, Any]:
        prefix = f"{self.base}{tenant_path}"
        return {"issuer": f"{prefix}/v2.0", "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize",
                "token_endpoint": f"{prefix}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{prefix}/oauth2/v2.0/devicecode"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code: int, body: dict[str, Any] | None = None, location: str | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @property
    def ts(self) -> TokenServer:
        server: TokenServer = self.server.token_server  # type: ignore[attr-defined]
        return server

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path.endswith("/.well-known/openid-configuration"):
            self._send(200, self.ts.metadata(url.path.split("/v2.0/")[0]))
        elif url.path.endswith("/authorize"):
            target, answer = self.ts.authorize(query)
            if query.get("response_mode") == "form_post":  # a page whose form the browser posts to casebot
                fields = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in answer.items())
                page = f'<form method="post" action="{target}">{fields}</form>'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
            else:
                self._send(302, None, f"{target}?{urllib.parse.urlencode(answer)}")
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        path = urllib.parse.urlsplit(self.path).path
        if path.endswith("/token"):
            code, body = self.ts.token(form, self.headers.get("Authorization"))
            self._send(code, body)
        elif path.endswith("/devicecode"):
            self._send(200, self.ts.devicecode())
        elif path.endswith("/introspect"):
            self._send(200, self.ts.introspect(form))
        else:
            self._send(404, {"error": "not_found"})

    def log_message(self, format: str, *args: Any) -> None:
        return


# -- Dovecot with the oauth2 passdb -------------------------------------------------------------------------------

# No anvil auth penalty (2, 4, 8 ... seconds after repeated failures from one IP) slowing the tests that make
# the server reject a token on purpose: without its socket, the penalty is off (Dovecot's documented switch).
_OAUTH2_PASSDB = """\
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}"""

_OAUTH2_EXT = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
"""


def start_oauth_dovecot(tokens: TokenServer, mechanisms: str = "xoauth2 oauthbearer") -> DovecotServer:
    """A Dovecot whose users log in only with an access token that `tokens` says is active for them."""
    return DovecotServer.start(
        passdb=_OAUTH2_PASSDB.replace("xoauth2 oauthbearer", mechanisms), auth_mechanisms=mechanisms,
        extra_files={"dovecot-oauth2.conf.ext": _OAUTH2_EXT.format(url=tokens.introspect_url)},
    )


# -- SMTP with AUTH XOAUTH2 ----------------------------------------------------------------------------------------


class OAuthSmtpSink(SmtpSink):
    """An SmtpSink that requires AUTH XOAUTH2 before MAIL and checks the token at the token server."""

    controller_kwargs: ClassVar[dict[str, Any]] = {"auth_require_tls": False, "auth_required": True}

    def __init__(self, tokens: TokenServer, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.tokens = tokens
        self.logins: list[tuple[str, bool]] = []  # (user, accepted) of every AUTH XOAUTH2

    async def auth_XOAUTH2(self, server: SMTPServer, args: list[str]) -> AuthResult:
        if len(args) < 2:
            return AuthResult(success=False, handled=False, message="501 5.5.2 initial response required")
        parts = base64.b64decode(args[1]).decode().split("\x01")
        user = next((p[5:] for p in parts if p.startswith("user=")), "")
        token = next((p[12:] for p in parts if p.startswith("auth=Bearer ")), "")
        body = urllib.parse.urlencode({"token": token}).encode()
        with urllib.request.urlopen(self.tokens.introspect_url, body, timeout=5) as resp:  # loopback only
            answer = json.loads(resp.read())
        ok = bool(answer.get("active")) and answer.get("username") == user
        self.logins.append((user, ok))
        if ok:
            return AuthResult(success=True, auth_data=user)
        # XOAUTH2: the error comes as a 334 challenge; the client answers with an empty line.
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")
