"""Shared helpers for casebot's integration tests against real servers (Dovecot, the SMTP sink, databases).

Owns :class:`Harness` (one IMAP account + one SMTP sink + one database, turned into casebot settings, with
`poll()` and read-back through `casebot.store.Store`), a tiny builder for raw test mail, and IMAP inspection
helpers that use a separate IMAPClient connection (never casebot's own). Import it as ``from cbtest import ...``
(tests/ is on sys.path, like ``servers`` and ``corpus``). Must not mock anything: every helper talks to the
real server or reads the real database.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import email
import email.policy
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import structlog
from servers import ImapAccount, SmtpSink, free_port
from sqlalchemy import func, select

from casebot import clock
from casebot import logs as cblog
from casebot.config import Settings, from_mapping
from casebot.passes import PollResult, poll
from casebot.store import CaseSummary, Store
from casebot.store.schema import Message

FROM_ADDRESS = "Example Support <support@example.com>"
SUPPORT = "support@example.com"
KEYWORD = "$CasebotProcessed"


# -- logging ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """casebot logs through structlog; `poll()` does not configure it (the CLI does). Keep test output short."""
    cblog.configure("warning", "console")
    try:
        yield
    finally:
        structlog.reset_defaults()


# -- settings ---------------------------------------------------------------------------------------------------


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def settings_mapping(
    *, imap_host: str, imap_port: int, imap_user: str, smtp_host: str, smtp_port: int, db_url: str
) -> dict[str, Any]:
    return {
        "mailbox": {
            "kind": "imap", "host": imap_host, "port": imap_port, "security": "none",
            "username": imap_user, "password": "secret", "timeout": 10.0,
        },
        "outgoing": {
            "kind": "smtp", "host": smtp_host, "port": smtp_port, "security": "none",
            "from_address": FROM_ADDRESS, "timeout": 10.0,
        },
        "database": {"url": db_url},
        "logging": {"level": "warning"},
    }


def closed_port() -> int:
    """A loopback port nothing listens on (free a moment ago)."""
    return free_port()


# -- raw mail ---------------------------------------------------------------------------------------------------

_counter = 0


def make_mail(
    sender: str,
    subject: str,
    *,
    message_id: str | None = None,
    body: str = "Hello, I need some help with my account.\n",
    to: str = SUPPORT,
    in_reply_to: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A small, valid RFC 5322 message (CRLF). `message_id` without angle brackets; a unique one by default."""
    global _counter
    _counter += 1
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(email.utils.localtime().replace(microsecond=0))
    mid = message_id if message_id is not None else f"t{_counter}.{time.monotonic_ns()}@client.example"
    msg["Message-ID"] = f"<{mid}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for name, value in headers:
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def bare_id(value: str | None) -> str | None:
    """`<a@b>` -> `a@b`; None stays None."""
    if value is None:
        return None
    return str(value).strip().strip("<>").strip()


# -- IMAP inspection (a separate connection) -------------------------------------------------------------------


def append_all(account: ImapAccount, raws: Iterable[bytes], folder: str = "INBOX") -> None:
    """APPEND many messages over one IMAP connection (a folder other than INBOX is created if missing)."""
    client = account.connect()
    try:
        if folder.upper() != "INBOX" and not client.folder_exists(folder):
            client.create_folder(folder)
        for raw in raws:
            client.append(folder, raw)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _fetch_folder(account: ImapAccount, folder: str, item: str) -> dict[int, Any]:
    """uid -> the FETCH response of every message in `folder` (read-only SELECT: inspecting changes nothing)."""
    client = account.connect()
    try:
        if not client.folder_exists(folder):
            return {}
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        if not uids:
            return {}
        data = client.fetch(uids, [item])
        return {int(uid): data[uid] for uid in uids}
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def folder_flags(account: ImapAccount, folder: str = "INBOX") -> dict[int, set[bytes]]:
    """uid -> flags of every message in `folder`."""
    return {uid: {bytes(f) for f in d[b"FLAGS"]} for uid, d in _fetch_folder(account, folder, "FLAGS").items()}


def folder_messages(account: ImapAccount, folder: str = "INBOX") -> dict[int, bytes]:
    """uid -> raw bytes (BODY.PEEK[]) of every message in `folder`."""
    return {uid: bytes(d[b"BODY[]"]) for uid, d in _fetch_folder(account, folder, "BODY.PEEK[]").items()}


def run_threads(threads: list[threading.Thread], timeout: float = 120) -> None:
    """Start every thread, wait for all, and fail if one is still running (tests must stop by themselves)."""
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread outlived its timeout"


def uidvalidity(account: ImapAccount, folder: str = "INBOX") -> int:
    client = account.connect()
    try:
        return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
    finally:
        with contextlib.suppress(Exception):
            client.logout()


# -- the harness ------------------------------------------------------------------------------------------------


@dataclass
class Harness:
    """One fresh IMAP account, one SMTP sink and one database, seen through casebot's settings and store."""

    account: ImapAccount
    sink: SmtpSink
    db_url: str
    overrides: dict[str, Any] = field(default_factory=dict)
    _store: Store | None = None
    skew: dt.timedelta = dt.timedelta(0)  # how far this harness's clock runs ahead of the wall clock
    frozen: dt.datetime | None = None  # set: the clock stands at this time (plus `skew`) instead

    def now(self) -> dt.datetime:
        """The one clock every job of this harness reads: the wall clock (or `frozen`) plus `skew`."""
        return (self.frozen or clock.utcnow()) + self.skew

    def at(self, when: dt.datetime) -> None:
        """Stand the clock at `when` (aware): a test of deadlines says what time it is instead of waiting."""
        self.frozen, self.skew = when, dt.timedelta(0)

    def advance(self, seconds: float) -> None:
        """Move this harness's time forward (a retry comes due) instead of sleeping."""
        self.skew += dt.timedelta(seconds=seconds)

    def mapping(self, **sections: Mapping[str, Any]) -> dict[str, Any]:
        base = settings_mapping(
            imap_host=self.account.host, imap_port=self.account.port, imap_user=self.account.user,
            smtp_host=self.sink.host, smtp_port=self.sink.port, db_url=self.db_url,
        )
        return _merge(_merge(base, self.overrides), sections)

    def settings(self, **sections: Mapping[str, Any]) -> Settings:
        return from_mapping(self.mapping(**sections))

    def poll(self, **sections: Mapping[str, Any]) -> PollResult:
        return poll(self.settings(**sections), now=self.now)

    def append(self, *raws: bytes, folder: str = "INBOX") -> None:
        append_all(self.account, raws, folder)

    # -- reading back --

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db_url)
        return self._store

    def cases(self) -> list[CaseSummary]:
        return self.store.list_cases()

    def detail(self, reference: str) -> dict[str, Any]:
        found = self.store.case_detail(reference)
        assert found is not None, f"no case {reference}"
        return found

    def details(self) -> dict[str, dict[str, Any]]:
        return {c.reference: self.detail(c.reference) for c in self.cases()}

    def stored_message_count(self) -> int:
        """Messages on cases plus casebot's own mail that came back (stored without a case)."""
        with self.store.transaction() as tx:
            return int(tx.session.scalar(select(func.count()).select_from(Message)) or 0)

    def quarantine_count(self) -> int:
        with self.store.transaction() as tx:
            return tx.quarantine_count()

    def sent(self) -> list[EmailMessage]:
        """What the SMTP sink accepted, parsed."""
        return [parse(m.content) for m in self.sink.messages]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def events_of(detail: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in detail["events"] if e["kind"] == kind]
