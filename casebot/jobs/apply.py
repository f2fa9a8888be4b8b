"""Applying a pipeline verdict: one message's writes, inside the ingest transaction.

Owns turning the verdict into store operations: casebot's own mail, and automated mail that answers nothing casebot
has, stored without a case; a bounce or auto-reply stored on the case it answers and nothing else changed (a
failure report marks the outbox row of casebot's mail `bounced`, recorded as `mail.bounced`); a reply stored on its
case, its participants added and the case life cycle applied (`ClientWrote`: a client reply reopens); a new case
opened with its reference minted, its deadlines computed and its acknowledgement built by `notices` and queued
under the notice's idempotency key. Every decision goes into the audit trail with the pipeline's trace. Must not
decide (the pipeline and the case life cycle do), commit (the caller's transaction does) or send mail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import structlog

from casebot import case as lifecycle
from casebot import refs
from casebot.alerts import ClockView
from casebot.case import Priority, Status
from casebot.jobs.clocks import ClockPolicy, apply_transition
from casebot.jobs.escalate import EscalationPolicy, escalate
from casebot.jobs.staff import apply_staff
from casebot.mail import InboundMail
from casebot.notices import CaseFacts, NoticeError, Notices
from casebot.pipeline import CaseView, PipelineConfig, Step, Verdict
from casebot.sla import Deadlines, Plan
from casebot.staff_notices import Triage
from casebot.store import MessageRecord, NewCase, Tx

log = structlog.get_logger("casebot.ingest")


@dataclass(frozen=True)
class IngestDeps:
    """Everything ingest needs besides the store, built once by the composition root."""

    pipeline: PipelineConfig
    steps: tuple[Step, ...]
    clocks: ClockPolicy
    notices: Notices
    max_attempts: int
    staff_notify: str = ""
    notice_attach_max: int = 0
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    max_message_bytes: int = 0  # mailbox.max_message_bytes: a larger mail is stored unparsed (0: no limit)
    # A batch's new cases share `now`: their clocks (deadlines, clock start, next alert) depend on nothing else but
    # priority and plan, so they are computed once per (priority, plan, now). Pure values; cleared as `now` moves.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Applied:
    status: str  # opened, threaded, bounced (a failure report on its case), own-mail, automated (kept, no case)
    reference: str | None = None
    reopened: bool = False
    ack_queued: bool = False
    ack_note: str = ""
    note: str = ""  # for a staff mail: what it was (staff-reply, staff-note, staff-unverified, staff-automated)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def participants(m: InboundMail, own: frozenset[str]) -> list[tuple[str, str]]:
    out = [(m.sender.addr, "requester")]
    out += [(a.addr, "cc") for a in (*m.to, *m.cc) if a.addr and a.addr not in own]
    return out


def apply_verdict(tx: Tx, deps: IngestDeps, m: InboundMail, verdict: Verdict, source: str,
                  now: dt.datetime) -> Applied:
    automated = verdict.origin.automated
    record = MessageRecord.of(m, source=source, received_at=now, automated=automated, trace=verdict.trace)
    if verdict.origin.own_mail:
        tx.add_message(record, case_id=None, disposition="own-mail")
        return Applied("own-mail")
    if verdict.placement.caseless:
        # Automated mail that answers nothing casebot has: kept and listed (`messages list --automated`), no case.
        tx.add_message(record, case_id=None, disposition="automated")
        if verdict.origin.bounced:
            _bounced(tx, m, verdict, None, now)
        return Applied("automated", note=verdict.placement.caseless)

    view = verdict.placement.case
    if view is not None and verdict.origin.answer is not None and (verdict.origin.bounced or not verdict.role.staff):
        return _store_answer(tx, m, verdict, record, view, now)  # (a staff member's out-of-office: below)
    if view is not None and verdict.role.staff:
        result = apply_staff(tx, deps.clocks, deps.notices, deps.pipeline.staff_addresses,
                             deps.pipeline.own_addresses, m, verdict, record, view, now,
                             deps.pipeline.note_address)
        tx.touch(view.id, now)
        return Applied("threaded", view.reference, note=result.disposition)
    if view is not None:
        tx.add_message(record, case_id=view.id, disposition="threaded")
        tx.event(view.id, now, "message.added", message_id=m.message_id, sender=m.sender.addr, automated=automated,
                 trace=verdict.trace)
        if automated is None:
            tx.add_participants(view.id, participants(m, deps.pipeline.own_addresses)[1:], view.participants)
        transition = lifecycle.apply(tx.state(view.id), lifecycle.ClientWrote(now, automated))
        apply_transition(tx, deps.clocks, view.id, transition, now)
        if verdict.escalation.requested:
            escalate(tx, deps.clocks, deps.notices, deps.escalation, view.id, m, verdict.escalation.why, now)
        tx.touch(view.id, now)
        return Applied("threaded", view.reference, reopened=transition.has("status.changed"))

    reference = deps.pipeline.reference_format.format(tx.mint_number("case"))
    priority = verdict.triage.priority or deps.pipeline.default_priority
    sla = deps.clocks.sla
    plan = sla.plan_for(m.sender.addr)
    deadlines, clock_start, next_alert = _new_clocks(deps, priority, plan, now)
    subject = refs.strip_reply_prefixes(m.subject) or "(no subject)"
    case_id = tx.open_case(NewCase(
        reference=reference, subject=subject, requester=m.sender.addr, requester_name=m.sender.name,
        priority=priority, priority_rule=verdict.triage.rule, opened_at=now,
        first_response_due=deadlines.first_response_due, resolution_due=deadlines.resolution_due,
        linked_to=verdict.placement.linked_to, plan=plan.name if plan else None,
        next_alert_at=next_alert,
    ))
    tx.add_participants(case_id, participants(m, deps.pipeline.own_addresses), frozenset())
    tx.add_message(record, case_id=case_id, disposition="opened")
    tx.event(case_id, now, "case.opened", priority=priority.value, rule=verdict.triage.rule,
             linked_to=verdict.placement.linked_to, plan=plan.name if plan else None,
             clock_starts=_iso(clock_start), round_the_clock=sla.is_24x7(priority, plan),
             first_response_due=_iso(deadlines.first_response_due), resolution_due=_iso(deadlines.resolution_due),
             trace=verdict.trace)
    facts = CaseFacts(reference, subject, m.sender.addr, m.sender.name, priority, plan.name if plan else None,
                      Status.NEW.value, now, deadlines.first_response_due, deadlines.resolution_due)
    _page_oncall(tx, deps, case_id, facts, plan, now)
    _notify_staff(tx, deps, case_id, m, facts, verdict, now)
    if not verdict.ack.send:
        tx.event(case_id, now, "ack.suppressed", why=verdict.ack.why)
        return Applied("opened", reference, ack_note=verdict.ack.why)
    queued = _queue_ack(tx, deps.notices, m, verdict.ack.to, case_id, reference, priority, subject, deadlines, now,
                        plan, clock_start)
    return Applied("opened", reference, ack_queued=queued, ack_note="" if queued else "acknowledgement failed")


def _new_clocks(deps: IngestDeps, priority: Priority, plan: Plan | None,
                now: dt.datetime) -> tuple[Deadlines, dt.datetime, dt.datetime | None]:
    """A new case's deadlines, when its clock starts and its first alert moment (see `IngestDeps.memo`)."""
    key = (priority, plan, now)
    found = deps.memo.get(key)
    if found is None:
        if any(k[2] != now for k in deps.memo):
            deps.memo.clear()
        sla = deps.clocks.sla
        deadlines = sla.deadlines(priority, now, plan)
        view = ClockView(priority, plan, now, deadlines.first_response_due, deadlines.resolution_due)
        found = (deadlines, sla.clock_start(priority, now, plan), deps.clocks.next_alert_view(view, now))
        deps.memo[key] = found
    return found


