"""OAuth2 access tokens for IMAP and SMTP, independent of any provider library.

Owns the token set (`TokenSet`: access token, refresh token, expiry) and its file (`token_file`: JSON, written
atomically with mode 0600 through a temp file and `os.replace`, re-read when another process such as `casebot
oauth login` rewrote it), when to refresh (before expiry with a margin, or forced after the server rejected a
token), the classification of refresh failures (`TokenRefused`: revoked or expired refresh token, a human must log
in again; `TokenUnavailable`: try again later), the in-process `TokenStatus` that health, metrics and the staff
alert read, the client-secret expiry check, and the SASL strings (XOAUTH2, OAUTHBEARER). The provider libraries
sit behind the `Provider` protocol (`casebot.oauth_msal`, `casebot.oauth_authlib`). Must not import msal, authlib
or any mail library, read the system clock (`now` is injected) or log a token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

log = structlog.get_logger("casebot.oauth")

Clock = Callable[[], dt.datetime]

# Error codes of RFC 6749 section 5.2 (and Microsoft's) after which only a new interactive login helps.
REFUSED_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "interaction_required",
                            "consent_required", "invalid_scope", "unsupported_grant_type"})


class OAuthError(Exception):
    """Base of the token errors; the message is safe to log (never a token)."""


class TokenRefused(OAuthError):
    """The token endpoint refused the refresh token or the client (revoked, expired, secret expired): an admin must
    run `casebot oauth login` (or renew the client secret). Raises the alert."""


class TokenUnavailable(OAuthError):
    """The token endpoint could not be reached or failed (network, 5xx, a garbled answer): try again later."""


def classify(error: str, description: str = "") -> OAuthError:
    """The exception for an OAuth2 error response (`error`, `error_description`)."""
    text = f"{error}: {description}".strip(": ") if description else error
    return TokenRefused(text) if error in REFUSED_ERRORS else TokenUnavailable(text or "token endpoint error")


@dataclass(frozen=True)
class TokenSet:
    """One access token, the refresh token that renews it, and when the access token expires (UTC)."""

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    expires_at: dt.datetime | None
    token_type: str = "Bearer"
    scope: str = ""

    def needs_refresh(self, now: dt.datetime, margin: float) -> bool:
        """True when there is no access token or it expires within `margin` seconds."""
        if not self.access_token:
            return True
        if self.expires_at is None:
            return False
        return self.expires_at - dt.timedelta(seconds=margin) <= now

    @classmethod
    def from_response(cls, data: Mapping[str, Any], now: dt.datetime, previous: TokenSet | None = None) -> TokenSet:
        """A token endpoint's answer; a refresh that does not return a new refresh token keeps the old one."""
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise TokenUnavailable("token endpoint answered without an access_token")
        expires_at: dt.datetime | None = None
        if data.get("expires_in") is not None:
            try:
                expires_at = now + dt.timedelta(seconds=float(data["expires_in"]))
            except (TypeError, ValueError):
                expires_at = None
        elif data.get("expires_at") is not None:
            with contextlib.suppress(TypeError, ValueError, OverflowError, OSError):
                expires_at = dt.datetime.fromtimestamp(float(data["expires_at"]), dt.UTC)
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else "")
        scope = data.get("scope") or (previous.scope if previous else "")
        if isinstance(scope, list):
            scope = " ".join(str(s) for s in scope)
        return cls(access, str(refresh), expires_at, str(data.get("token_type") or "Bearer"), str(scope))

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "token_type": self.token_type, "scope": self.scope}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet:
        expires = data.get("expires_at")
        at = dt.datetime.fromisoformat(expires) if isinstance(expires, str) and expires else None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        return cls(str(data.get("access_token") or ""), str(data.get("refresh_token") or ""), at,
                   str(data.get("token_type") or "Bearer"), str(data.get("scope") or ""))


