"""A client's escalation by mail, applied inside the ingest transaction.

Owns what an escalation does, as the support policy describes it: recorded on the case with its evidence, the
priority raised one step (`escalation.raise_priority`, through the case life cycle, so the deadlines follow),
`escalation.manager` and `staff.notify` told, and the client told what happens next; a repeat within
`escalation.window_hours` is recorded and notifies nobody again. Must not decide that a mail escalates (the
pipeline's `escalation` step does) or send mail (the outbox does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import structlog

from casebot import case as lifecycle
from casebot.jobs.clocks import ClockPolicy, apply_transition, case_facts
from casebot.mail import InboundMail
from casebot.notices import NoticeError, Notices
from casebot.store import Tx

log = structlog.get_logger("casebot.escalate")


@dataclass(frozen=True)
class EscalationPolicy:
    raise_priority: bool = True
    window: dt.timedelta = dt.timedelta(hours=24)


def escalate(tx: Tx, clocks: ClockPolicy, notices: Notices, policy: EscalationPolicy, case_id: int,
             m: InboundMail, why: str, now: dt.datetime) -> bool:
    """Apply a client's escalation; False when it repeats one within the window (recorded, nobody told again)."""
    last = tx.last_event_at(case_id, "case.escalated")
    if last is not None and now - last < policy.window:
        tx.event(case_id, now, "escalation.repeated", by=m.sender.addr, why=why, previous=last.isoformat(),
                 note=f"within {policy.window} of the last one: nobody is told again")
        return False
    tx.event(case_id, now, "case.escalated", by=m.sender.addr, why=why)
    state = tx.state(case_id)
    if policy.raise_priority and state.priority.raised() is not state.priority:
        event = lifecycle.PrioritySet(now, state.priority.raised(), f"escalated by the client ({why})", m.sender.addr)
        apply_transition(tx, clocks, case_id, lifecycle.apply(state, event), now)
    rec = tx.clock_record(case_id)
    facts = case_facts(rec)
    digest = hashlib.sha256(m.dedupe_key.encode("utf-8")).hexdigest()[:32]
    team = tuple(dict.fromkeys(a for a in (clocks.manager, clocks.notify) if a))
    try:
        if team:
            told = notices.client_escalation(case=facts, mail=m, why=why, to=team, key=f"clientesc:{digest}",
                                             now=now)
            if tx.queue(told, case_id=case_id, now=now):
                tx.event(case_id, now, "escalation.notified", to=list(team), key=told.key)
        answer_to = m.reply_to.addr if m.reply_to and m.reply_to.addr else m.sender.addr
        answer = notices.escalation_ack(case=facts, mail=m, to=(answer_to,), key=f"escack:{digest}",
                                        thread=tx.client_message_ids(case_id), now=now)
        tx.queue(answer, case_id=case_id, now=now)
    except NoticeError as exc:
        tx.event(case_id, now, "escalation.failed", why=str(exc))
        log.error("escalation.render_failed", reference=rec.reference, error=str(exc))
    log.info("case.escalated", reference=rec.reference, priority=rec.priority.value)
    return True