def _store_answer(tx: Tx, m: InboundMail, verdict: Verdict, record: MessageRecord, view: CaseView,
                  now: dt.datetime) -> Applied:
    """A bounce, DSN, read receipt or auto-reply on the case of the mail it answers: stored and recorded, and
    nothing else changes (no status, no reopening, no clock, no participant; the chain took no priority)."""
    origin = verdict.origin
    tx.add_message(record, case_id=view.id, disposition="bounce" if origin.bounced else "automated")
    tx.event(view.id, now, "message.added", message_id=m.message_id, sender=m.sender.addr, automated=origin.automated,
             answer=origin.answer, trace=verdict.trace)
    if origin.bounced:
        _bounced(tx, m, verdict, view.id, now)
        tx.touch(view.id, now)
        return Applied("bounced", view.reference, note=origin.automated or "")
    return Applied("threaded", view.reference, note=origin.answer or "")


def _bounced(tx: Tx, m: InboundMail, verdict: Verdict, case_id: int | None, now: dt.datetime) -> None:
    """The outbox row of the mail a failure report is about becomes `bounced`, with who failed and why; the case
    records it (`mail.bounced`, with the report's evidence)."""
    report, mid = verdict.origin.report, verdict.origin.bounced
    if report is None or mid is None:
        return
    failed = report.failed
    status = next((r.status for r in failed if r.status), "")
    diagnostic = report.diagnostic or status
    marked = tx.mark_bounced(mid, at=now, recipients=tuple(r.address for r in failed), diagnostic=diagnostic,
                             dedupe_key=m.dedupe_key)
    if marked is None:
        return
    case_id = case_id if case_id is not None else marked.case_id
    if case_id is not None:
        tx.event(case_id, now, "mail.bounced", key=marked.key, mail=marked.kind, message_id=mid,
                 recipient=marked.recipient, status=status, diagnostic=diagnostic, report=report.kind,
                 evidence=report.evidence, bounce_message_id=m.message_id)
    log.warning("mail.bounced", key=marked.key, kind=marked.kind, recipient=marked.recipient, status=status)


