"""IMAP mailbox adapter: the only importer of imapclient.

Owns the connection (TLS verified by default, STARTTLS, socket timeouts), the login (LOGIN with a password, or
SASL XOAUTH2 / OAUTHBEARER with a `casebot.oauth` token, refreshed and retried once after a rejection), folder
selection and UIDVALIDITY, listing messages not yet processed (UNKEYWORD, or everything left in the folder when
processed mail is moved),
fetching with `BODY.PEEK[]` so `\\Seen` stays the humans' (with INTERNALDATE, the arrival time the rate limit
counts by; RFC822.SIZE first when `max_message_bytes` is set, so a mail over it is fetched only as its first
256 KiB), marking processed (keyword or MOVE), quarantine
(MOVE to a folder) and IDLE waits that notice a dead connection. Must not parse mail or touch the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, overload

import imapclient
import structlog
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from casebot.config import MailboxSettings
from casebot.oauth import OAuthError, OAuthToken
from casebot.transport import OVERSIZE_HEAD_BYTES, Fetched, MailboxUnavailable

log = structlog.get_logger("casebot.imap")

_ERRORS = (IMAPClientError, OSError, socket.timeout, ssl.SSLError, EOFError)


def ssl_context(ca_file: str) -> ssl.SSLContext:
    """Verifying context: certificate and host name are checked; `ca_file` adds a private CA."""
    return ssl.create_default_context(cafile=ca_file or None)


def _utc(value: object) -> dt.datetime | None:
    """INTERNALDATE as imapclient gives it (local time without a zone, by default) in UTC."""
    if not isinstance(value, dt.datetime):
        return None
    return value.astimezone(dt.UTC)


class PendingIds(Sequence[str]):
    """The ids of a SEARCH's UIDs (`<UIDVALIDITY>:<UID>`), made when read: a backlog of 100,000 messages is an
    array of numbers (4 bytes each), not 100,000 strings (about 70 bytes each) held for the whole pass."""

    def __init__(self, validity: int, uids: list[int]) -> None:
        self._validity, self._uids = validity, array("Q", uids)

    def __len__(self) -> int:
        return len(self._uids)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [f"{self._validity}:{uid}" for uid in self._uids[index]]
        return f"{self._validity}:{self._uids[index]}"

    def __eq__(self, other: object) -> bool:
        return list(self) == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


class ImapMailbox:
    def __init__(self, settings: MailboxSettings, password: str | None, oauth: OAuthToken | None = None) -> None:
        self.s = settings
        self._password = password
        self._oauth = oauth  # mailbox.auth = "oauth2": SASL XOAUTH2 (or OAUTHBEARER) with this token
        self.client: Any = None
        self.uidvalidity = 0
        self.use_move_for_done = bool(settings.processed_folder)

    # -- connection --

    def open(self) -> None:
        if self.client is not None:
            return
        s = self.s
        timeout = imapclient.SocketTimeout(connect=s.timeout, read=s.timeout)
        try:
            ctx = ssl_context(s.ca_file) if s.security != "none" else None
            client = IMAPClient(
                s.host, port=s.port, ssl=s.security == "tls", ssl_context=ctx, timeout=timeout, use_uid=True
            )
            if s.security == "starttls":
                client.starttls(ctx)
            self._login(client)
            info = client.select_folder(s.folder)
            self.uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            flags = info.get(b"PERMANENTFLAGS", ())
            if not self.use_move_for_done and b"\\*" not in flags and s.processed_keyword.encode() not in flags:
                client.logout()
                raise MailboxUnavailable(
                    f"IMAP folder {s.folder!r} on {s.host} does not allow keywords; set "
                    "mailbox.processed_folder so processed mail is moved instead"
                )
            for folder in {s.quarantine_folder, s.processed_folder} - {""}:
                if not client.folder_exists(folder):
                    try:
                        client.create_folder(folder)
                    except IMAPClientError:
                        # Another instance (or a human) created it a moment ago: that is all we wanted.
                        if not client.folder_exists(folder):
                            raise
            self.client = client
        except LoginError as exc:
            raise MailboxUnavailable(f"IMAP login as {s.username!r} on {s.host}:{s.port} failed: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise MailboxUnavailable(f"IMAP TLS certificate of {s.host} not trusted: {exc.verify_message}") from exc
        except _ERRORS as exc:
            raise MailboxUnavailable(f"IMAP {s.host}:{s.port}: {type(exc).__name__}: {exc}") from exc

    def _login(self, client: Any) -> None:
        """LOGIN with the password, or SASL with the OAuth2 token: refreshed before it expires, and once more
        after the server rejected it (then the rejection is reported: the token's status is failing)."""
        s, token = self.s, self._oauth
        if token is None:
            client.login(s.username, self._password or "")
            return

        def sasl(access: str) -> None:
            if client.has_capability("AUTH=XOAUTH2") or not client.has_capability("AUTH=OAUTHBEARER"):
                client.oauth2_login(s.username, access)
            else:
                client.oauthbearer_login(s.username, access)

        try:
            sasl(token.access_token())
        except OAuthError as exc:
            client.shutdown()
            raise MailboxUnavailable(f"IMAP OAuth2 token for {s.username!r}: {exc}") from exc
        except LoginError as exc:
            log.warning("oauth.rejected", token=token.name, server=s.host, reason=str(exc))
            try:
                sasl(token.access_token(force_refresh=True))
            except OAuthError as again:
                client.shutdown()
                raise MailboxUnavailable(f"IMAP OAuth2 token for {s.username!r}: {again}") from again
            except LoginError as again:
                token.rejected(f"IMAP {s.host}", str(again))
                raise
        token.accepted(f"IMAP {s.host}")

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except _ERRORS:
            with contextlib.suppress(*_ERRORS):
                client.shutdown()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.client is None:
            self.open()
        try:
            return fn(self.client, *args, **kwargs)
        except _ERRORS as exc:
            self.close()
            raise MailboxUnavailable(f"IMAP {what} failed: {type(exc).__name__}: {exc}") from exc

    # -- messages --

    def pending(self) -> Sequence[str]:
        def search(c: Any) -> list[int]:
            if self.use_move_for_done:
                return list(c.search(["ALL"]))
            return list(c.search(["UNKEYWORD", self.s.processed_keyword]))

        return PendingIds(self.uidvalidity or 0, sorted(self._call("SEARCH", search)))

    def _uids(self, ids: list[str]) -> list[int]:
        """The UIDs of ids that are still valid. An id carries the UIDVALIDITY it was listed under: after a
        reconnect that finds a new UIDVALIDITY, old UIDs may name other messages, so they are never touched
        (those messages are listed again under the new UIDVALIDITY and deduplicated by content)."""
        out = []
        for mid in ids:
            validity, _, uid = mid.partition(":")
            if int(validity) == self.uidvalidity:
                out.append(int(uid))
        return out

    def fetch(self, ids: list[str]) -> Iterator[Fetched]:
        size = max(1, self.s.batch_size)
        limit = self.s.max_message_bytes
        for i in range(0, len(ids), size):
            chunk = self._uids(ids[i : i + size])
            if not chunk:
                continue
            sizes: dict[int, int] = {}
            if limit:
                meta = self._call("FETCH", lambda c, uids=chunk: c.fetch(uids, ["RFC822.SIZE"]))
                sizes = {uid: int(meta.get(uid, {}).get(b"RFC822.SIZE", 0)) for uid in chunk}
            big = [uid for uid in chunk if sizes.get(uid, 0) > limit > 0]
            whole = [uid for uid in chunk if uid not in big]
            part = f"BODY.PEEK[]<0.{OVERSIZE_HEAD_BYTES}>"
            data: dict[int, Any] = {}
            for uids, item in ((whole, "BODY.PEEK[]"), (big, part)):
                if uids:
                    data.update(self._call("FETCH", lambda c, u=uids, it=item: c.fetch(u, [it, "INTERNALDATE"])))
            for uid in chunk:
                got = data.get(uid, {})
                body = got.get(b"BODY[]") if uid in whole else got.get(b"BODY[]<0>")
                if body is None:  # expunged meanwhile by someone else: nothing to do
                    continue
                yield Fetched(f"{self.uidvalidity}:{uid}", bytes(body), _utc(got.get(b"INTERNALDATE")),
                              sizes[uid] if uid in big else None)

    def source(self, message_id: str) -> str:
        return f"imap:{self.s.folder}:{message_id}"

    def mark_done(self, ids: list[str]) -> None:
        if self.client is None:
            self.open()  # before _uids: a reconnect may bring a new UIDVALIDITY
        uids = self._uids(ids)
        if not uids:
            return
        if self.use_move_for_done:
            self._move(uids, self.s.processed_folder)
        else:
            self._call("STORE", lambda c: c.add_flags(uids, [self.s.processed_keyword.encode()], silent=True))

    def quarantine(self, ids: list[str]) -> None:
        if self.client is None:
            self.open()
        uids = self._uids(ids)
        if uids:
            self._move(uids, self.s.quarantine_folder)

    def _move(self, uids: list[int], folder: str) -> None:
        def move(c: Any) -> None:
            if c.has_capability("MOVE"):
                c.move(uids, folder)
            else:
                c.copy(uids, folder)
                c.delete_messages(uids, silent=True)
                c.uid_expunge(uids) if c.has_capability("UIDPLUS") else c.expunge()

        self._call(f"MOVE to {folder!r}", move)

    def expunge_message_ids(self, message_ids: list[str], quarantine: bool = False) -> tuple[int, str]:
        """For a privacy erasure: delete and expunge the messages with these Message-IDs from the processed folder
        (`processed_folder`, else the watched folder, where processed mail keeps its keyword) or, with
        `quarantine`, the quarantine folder. UID SEARCH HEADER Message-ID per id; each hit's header is checked
        exactly (SEARCH matches substrings); then \\Deleted and UID EXPUNGE of those alone (plain EXPUNGE only on
        a server without UIDPLUS). Returns (messages expunged, the folder)."""
        import re

        folder = self.s.quarantine_folder if quarantine else (self.s.processed_folder or self.s.folder)
        wanted = {m.strip().strip("<>") for m in message_ids if m.strip().strip("<>")}
        if not wanted or not folder:
            return 0, folder

        def run(c: Any) -> int:
            if not c.folder_exists(folder):
                return 0
            c.select_folder(folder)
            try:
                hits: set[int] = set()
                for mid in sorted(wanted):
                    hits.update(int(u) for u in c.search(["HEADER", "Message-ID", mid]))
                exact = []
                for uid, item in (c.fetch(sorted(hits), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if hits
                                  else {}).items():
                    header = b"".join(bytes(v) for k, v in item.items() if bytes(k).startswith(b"BODY[HEADER"))
                    found = {x.decode("utf-8", "replace") for x in re.findall(rb"<([^<>\s]+)>", header)}
                    if found & wanted:
                        exact.append(int(uid))
                if exact:
                    c.delete_messages(exact, silent=True)
                    c.uid_expunge(exact) if c.has_capability("UIDPLUS") else c.expunge()
                return len(exact)
            finally:
                c.select_folder(self.s.folder)

        return int(self._call(f"EXPUNGE in {folder!r}", run)), folder

    # -- waiting --

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """IDLE until the server reports new mail, `timeout` passes, or `stop` is set (checked every second).

        imapclient's `idle_check()` returns `[]` at once, forever, on a dropped connection (#565): an empty
        answer that came back well before its timeout is treated as a disconnect.
        """
        if not self.s.idle or self.client is None or not self.client.has_capability("IDLE"):
            stop.wait(timeout)
            return
        deadline = time.monotonic() + min(timeout, 540)  # re-IDLE within 10 minutes (RFC 2177 asks < 29)
        self._call("IDLE", lambda c: c.idle())
        log.debug("mailbox.idle", folder=self.s.folder)  # tests wait on this instead of sleeping
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                responses = self._call("IDLE", lambda c: c.idle_check(timeout=1.0))
                if not responses and time.monotonic() - started < 0.5:
                    self.close()
                    raise MailboxUnavailable("IMAP connection dropped during IDLE")
                if any(r[-1] == b"BYE" or (len(r) > 1 and r[1] in (b"EXISTS", b"RECENT")) for r in responses):
                    log.debug("mailbox.idle_notice", folder=self.s.folder)  # bench/latency.py starts its clock here
                    return
        finally:
            if self.client is not None:
                try:
                    self.client.idle_done()
                except _ERRORS:
                    self.close()
