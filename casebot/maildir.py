"""Local Maildir adapters: a mailbox casebot reads, and an outbox casebot writes (the no-server demo default).

Owns the Maildir layout (new/, cur/, tmp/, Maildir++ subfolders `.Processed` and `.Quarantine`), reading a message
with its arrival time (the file's mtime, which the delivering MDA set) and, over `max_message_bytes`, only its
first 256 KiB (the file itself stays and moves on as usual), atomic moves by rename, and idempotent delivery (the
file name derives from the idempotency key, so a resend after a crash overwrites nothing and adds nothing). Must
not parse mail or touch the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from casebot.transport import OVERSIZE_HEAD_BYTES, Fetched, MailboxUnavailable, TransientSendError


def ensure_maildir(path: Path) -> None:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)


class MaildirMailbox:
    def __init__(self, path: Path, processed_folder: str = "", quarantine_folder: str = "Quarantine",
                 max_message_bytes: int = 0) -> None:
        self.path = path
        self.max_message_bytes = max_message_bytes
        self.processed = path / f".{processed_folder or 'Processed'}"
        self.quarantine_dir = path / f".{quarantine_folder or 'Quarantine'}"

    def open(self) -> None:
        try:
            for p in (self.path, self.processed, self.quarantine_dir):
                ensure_maildir(p)
        except OSError as exc:
            raise MailboxUnavailable(f"Maildir {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        return None

    def pending(self) -> list[str]:
        found: list[tuple[float, str]] = []
        for sub in ("new", "cur"):
            try:
                with os.scandir(self.path / sub) as it:
                    for entry in it:
                        if entry.is_file() and not entry.name.startswith("."):
                            found.append((entry.stat().st_mtime, f"{sub}/{entry.name}"))
            except OSError as exc:
                raise MailboxUnavailable(f"Maildir {self.path / sub}: {exc.strerror}") from exc
        return [name for _, name in sorted(found)]

    def fetch(self, ids: list[str]) -> Iterator[Fetched]:
        limit = self.max_message_bytes
        for name in ids:
            try:
                with open(self.path / name, "rb") as f:
                    st = os.fstat(f.fileno())
                    arrived = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
                    if limit and st.st_size > limit:
                        fetched = Fetched(name, f.read(OVERSIZE_HEAD_BYTES), arrived, st.st_size)
                    else:
                        fetched = Fetched(name, f.read(), arrived)
                yield fetched
            except FileNotFoundError:
                continue  # moved away meanwhile by someone else
            except OSError as exc:
                raise MailboxUnavailable(f"Maildir {self.path / name}: {exc.strerror}") from exc

    def source(self, message_id: str) -> str:
        # The unique part of a Maildir name is before ':2,' (flags change, the message does not).
        return f"maildir:{message_id.split('/', 1)[-1].split(':2,')[0]}"

    def _move(self, ids: list[str], target: Path) -> None:
        for name in ids:
            src = self.path / name
            try:
                os.rename(src, target / "cur" / src.name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise MailboxUnavailable(f"Maildir move of {name}: {exc.strerror}") from exc

    def mark_done(self, ids: list[str]) -> None:
        self._move(ids, self.processed)

    def quarantine(self, ids: list[str]) -> None:
        self._move(ids, self.quarantine_dir)

    def wait(self, timeout: float, stop: threading.Event) -> None:
        # No push for a local folder: look again every second so a new file is picked up quickly.
        deadline = time.monotonic() + timeout
        before = self._snapshot()
        while not stop.is_set() and time.monotonic() < deadline:
            stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            if self._snapshot() != before:
                return

    def _snapshot(self) -> tuple[int, int]:
        try:
            return (os.stat(self.path / "new").st_mtime_ns, os.stat(self.path / "cur").st_mtime_ns)
        except OSError:
            return (0, 0)


class MaildirSender:
    """Writes each outgoing mail into a Maildir's new/ folder. Idempotent by key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        try:
            ensure_maildir(self.path)
        except OSError as exc:
            raise TransientSendError(f"Maildir {self.path}: {exc.strerror}", connection=True) from exc

    def close(self) -> None:
        return None

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, key: str) -> str:
        self.open()
        name = f"casebot-{hashlib.sha256(key.encode()).hexdigest()[:32]}.{socket.gethostname()}"
        final = self.path / "new" / name
        if final.exists():
            return "already delivered"
        tmp = self.path / "tmp" / name
        try:
            with open(tmp, "wb") as f:
                f.write(f"X-Casebot-Envelope-To: {', '.join(recipients)}\r\n".encode())
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, final)
        except OSError as exc:
            raise TransientSendError(f"Maildir {self.path}: {exc.strerror}", connection=True) from exc
        return ""
