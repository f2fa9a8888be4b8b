"""The deliver job: outbox rows -> sender, each mail sent once.

Owns retry policy: claim due rows (leased, SKIP LOCKED on PostgreSQL), send, then record `sent`; a 4xx or a
connection error schedules a retry with exponential backoff, a 5xx (or too many attempts) records `failed`.
Every row has a unique idempotency key and its Message-ID is fixed when it is queued, so the only gap, a crash
after the server accepted the mail and before `sent` is committed, resends the same Message-ID (which mail
clients show once). Must not build mail (ingest did) or decide who gets what.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from casebot.store import Claim, Store
from casebot.transport import PermanentSendError, Sender, TransientSendError

log = structlog.get_logger("casebot.deliver")


@dataclass(frozen=True)
class DeliverPolicy:
    max_attempts: int = 10
    retry_base: float = 30.0
    retry_max: float = 3600.0
    lease: dt.timedelta = dt.timedelta(minutes=5)

    def backoff(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=min(self.retry_max, self.retry_base * 2 ** max(0, attempts - 1)))


@dataclass
class DeliverStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    connection_error: str | None = None
    observe: Callable[[str, str], None] | None = None  # (kind, "sent" | "retry" | "failed"), for metrics

    def merge(self, other: DeliverStats) -> None:
        """Add another round's counts (the courier's rounds, then the poll's last one)."""
        self.sent, self.retried, self.failed = (self.sent + other.sent, self.retried + other.retried,
                                                self.failed + other.failed)
        self.connection_error = other.connection_error  # the later round's word on the connection

    def count(self, kind: str, result: str) -> None:
        if result == "sent":
            self.sent += 1
        elif result == "retry":
            self.retried += 1
        else:
            self.failed += 1
        if self.observe is not None:
            self.observe(kind, result)


def deliver(
    store: Store, sender: Sender, policy: DeliverPolicy, now: Callable[[], dt.datetime], stop: threading.Event,
    observe: Callable[[str, str], None] | None = None, keep_open: bool = False,
) -> DeliverStats:
    """Send what is due, one claimed mail after another over one connection, until nothing is due, the connection
    fails, or `stop` is set (the mail in hand is finished first). `observe` (metrics) hears each attempt's kind and
    result. The connection is closed at the end unless `keep_open` (the courier's next round reuses it)."""
    stats = DeliverStats(observe=observe)
    try:
        while not stop.is_set():
            with store.claim_next(now(), policy.lease) as claim:
                if claim is None:
                    break
                if not _attempt(claim, sender, policy, now, stats):
                    break
    finally:
        store.outbox_release_leased()
        if not keep_open:
            sender.close()
    return stats


def _attempt(claim: Claim, sender: Sender, policy: DeliverPolicy, now: Callable[[], dt.datetime],
             stats: DeliverStats) -> bool:
    """Send one claimed mail and record the outcome. False when the connection is gone (end the tick)."""
    item = claim.item
    fields = {"key": item.key, "kind": item.kind, "reference": item.case_reference}
    try:
        note = sender.send(item.envelope_from, list(item.recipients), item.raw, item.key)
    except PermanentSendError as exc:
        claim.failed(now(), str(exc))
        stats.count(item.kind, "failed")
        log.error("mail.failed", error=str(exc), permanent=True, **fields)
        return True
    except TransientSendError as exc:
        at = now()
        attempts = item.attempts + 1
        if attempts >= policy.max_attempts:
            claim.failed(at, f"gave up after {attempts} attempts: {exc}")
            stats.count(item.kind, "failed")
            log.error("mail.failed", error=str(exc), attempts=attempts, **fields)
        else:
            claim.retry(at, at + policy.backoff(attempts), str(exc))
            stats.count(item.kind, "retry")
            log.warning("mail.retry", error=str(exc), attempts=attempts, **fields)
        if exc.connection:
            stats.connection_error = str(exc)
            return False
        return True
    claim.sent(now())
    stats.count(item.kind, "sent")
    log.info("mail.sent", to=len(item.recipients), note=note or None, **fields)
    return True
