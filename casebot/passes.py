"""The one-shot passes: `casebot poll` (cron, the benchmark) and `casebot ingest` (the MTA pipe).

Owns the order of a pass: ingest everything waiting while the courier delivers what each commit queued, then the
reminder scan, auto-close and the digest, then the rest of the outbox; and the pipe's one message. Must not hold
mail or SQL logic (the jobs do) or build adapters (`casebot.service`, the composition root, does).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

import structlog

from casebot import clock, memory, monitor
from casebot.config import Settings
from casebot.jobs.deliver import DeliverStats
from casebot.jobs.ingest import IngestStats, Outcome, process
from casebot.jobs.remind import RemindStats
from casebot.service import Clock, Runtime, build_deps, open_store
from casebot.store import StoreUnavailable
from casebot.transport import MailboxUnavailable

log = structlog.get_logger("casebot.service")


@dataclass
class PollResult:
    ingest: IngestStats
    deliver: DeliverStats
    errors: list[str] = field(default_factory=list)
    remind: RemindStats = field(default_factory=RemindStats)


def poll(settings: Settings, now: Clock = clock.utcnow) -> PollResult:
    """One full pass: ingest everything waiting (what it queues leaves meanwhile, on the courier's thread), then
    deliver the rest of the outbox. Transport errors are reported, not raised, so `casebot poll` from cron says
    what went wrong and exits non-zero."""
    runtime = Runtime.build(settings, now)
    memory.settle()  # what start-up built lives as long as the process: out of the collector's way
    stop = threading.Event()
    result = PollResult(IngestStats(), DeliverStats())
    reporter = monitor.Reporter(settings, runtime.metrics, now, "poll")  # for `casebot status` after cron runs
    courier = runtime.courier(None).start()  # acknowledgements leave while the next batch is ingested
    try:
        try:
            result.ingest = runtime.ingest_once(stop, courier.kick)
        except (MailboxUnavailable, StoreUnavailable) as exc:
            result.errors.append(str(exc))
            log.error("mailbox.unavailable", error=str(exc))
        finally:
            result.deliver = courier.finish()
        # The reminder scan and the digest are part of every pass, so cron users get them too.
        result.remind = runtime.remind_once()
        runtime.autoclose_once()
        runtime.digest_once()
        if result.deliver.connection_error is None:  # (the server was unreachable moments ago: not again now)
            result.deliver.merge(runtime.deliver_once(stop))
        if result.deliver.connection_error:
            result.errors.append(result.deliver.connection_error)
    finally:
        monitor.sync_tokens(runtime.token_statuses())
        reporter.publish()
        runtime.close()
    return result


def ingest_one(settings: Settings, raw: bytes, now: Clock = clock.utcnow) -> Outcome:
    """The MTA pipe: store one message. Raises StoreError when the database cannot take it (the MTA retries).
    A mail over `mailbox.max_message_bytes` is stored whole but unparsed; an empty one is quarantined, each
    under its own source (the time it came), so a second empty delivery is recorded as well."""
    at = now()
    digest = hashlib.sha256(raw).hexdigest()[:32]
    source = f"pipe:{digest}" if raw and not raw.isspace() else f"pipe:empty:{at.isoformat()}:{digest[:8]}"
    deps = build_deps(settings)
    store = open_store(settings)
    try:
        return process(store, deps, raw, source, at)
    finally:
        store.close()


# --- admin commands on the store (no mailbox, no SMTP) -----------------------------------------------------------
