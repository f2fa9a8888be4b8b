"""The ingest job: messages from a mailbox into cases, a batch at a time, crash-safe.

Owns the order that makes ingestion safe: messages whose exact bytes are stored already are recognised first
(one query per fetch, no parsing); each other message is parsed once (which gives the dedupe key; a mail over
`mailbox.max_message_bytes` only its header block), before any transaction, and its arrival time settled; then
ONE transaction for the fetch's batchable messages (`store.batch`: one dedupe query, the pipeline run against
the store in mailbox order, the writes the verdicts say, `jobs.apply`); only after that commit are they marked
done on the server. A crash between any two steps leaves either nothing (the messages are fetched again) or
committed messages (the dedupe key makes the re-fetch a no-op). A failure inside a batch rolls it back and its
messages go one by one, each in its own transaction; a message that keeps failing is retried a bounded number of
times, then quarantined; it never blocks the messages after it. Must not send mail (deliver does) or decide
anything the pipeline decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from casebot import mail as mailmodel
from casebot import memory
from casebot.jobs.apply import Applied, IngestDeps, apply_verdict
from casebot.pipeline import Incoming, Verdict, run_chain
from casebot.pipeline.acknowledge import reply_address
from casebot.store import BatchKeys, DuplicateMessage, Store, StoreUnavailable
from casebot.transport import Fetched, Mailbox

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
    observe: Callable[[Outcome, float], None] | None = field(default=None, repr=False, compare=False)  # metrics

    def add(self, outcome: Outcome, seconds: float = 0.0) -> None:
        """Count an outcome; the observer (metrics) hears it with the seconds it took."""
        self.seen += 1
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if self.observe is not None:
            self.observe(outcome, seconds)


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
        parsed = _parse(deps, raw, source, now, arrived_at, size)
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
        return _outcome(applied, verdict)
    except StoreUnavailable:
        raise
    except Exception as exc:
        # Isolate the failure to this message: count it, quarantine past the limit, go on.
        return _failed(store, deps, raw, source, now, exc)


def _parse(deps: IngestDeps, raw: bytes, source: str, now: dt.datetime, arrived_at: dt.datetime | None,
           size: int | None) -> mailmodel.InboundMail:
    """Parse once, before any transaction (on SQLite the write lock is not held while mail-parser works); over
    the size limit only the header block is read."""
    full = len(raw) if size is None else size
    limit = deps.max_message_bytes
    parsed = mailmodel.parse_unparsed(raw, full, limit) if limit and full > limit else mailmodel.parse(raw)
    if len(raw) >= _TRIM_AFTER:
        memory.give_back()
    arrival = arrived_at or parsed.arrived_at
    parsed = dataclasses.replace(parsed, arrived_at=min(arrival, now) if arrival else now)
    if parsed.unparsed_size:
        log.warning("message.oversize", source=source, size=full, limit=limit, stored_bytes=len(raw))
    return parsed


def _outcome(applied: Applied, verdict: Verdict) -> Outcome:
    return Outcome(applied.status, applied.reference, automated=bool(verdict.origin.automated),
                   ack=("queued" if applied.ack_queued else applied.ack_note) if applied.status == "opened" else "")


def batchable(got: Fetched, source: str, failures: Mapping[str, int]) -> bool:
    """Whether a fetched message may share a transaction with others: not empty, not big (its memory is given
    back before the next one is parsed), never failed before (its own transaction counts and quarantines it)."""
    return bool(got.raw) and not got.raw.isspace() and len(got.raw) < _TRIM_AFTER and not failures.get(source[:300])


Batch = list[tuple[Fetched, str]]  # fetched messages with their source names


def _runs(fetched: Batch, failures: Mapping[str, int]) -> list[tuple[Batch, bool]]:
    """The fetch split into runs, in mailbox order (a reply is never stored before the mail it answers): runs of
    messages that may share a transaction (True, two or more) and the others, one message each (False)."""
    runs: list[tuple[Batch, bool]] = []
    for item in fetched:
        if batchable(item[0], item[1], failures):
            if runs and runs[-1][1]:
                runs[-1][0].append(item)
            else:
                runs.append(([item], True))
        else:
            runs.append(([item], False))
    return [(run, together and len(run) > 1) for run, together in runs]


def process_batch(
    store: Store, deps: IngestDeps, batch: Batch, now: dt.datetime,
) -> list[Outcome] | None:
    """Store several messages in ONE transaction: one dedupe query for all of them, one commit. All or nothing:
    None when any message fails (or another process stored one of them meanwhile); nothing of the batch is then
    committed, and the caller processes each message alone, which counts the failure against the one message
    that caused it and quarantines it as `process` does. Raises StoreUnavailable for database trouble."""
    try:
        parsed = [(_parse(deps, got.raw, source[:300], now, got.arrived_at, got.size), source[:300])
                  for got, source in batch]
        results: list[tuple[Outcome, Applied | None, Verdict | None, str]] = []
        with store.batch(batch_keys(deps, [m for m, _ in parsed], now)) as tx:
            seen = tx.existing_keys([m.dedupe_key for m, _ in parsed])
            for m, source in parsed:
                if m.dedupe_key in seen:
                    results.append((Outcome("duplicate", detail=m.dedupe_key), None, None, source))
                    continue
                seen.add(m.dedupe_key)  # the same message twice in one batch is stored once
                # Earlier messages of the batch are in this transaction: the chain's look-ups see them.
                verdict = run_chain(Incoming(m, now, deps.pipeline, tx), deps.steps)
                applied = apply_verdict(tx, deps, m, verdict, source, now)
                results.append((_outcome(applied, verdict), applied, verdict, source))
    except StoreUnavailable:
        raise
    except Exception as exc:  # DuplicateMessage included: the one-by-one path sorts each message out
        log.info("ingest.batch_split", size=len(batch), reason=f"{type(exc).__name__}: {exc}"[:300])
        return None
    for _, done, decided, name in results:
        if done is not None and decided is not None:
            _log(done, decided, name)
    return [r[0] for r in results]


def batch_keys(deps: IngestDeps, mails: list[mailmodel.InboundMail], now: dt.datetime) -> BatchKeys:
    """What the pipeline will ask the store about these mails, so the batch reads it with a few queries up front:
    their Message-IDs and those they answer, the references in their subjects, and for the acknowledgement rate
    limit the addresses and the earliest window. A key missed here costs a query when asked, never a wrong answer."""
    cfg = deps.pipeline
    ids: set[str] = set()
    refs: set[str] = set()
    to: set[str] = set()
    senders: set[str] = set()
    for m in mails:
        if m.message_id:
            ids.add(m.message_id)
        ids.update(m.thread_ids)
        refs.update(cfg.reference_format.find(m.subject))
        to.add(reply_address(m).addr)
        senders.add(m.sender.addr)
    since = None
    if cfg.ack_enabled and cfg.ack_rate_limit and mails:
        since = min(min(m.arrived_at or now, now) for m in mails) - cfg.ack_rate_window
    return BatchKeys(len(mails), frozenset(ids), frozenset(refs), frozenset(to), frozenset(senders), since)


_TRIM_AFTER = 4 << 20


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


def _known_bytes(store: Store, fetched: Batch, stats: IngestStats, done: list[str]) -> Batch:
    """The re-delivery fast path: a message whose exact bytes are stored already (the mailbox delivered again,
    its processed flags lost) is a duplicate, found by the SHA-256 of its bytes with one query for the fetch,
    before any parsing; it is marked done with the others. The rest go on to be parsed."""
    started = time.perf_counter()
    digests = {got.id: hashlib.sha256(got.raw).hexdigest() for got, _ in fetched if got.raw and not got.raw.isspace()}
    if not digests:
        return fetched
    with store.transaction() as tx:
        seen = tx.raw_seen(list(set(digests.values())))
    if not seen:
        return fetched
    each = (time.perf_counter() - started) / len(fetched)
    rest: Batch = []
    for got, source in fetched:
        if digests.get(got.id) in seen:
            stats.add(Outcome("duplicate", detail="the same bytes are stored"), each)
            done.append(got.id)
        else:
            rest.append((got, source))
    return rest


def ingest_mailbox(
    mailbox: Mailbox, store: Store, deps: IngestDeps, now: Callable[[], dt.datetime], stop: threading.Event,
    batch_size: int = 50, observe: Callable[[Outcome, float], None] | None = None,
    committed: Callable[[], None] | None = None,
) -> IngestStats:
    """One pass over the mailbox, `batch_size` messages per fetch. The messages of a fetch that may share a
    transaction are stored in one (`process_batch`), the others, and all of a batch that failed, one by one;
    the fetch's messages are marked done on the server only after their commit. The batch in hand is always
    finished; `stop` is honoured between batches. Raises MailboxUnavailable (transport) or StoreUnavailable
    (database) to end the tick. `observe` (metrics) hears each outcome and the seconds it took; `committed` (the
    courier's kick) is called after each commit that stored something, so its mail can leave at once."""
    stats = IngestStats(observe=observe)
    pending = mailbox.pending()
    if not pending:
        return stats
    with store.transaction() as tx:
        failures = tx.failure_counts()
    for i in range(0, len(pending), max(1, batch_size)):
        if stop.is_set():
            break
        chunk = list(pending[i : i + batch_size])
        done: list[str] = []
        quarantine: list[str] = []
        try:
            fetched = [(got, mailbox.source(got.id)) for got in mailbox.fetch(chunk)]
            fetched = _known_bytes(store, fetched, stats, done)
            for run, together in _runs(fetched, failures):
                if stop.is_set():
                    break
                started = time.perf_counter()
                outcomes = process_batch(store, deps, run, now()) if together else None
                if outcomes is not None:
                    each = (time.perf_counter() - started) / len(run)
                    for (got, _src), outcome in zip(run, outcomes, strict=True):
                        stats.add(outcome, each)
                        done.append(got.id)
                    if committed is not None:
                        committed()
                    continue
                for got, src in run:  # one message, or a batch that failed: each in its own transaction
                    started = time.perf_counter()
                    outcome = process(store, deps, got.raw, src, now(), failures, arrived_at=got.arrived_at,
                                      size=got.size)
                    stats.add(outcome, time.perf_counter() - started)
                    if outcome.status == "quarantined":
                        quarantine.append(got.id)
                    elif outcome.status != "failed":
                        done.append(got.id)
                        if committed is not None and outcome.status != "duplicate":
                            committed()
        finally:
            # Whatever was committed is marked now, even if the batch ended early: less to re-check next time.
            if done:
                mailbox.mark_done(done)
            if quarantine:
                mailbox.quarantine(quarantine)
            memory.tidy()  # the batch's mail, parse trees and ORM states: freed now, not dozens of batches later
    return stats
