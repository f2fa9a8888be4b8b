"""The ingest job: one message at a time from a mailbox into a case, crash-safe.

Owns the order that makes ingestion safe: dedupe check, parse, pipeline, then ONE transaction that writes the
case, the message with its raw bytes and attachments, the audit events and the queued acknowledgement; only
after that commit is the message marked done on the server. A crash between any two steps leaves either
nothing (the message is fetched again) or a committed message (the dedupe key makes the re-fetch a no-op).
A message that keeps failing is retried a bounded number of times, then quarantined; it never blocks the
messages after it. Must not send mail (deliver does) or decide anything the pipeline decides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from casebot import mail as mailmodel
from casebot import refs
from casebot.pipeline import CaseView, Context, PipelineConfig, run_chain
from casebot.sla import Deadlines, SlaPolicy, describe
from casebot.store import IntegrityError, OperationalError, Store, Tx
from casebot.templates import TemplateError, Templates
from casebot.transport import Mailbox

log = structlog.get_logger("casebot.ingest")

ACK_TEMPLATE = "acknowledgement.txt.j2"


class StoreUnavailable(Exception):
    """Raised when the database cannot take the message now (locked, gone): not the message's fault, so it is
    not counted as a failed attempt; the MTA pipe answers EX_TEMPFAIL, the mailbox loop ends the tick."""


@dataclass(frozen=True)
class IngestDeps:
    pipeline: PipelineConfig
    sla: SlaPolicy
    templates: Templates
    from_address: str
    team_name: str
    max_attempts: int


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


class _Lookup:
    """The pipeline's `Lookup`, answered from the transaction the message will be written in."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        return self.tx.case_for_message_ids(message_ids)

    def case_by_reference(self, reference: str) -> CaseView | None:
        return self.tx.case_view(reference)

    def is_own_message_id(self, message_id: str) -> bool:
        # casebot's Message-IDs all start so (mail.make_message_id): anything else needs no database look-up.
        return message_id.startswith("casebot.") and self.tx.is_own_message_id(message_id)

    def acks_to(self, address: str, since: dt.datetime) -> int:
        return self.tx.acks_to(address, since)

    def acks_for_sender(self, sender: str, since: dt.datetime) -> int:
        return self.tx.acks_for_sender(sender, since)


def ack_key(dedupe_key: str) -> str:
    return "ack:" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:40]


def process(
    store: Store, deps: IngestDeps, raw: bytes, source: str, now: dt.datetime,
    failures: Mapping[str, int] | None = None,
) -> Outcome:
    """Store one message. Raises StoreUnavailable for database trouble; any other failure is counted against
    the message and, past `max_attempts`, quarantines it (the caller then moves it out of the mailbox)."""
    key = mailmodel.dedupe_key(raw)
    source = source[:300]  # the column's width: a very long Maildir file name must not fail the message
    try:
        try:
            with store.transaction() as tx:
                if tx.message_exists(key):
                    return Outcome("duplicate", detail=key)
                # The failure row outlives a quarantine, so one look answers "failed before?" and "quarantined?".
                attempts = failures.get(source, 0) if failures is not None else tx.failure_attempts(source)
                if attempts >= deps.max_attempts:
                    tx.quarantine(source, "earlier attempts failed", raw, now)
                    return Outcome("quarantined", detail="earlier attempts failed")
                parsed = mailmodel.parse(raw, key)
                ctx = run_chain(Context(parsed, now, deps.pipeline, _Lookup(tx)))
                outcome = _apply(tx, deps, ctx, source, now)
                if attempts:
                    tx.clear_failure(source)
            _log(outcome, ctx, source)
            return outcome
        except IntegrityError:
            # Another process stored the same message between our check and our insert: it is stored once.
            with store.transaction() as tx:
                if tx.message_exists(key):
                    return Outcome("duplicate", detail=key)
            raise
    except OperationalError as exc:
        raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc
    except Exception as exc:
        # Isolate the failure to this message: count it, quarantine past the limit, go on.
        return _failed(store, deps, raw, source, now, exc)


def _failed(store: Store, deps: IngestDeps, raw: bytes, source: str, now: dt.datetime, exc: Exception) -> Outcome:
    reason = f"{type(exc).__name__}: {exc}"[:1000]
    try:
        with store.transaction() as tx:
            attempts = tx.record_failure(source, reason, now)
            if attempts >= deps.max_attempts:
                tx.quarantine(source, reason, raw, now)
    except OperationalError as db_exc:
        raise StoreUnavailable(str(db_exc)) from db_exc
    if attempts >= deps.max_attempts:
        log.error("message.quarantined", source=source, attempts=attempts, reason=reason)
        return Outcome("quarantined", detail=reason)
    log.warning("message.failed", source=source, attempts=attempts, max_attempts=deps.max_attempts, reason=reason)
    return Outcome("failed", detail=reason)


def _log(outcome: Outcome, ctx: Context, source: str) -> None:
    fields: dict[str, Any] = {"source": source, "reference": outcome.reference}
    if outcome.status == "opened":
        log.info("case.opened", priority=ctx.priority, rule=ctx.priority_rule, linked_to=ctx.linked_to, **fields)
    elif outcome.status == "threaded":
        log.info("case.threaded", reopened=ctx.reopen, **fields)
    elif outcome.status == "own-mail":
        log.info("message.own_mail_ignored", **fields)
    if outcome.status in ("opened", "threaded"):
        if ctx.acknowledge:
            log.info("ack.queued", **fields)
        elif outcome.status == "opened":
            log.info("ack.suppressed", why=ctx.ack_reason, **fields)


def _participants(m: mailmodel.InboundMail, own: frozenset[str]) -> list[tuple[str, str]]:
    out = [(m.sender.addr, "requester")]
    out += [(a.addr, "cc") for a in (*m.to, *m.cc) if a.addr and a.addr not in own]
    return out