def read_token_file(path: Path) -> TokenSet:
    """The token set in `path`; OAuthError (TokenRefused when there is none) says what to do."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokenRefused(f"no token file {str(path)!r}: run 'casebot oauth login'") from None
    except OSError as exc:
        raise TokenUnavailable(f"cannot read token file {str(path)!r}: {exc.strerror}") from exc
    except ValueError as exc:
        raise TokenRefused(f"token file {str(path)!r} is not valid JSON: run 'casebot oauth login'") from exc
    if not isinstance(data, dict):
        raise TokenRefused(f"token file {str(path)!r} is not a JSON object: run 'casebot oauth login'")
    try:
        return TokenSet.from_json(data)
    except ValueError as exc:
        raise TokenRefused(f"token file {str(path)!r}: {exc}") from exc


def write_token_file(path: Path, tokens: TokenSet) -> None:
    """Replace `path` atomically: a temp file in the same folder, mode 0600 from birth, fsync, `os.replace`.

    A crash leaves either the old file or the new one, never half of one, and the token is never world-readable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(tokens.to_json(), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


def xoauth2(user: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft document it."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"


def oauthbearer(user: str, access_token: str, host: str, port: int) -> str:
    """The SASL OAUTHBEARER initial response of RFC 7628 (before base64)."""
    return f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {access_token}\x01\x01"


class Provider(Protocol):
    """A provider library behind one adapter: renews an access token from a refresh token."""

    def refresh(self, refresh_token: str) -> Mapping[str, Any]:
        """The token endpoint's answer (access_token, expires_in, maybe a new refresh_token). Raises TokenRefused
        or TokenUnavailable."""
        ...


@dataclass(frozen=True)
class TokenStatus:
    """What health, metrics and the alert need to know about one token (a snapshot; never the token itself)."""

    name: str  # "mailbox" or "outgoing" (the section whose [*.oauth2] it is)
    expires_at: dt.datetime | None = None  # of the current access token
    failing: bool = False
    reason: str = ""
    failing_since: dt.datetime | None = None
    secret_expires: dt.date | None = None
    secret_warn_days: int = 30

    def secret_days_left(self, today: dt.date) -> int | None:
        """Days until the client secret expires when that is within the warning window (0 or less: expired)."""
        if self.secret_expires is None or self.secret_warn_days <= 0:
            return None
        left = (self.secret_expires - today).days
        return left if left <= self.secret_warn_days else None


class OAuthToken:
    """One token file and its provider: hands out a valid access token, refreshing when needed (thread-safe:
    `outgoing.oauth2 = "mailbox"` shares one instance between the mailbox loop and the deliver job)."""

    def __init__(self, name: str, path: Path, provider: Provider, now: Clock, *, margin: float = 300.0,
                 secret_expires: dt.date | None = None, secret_warn_days: int = 30) -> None:
        self.name, self.path, self.provider, self.now, self.margin = name, path, provider, now, margin
        self._lock = threading.Lock()
        self._tokens: TokenSet | None = None
        self._stamp: tuple[int, int] | None = None
        self._status = TokenStatus(name, secret_expires=secret_expires, secret_warn_days=secret_warn_days)
        self._failed_at = ""

    def status(self) -> TokenStatus:
        with self._lock:
            return self._status

    def access_token(self, force_refresh: bool = False) -> str:
        """A usable access token: the stored one while it is valid for `margin` more seconds, else a refreshed
        one (and always a refreshed one with `force_refresh`). Raises TokenRefused (status failing, logged as an
        error) or TokenUnavailable."""
        with self._lock:
            tokens = self._load()
            now = self.now()
            if force_refresh or tokens.needs_refresh(now, self.margin):
                tokens = self._refresh(tokens, now, "forced" if force_refresh else "expiring")
            self._status = dataclasses.replace(self._status, expires_at=tokens.expires_at)
            return tokens.access_token

    def accepted(self, server: str = "") -> None:
        """`server` ("IMAP host", "SMTP host") accepted the token: a refresh failure, or that server's own
        rejection, is over. (A token shared by IMAP and SMTP that only SMTP rejects stays failing.)"""
        with self._lock:
            if self._status.failing and self._failed_at in ("", server):
                log.info("oauth.token_recovered", token=self.name)
                self._status = dataclasses.replace(self._status, failing=False, reason="", failing_since=None)

    def rejected(self, server: str, reason: str) -> None:
        """`server` rejected a freshly refreshed token too: report it (status failing, error logged once)."""
        with self._lock:
            self._fail(f"{server} rejected the token: {reason}", server)

    def _fail(self, reason: str, server: str = "") -> None:
        since = self._status.failing_since or self.now()
        if not self._status.failing:
            log.error("oauth.token_failed", token=self.name, reason=reason, token_file=str(self.path))
        self._failed_at = server  # "": the refresh itself failed, any server's acceptance ends it
        self._status = dataclasses.replace(self._status, failing=True, reason=reason, failing_since=since)

    def _load(self) -> TokenSet:
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except OSError:
            stamp = None
        if self._tokens is None or stamp != self._stamp:
            try:
                self._tokens = read_token_file(self.path)
            except TokenRefused as exc:
                self._fail(str(exc))
                raise
            self._stamp = stamp
        return self._tokens

    def _refresh(self, tokens: TokenSet, now: dt.datetime, why: str) -> TokenSet:
        if not tokens.refresh_token:
            exc = TokenRefused(f"token file {str(self.path)!r} has no refresh token: run 'casebot oauth login'")
            self._fail(str(exc))
            raise exc
        try:
            data = self.provider.refresh(tokens.refresh_token)
            fresh = TokenSet.from_response(data, now, tokens)
        except TokenRefused as exc:
            self._fail(f"refresh refused: {exc}")
            raise
        except TokenUnavailable as exc:
            log.warning("oauth.refresh_unavailable", token=self.name, reason=str(exc))
            raise
        rotated = fresh.refresh_token != tokens.refresh_token
        try:
            write_token_file(self.path, fresh)
        except OSError as exc:
            # Keep working with the new token in memory; with a rotated refresh token this matters: say so.
            log.error("oauth.token_file_unwritable", token=self.name, token_file=str(self.path), error=str(exc))
        else:
            st = os.stat(self.path)
            self._stamp = (st.st_mtime_ns, st.st_ino)
        self._tokens = fresh
        log.info("oauth.refreshed", token=self.name, why=why, rotated=rotated,
                 expires_at=fresh.expires_at.isoformat() if fresh.expires_at else None)
        return fresh
