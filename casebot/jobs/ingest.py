"""The ingest job: one message at a time from a mailbox into a case, crash-safe.

Owns the order that makes ingestion safe: read the header block (dedupe key) and parse the message once, before
any transaction; then ONE transaction that checks for a duplicate, runs the pipeline against the store, and writes
what the verdict says (`jobs.apply`); only after that commit is the message marked done on the server. A crash
between any two steps leaves either nothing (the message is fetched again) or a committed message (the dedupe key
makes the re-fetch a no-op). A message that keeps failing is retried a bounded number of times, then quarantined;
it never blocks the messages after it. Must not send mail (deliver does) or decide anything the pipeline decides.
"""

from __future__ import annotations

import datetime as dt
import threading
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


@dataclass
class IngestStats:
    seen: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.seen += 1
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1


def process(
    store: Store, deps: IngestDeps, raw: bytes, source: str, now: dt.datetime,
    failures: Mapping[str, int] | None = None,
) -> Outcome:
    """Store one message. Raises StoreUnavailable for database trouble; any other failure is counted against
    the message and, past `max_attempts`, quarantines it (the caller then moves it out of the mailbox)."""
    source = source[:300]  # the column's width: a very long Maildir file name must not fail the message
    try:
        head = mailmodel.read_head(raw)
        # Parsed once, before the transaction: on SQLite the write lock is not held while mail-parser works.
        parsed = mailmodel.parse(raw, head)
        try:
            with store.transaction() as tx:
                if tx.message_exists(head.dedupe_key):
                    return Outcome("duplicate", detail=head.dedupe_key)
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
            return Outcome("duplicate", detail=head.dedupe_key)
        _log(applied, verdict, source)
        return Outcome(applied.status, applied.reference)
    except StoreUnavailable:
        raise
    except Exception as exc:
        # Isolate the failure to this message: count it, quarantine past the limit, go on.
        return _failed(store, deps, raw, source, now, exc)


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
    batch_size: int = 50,
) -> IngestStats:
    """One pass over the mailbox. The message in hand is always finished; `stop` is honoured between messages.
    Raises MailboxUnavailable (transport) or StoreUnavailable (database) to end the tick."""
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
            for mid, raw in mailbox.fetch(chunk):
                outcome = process(store, deps, raw, mailbox.source(mid), now(), failures)
                stats.add(outcome)
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
