"""The ingest job: one message at a time from a mailbox into a case, crash-safe.

Owns the order that makes ingestion safe: parse the message once (which gives the dedupe key; a mail over
`mailbox.max_message_bytes` only its header block), before any transaction, and settle its arrival time; then ONE
transaction that checks for a duplicate, runs the pipeline against the store, and writes what the verdict says
(`jobs.apply`); only after that commit is the message marked done on the server. A crash between any two steps
leaves either nothing (the message is fetched again) or a committed message (the dedupe key makes the re-fetch a
no-op). A message that keeps failing is retried a bounded number of times, then quarantined; it never blocks the
messages after it. Must not send mail (deliver does) or decide anything the pipeline decides.
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from casebot import mail as mailmodel
from casebot.jobs.apply import Applied, IngestDeps, apply_verdict
from casebot.pipeline import Incoming, Verdict, run_chain
from casebot.store import DuplicateMessage, Store, StoreUnavailable
from casebot.transport import Mailbox

log = structlog.get_logger("casebot.ingest")

__all__ = ["IngestDeps", "IngestStats", "Outcome", "ingest_mailbox", "process"]


@dataclass
class Outcome:
    status: str  # opened, threaded, own-mail, duplicate, failed, quarantined
    reference: str | None = None
    detail: str = ""
    automated: bool = False  # the loop guard found it automated (bounce, auto-reply, list mail)
    ack: str = ""  # for a new case: "queued", or why no acknowledgement was queued


@dataclass
class IngestStats:
    seen: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.seen += 1
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1


def process(
    store: Store, deps: IngestDeps, raw: bytes, source: str, now: dt.datetime,
    failures: Mapping[str, int] | None = None, *, arrived_at: dt.datetime | None = None, size: int | None = None,
) -> Outcome:
    """Store one message. Raises StoreUnavailable for database trouble; any other failure is counted against
    the message and, past `max_attempts`, quarantines it (the caller then moves it out of the mailbox).

    `arrived_at` is the transport's arrival time (else the top Received header's date, else `now`; never later
    than `now`); `size` the full size when `raw` is only the first part of a mail over the size limit. An empty
    or whitespace-only message is quarantined ("empty message"), never a case with an empty requester."""
    source = source[:300]  # the column's width: a very long Maildir file name must not fail the message
    try:
        if not raw or raw.isspace():
            return _empty(store, raw, source, now)
        full = len(raw) if size is None else size
        limit = deps.max_message_bytes
        # Parsed once, before the transaction: on SQLite the write lock is not held while mail-parser works.
        # Over the size limit, only the header block is read.
        parsed = mailmodel.parse_unparsed(raw, full, limit) if limit and full > limit else mailmodel.parse(raw)
        if len(raw) >= _TRIM_AFTER:
            _give_back_memory()
        arrival = arrived_at or parsed.arrived_at
        parsed = dataclasses.replace(parsed, arrived_at=min(arrival, now) if arrival else now)
        if parsed.unparsed_size:
            log.warning("message.oversize", source=source, size=full, limit=limit, stored_bytes=len(raw))
        key = parsed.dedupe_key
        try:
            with store.transaction() as tx:
                if tx.message_exists(key):
                    return Outcome("duplicate", detail=key)
                # The failure row outlives a quarantine, so one look answers "failed before?" and "quarantined?".
                attempts = failures.get(source, 0) if failures is not None else tx.failure_attempts(source)
                if attempts >= deps.max_attempts:
                    tx.quarantine(source, "earlier attempts failed", raw, now)
                    return Outcome("quarantined", detail="earlier attempts failed")
                verdict = run_chain(Incoming(parsed, now, deps.pipeline, tx), deps.steps)
                applied = apply_verdict(tx, deps, parsed, verdict, source, now)
                if attempts:
                    tx.clear_failure(source)
        except DuplicateMessage:
            # Another process stored the same message between our check and our insert: it is stored once.
            return Outcome("duplicate", detail=key)
        _log(applied, verdict, source)
        return Outcome(applied.status, applied.reference, automated=bool(verdict.origin.automated),
                       ack=("queued" if applied.ack_queued else applied.ack_note) if applied.status == "opened" else "")
    except StoreUnavailable:
        raise
    except Exception as exc:
        # Isolate the failure to this message: count it, quarantine past the limit, go on.
        return _failed(store, deps, raw, source, now, exc)


_TRIM_AFTER = 4 << 20


def _give_back_memory() -> None:
    """Hand the parse's freed memory (the MIME tree, decoded parts) back to the system before the store copies
    the raw bytes: glibc keeps freed big blocks in its heap, so a 30 MB mail would peak 25 MB higher. No-op
    where the C library has no malloc_trim."""
    global _TRIM
    if _TRIM is None:
        try:
            _TRIM = getattr(ctypes.CDLL(None), "malloc_trim", False)
        except OSError:
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


def _empty(store: Store, raw: bytes, source: str, now: dt.datetime) -> Outcome:
    """Nothing to open a case from: recorded in the quarantine (the caller then moves the file there too)."""
    with store.transaction() as tx:
        tx.quarantine(source, "empty message", raw, now)
    log.warning("message.quarantined", source=source, attempts=0, reason="empty message", size=len(raw))
    return Outcome("quarantined", detail="empty message")


def _failed(store: Store, deps: IngestDeps, raw: bytes, source: str, now: dt.datetime, exc: Exception) -> Outcome:
    reason = f"{type(exc).__name__}: {exc}"[:1000]
    with store.transaction() as tx:
        attempts = tx.record_failure(source, reason, now)
        if attempts >= deps.max_attempts:
            tx.quarantine(source, reason, raw, now)
    if attempts >= deps.max_attempts:
        log.error("message.quarantined", source=source, attempts=attempts, reason=reason)
        return Outcome("quarantined", detail=reason)
    log.warning("message.failed", source=source, attempts=attempts, max_attempts=deps.max_attempts, reason=reason)
    return Outcome("failed", detail=reason)


def _log(applied: Applied, verdict: Verdict, source: str) -> None:
    fields: dict[str, Any] = {"source": source, "reference": applied.reference}
    if applied.status == "opened":
        log.info("case.opened", priority=verdict.triage.priority, rule=verdict.triage.rule,
                 linked_to=verdict.placement.linked_to, **fields)
    elif applied.status == "threaded":
        log.info("case.threaded", reopened=applied.reopened, **fields)
    elif applied.status == "own-mail":
        log.info("message.own_mail_ignored", **fields)
    if applied.status == "opened":
        if applied.ack_queued:
            log.info("ack.queued", **fields)
        else:
            log.info("ack.suppressed", why=applied.ack_note, **fields)


def ingest_mailbox(
    mailbox: Mailbox, store: Store, deps: IngestDeps, now: Callable[[], dt.datetime], stop: threading.Event,
    batch_size: int = 50, observe: Callable[[Outcome, float], None] | None = None,
) -> IngestStats:
    """One pass over the mailbox. The message in hand is always finished; `stop` is honoured between messages.
    Raises MailboxUnavailable (transport) or StoreUnavailable (database) to end the tick. `observe` (metrics)
    hears each outcome and the seconds it took."""
    stats = IngestStats()
    pending = mailbox.pending()
    if not pending:
        return stats
    with store.transaction() as tx:
        failures = tx.failure_counts()
    for i in range(0, len(pending), max(1, batch_size)):
        if stop.is_set():
            break
        chunk = pending[i : i + batch_size]
        done: list[str] = []
        quarantine: list[str] = []
        try:
            for got in mailbox.fetch(chunk):
                mid = got.id
                started = time.perf_counter()
                outcome = process(store, deps, got.raw, mailbox.source(mid), now(), failures,
                                  arrived_at=got.arrived_at, size=got.size)
                stats.add(outcome)
                if observe is not None:
                    observe(outcome, time.perf_counter() - started)
                if outcome.status == "quarantined":
                    quarantine.append(mid)
                elif outcome.status != "failed":
                    done.append(mid)
                if stop.is_set():
                    break
        finally:
            # Whatever was committed is marked now, even if the batch ended early: less to re-check next time.
            if done:
                mailbox.mark_done(done)
            if quarantine:
                mailbox.quarantine(quarantine)
    return stats