def _apply(tx: Tx, deps: IngestDeps, ctx: Context, source: str, now: dt.datetime) -> Outcome:
    m = ctx.mail
    common: dict[str, Any] = {
        "dedupe_key": m.dedupe_key, "message_id": m.message_id, "sender": m.sender.addr,
        "sender_name": m.sender.name, "recipients": [a.addr for a in m.to], "cc": [a.addr for a in m.cc],
        "subject": m.subject, "sent_at": m.date, "received_at": now, "body_text": m.text,
        "automated": ctx.automated, "source": source, "trace": ctx.trace, "defects": list(m.defects),
        "raw": m.raw, "attachments": m.attachments,
    }
    if ctx.own_mail:
        tx.add_message(case_id=None, disposition="own-mail", **common)
        return Outcome("own-mail")

    if ctx.case is not None:
        case = tx.case_by_reference(ctx.case.reference)
        assert case is not None  # the lookup found it in this same transaction
        tx.add_message(case_id=case.id, disposition="threaded", **common)
        tx.event(case.id, now, "message.added", message_id=m.message_id, sender=m.sender.addr,
                 automated=ctx.automated, trace=ctx.trace)
        if ctx.automated is None:
            tx.add_participants(case, _participants(m, deps.pipeline.own_addresses)[1:])
        case.updated_at = now
        if ctx.reopen:
            tx.set_status(case, "open", now, "client replied")
        return Outcome("threaded", reference=case.reference)

    reference = deps.pipeline.reference_format.format(tx.mint_number("case"))
    priority = ctx.priority or deps.pipeline.default_priority
    deadlines = deps.sla.deadlines(priority, now)
    subject = refs.strip_reply_prefixes(m.subject) or "(no subject)"
    case = tx.open_case(
        reference=reference, subject=subject, requester=m.sender.addr, requester_name=m.sender.name,
        priority=priority, priority_rule=ctx.priority_rule, now=now,
        first_response_due=deadlines.first_response_due if deadlines else None,
        resolution_due=deadlines.resolution_due if deadlines else None, linked_to=ctx.linked_to,
    )
    tx.add_participants(case, _participants(m, deps.pipeline.own_addresses))
    tx.add_message(case_id=case.id, disposition="opened", **common)
    tx.event(case.id, now, "case.opened", priority=priority, rule=ctx.priority_rule, linked_to=ctx.linked_to,
             first_response_due=deadlines.first_response_due.isoformat() if deadlines else None,
             resolution_due=deadlines.resolution_due.isoformat() if deadlines else None, trace=ctx.trace)
    if ctx.acknowledge:
        _queue_ack(tx, deps, ctx, case.id, reference, priority, subject, deadlines, now)
    else:
        tx.event(case.id, now, "ack.suppressed", why=ctx.ack_reason)
    return Outcome("opened", reference=reference)


def _queue_ack(
    tx: Tx, deps: IngestDeps, ctx: Context, case_id: int, reference: str, priority: str, subject: str,
    deadlines: Deadlines | None, now: dt.datetime,
) -> None:
    m = ctx.mail
    to = ctx.ack_to
    targets = deps.sla.targets.get(priority)
    cal = deps.sla.calendar
    variables = {
        "reference": reference,
        "subject": refs.tag_subject(reference, m.subject or subject),
        "original_subject": subject,
        "requester_name": m.sender.name,
        "requester": m.sender.addr,
        "priority": priority,
        "team": deps.team_name,
        "first_response_due": deadlines.first_response_due if deadlines else None,
        "resolution_due": deadlines.resolution_due if deadlines else None,
        "first_response_target": describe(targets.first_response) if targets else "",
        "resolution_target": describe(targets.resolution) if targets else "",
        "business_hours": f"{cal.start:%H:%M}-{cal.end:%H:%M} {cal.timezone}",
        "business_days": _days(cal.workdays),
        "now": now,
    }
    key = ack_key(m.dedupe_key)
    domain = mailmodel.address_domain(deps.from_address)
    message_id = mailmodel.make_message_id(domain, key)
    try:
        rendered = deps.templates.render(ACK_TEMPLATE, variables)
        raw = mailmodel.compose(
            mailmodel.Outgoing(
                from_address=deps.from_address, to=(to,), subject=rendered.subject, text=rendered.text,
                message_id=message_id, in_reply_to=m.message_id,
                references=(*m.references, m.message_id) if m.message_id else m.references,
                headers=(("X-Casebot-Reference", reference),), date=now,
            )
        )
    except (TemplateError, ValueError) as exc:  # ValueError: UnicodeError and email's header errors
        # The case is what matters: keep it, record why the client got no acknowledgement, shout in the log.
        tx.event(case_id, now, "ack.failed", why=f"{type(exc).__name__}: {exc}")
        log.error("ack.render_failed", reference=reference, error=f"{type(exc).__name__}: {exc}")
        return
    # The key derives from the message's dedupe key, which this transaction has just found new: no look-up.
    tx.enqueue(key=key, case_id=case_id, kind="ack", envelope_from=mailmodel.first_address(deps.from_address).addr,
               recipients=[to], message_id=message_id, raw=raw, now=now, known_new=True)
    tx.event(case_id, now, "ack.queued", key=key, to=to, message_id=message_id)


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _days(workdays: tuple[int, ...]) -> str:
    days = sorted(workdays)
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{_DAY_NAMES[days[0]]} to {_DAY_NAMES[days[-1]]}"
    return ", ".join(_DAY_NAMES[d] for d in days)


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
    try:
        with store.transaction() as tx:
            failures = tx.failure_counts()
    except OperationalError as exc:
        raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc
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