def _page_oncall(tx: Tx, deps: IngestDeps, case_id: int, facts: CaseFacts, plan: Plan | None,
                 now: dt.datetime) -> None:
    """A case of a priority the client's plan covers 24x7, arriving out of hours: the on-call address is paged at
    once, through the outbox, under the key `page:<reference>` (once, whatever happens)."""
    sla = deps.clocks.sla
    if plan is None or not plan.oncall or not sla.is_24x7(facts.priority, plan) or sla.calendar.is_open(now):
        return
    try:
        notice = deps.notices.page(facts, (plan.oncall,), now)
    except NoticeError as exc:
        tx.event(case_id, now, "page.failed", why=str(exc))
        log.error("page.render_failed", reference=facts.reference, error=str(exc))
        return
    if tx.queue(notice, case_id=case_id, now=now):
        tx.event(case_id, now, "page.queued", key=notice.key, to=plan.oncall, plan=plan.name,
                 why=f"{facts.priority.value} case out of hours, plan {plan.name} covers it 24x7")
        log.info("page.queued", reference=facts.reference, plan=plan.name)


def _notify_staff(tx: Tx, deps: IngestDeps, case_id: int, m: InboundMail, facts: CaseFacts, verdict: Verdict,
                  now: dt.datetime) -> None:
    """The new-case notice to `staff.notify`, for a case a human opened (an auto-reply's case is stored, listed
    and shown in the digest, but does not page the team)."""
    if not deps.staff_notify:
        return
    if verdict.origin.automated:
        tx.event(case_id, now, "notice.suppressed", why=f"automated mail: {verdict.origin.automated}")
        return
    entry = next((t for t in verdict.trace if t.get("step") == "priority"), {})
    triage = Triage(verdict.triage.rule, str(entry.get("where", "")), str(entry.get("keyword", "")))
    try:
        notice = deps.notices.staff_notice(m, facts, triage, (deps.staff_notify,), now, deps.notice_attach_max)
    except NoticeError as exc:
        tx.event(case_id, now, "notice.failed", why=str(exc))
        log.error("notice.render_failed", reference=facts.reference, error=str(exc))
        return
    if tx.queue(notice, case_id=case_id, now=now, known_new=True):
        tx.event(case_id, now, "notice.queued", key=notice.key, to=deps.staff_notify, message_id=notice.message_id)


def _queue_ack(tx: Tx, notices: Notices, m: InboundMail, to: str, case_id: int, reference: str, priority: Priority,
               subject: str, deadlines: Deadlines, now: dt.datetime, plan: Plan | None,
               clock_start: dt.datetime) -> bool:
    try:
        notice = notices.acknowledgement(mail=m, to=to, reference=reference, subject=subject, priority=priority,
                                         deadlines=deadlines, now=now, plan=plan, clock_start=clock_start)
    except NoticeError as exc:
        # The case is what matters: keep it, record why the client got no acknowledgement, shout in the log.
        tx.event(case_id, now, "ack.failed", why=str(exc))
        log.error("ack.render_failed", reference=reference, error=str(exc))
        return False
    # The key derives from the message's dedupe key, which this transaction has just found new: no look-up.
    tx.queue(notice, case_id=case_id, now=now, known_new=True)
    tx.event(case_id, now, "ack.queued", key=notice.key, to=to, message_id=notice.message_id)
    return True
