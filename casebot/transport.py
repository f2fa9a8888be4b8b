"""The seams between the jobs and the outside world: what a mailbox and a sender must do, and their errors.

Owns the `Mailbox` and `Sender` protocols, what a fetch yields (`Fetched`: the bytes, the server's arrival time,
the full size) and the exception classes every adapter raises, so the jobs handle
failures without importing imapclient or smtplib. Must not import any adapter library.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


class TransportError(Exception):
    """Base of the errors adapters raise."""


class MailboxUnavailable(TransportError):
    """Raised when the mailbox cannot be reached or used (connection refused or dropped, TLS or login failure,
    folder missing). Ends the ingest tick; the daemon reconnects with backoff."""


class TransientSendError(TransportError):
    """Raised by `Sender.send` for a 4xx reply or a connection problem: the mail is retried with backoff.
    `connection` is True when the connection itself is gone, so the rest of the batch waits for the next tick."""

    def __init__(self, message: str, *, connection: bool = False) -> None:
        super().__init__(message)
        self.connection = connection


class PermanentSendError(TransportError):
    """Raised by `Sender.send` for a 5xx reply: the mail is recorded as failed and not retried."""


OVERSIZE_HEAD_BYTES = 256 * 1024  # what is fetched and kept of a mail over mailbox.max_message_bytes


@dataclass(frozen=True)
class Fetched:
    """One message as a mailbox hands it over. `raw` is the whole message, or only its first part when `size`
    (the full size the server reported) is over `mailbox.max_message_bytes`: such a mail is never pulled in
    full, and the ingest job stores it unparsed. `arrived_at` is when the server received it (IMAP INTERNALDATE,
    the Maildir file's mtime), in UTC; None when the transport cannot say."""

    id: str
    raw: bytes
    arrived_at: dt.datetime | None = None
    size: int | None = None  # None: len(raw) is the full size

    @property
    def full_size(self) -> int:
        return len(self.raw) if self.size is None else self.size


class Mailbox(Protocol):
    """A source of inbound mail. Ids are opaque strings that stay valid until the message is marked done."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def pending(self) -> Sequence[str]:
        """Ids of messages not yet marked done, oldest first (a slice of it is a list)."""
        ...

    def fetch(self, ids: list[str]) -> Iterator[Fetched]:
        """These messages without changing any flag the humans see (`BODY.PEEK[]`); a message over the size
        limit only as its first part, with its full size."""
        ...

    def source(self, message_id: str) -> str:
        """A stable name for the message's place in the mailbox (`imap:INBOX:<uidvalidity>:<uid>`)."""
        ...

    def mark_done(self, ids: list[str]) -> None:
        """Mark processed: only ever called after the case is committed."""
        ...

    def quarantine(self, ids: list[str]) -> None: ...

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Block until new mail may have arrived, `timeout` seconds pass, or `stop` is set."""
        ...


class Sender(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, key: str) -> str:
        """Send one message; returns a short note (e.g. refused recipients). Raises TransientSendError or
        PermanentSendError."""
        ...
