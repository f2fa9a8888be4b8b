"""Status notices to the client, and closing resolved cases nobody answered.

Owns the short mail a client gets at each status change of their case (waiting on them, resolved, closed,
reopened; each switchable in `[status_notices]`), threaded into their conversation and queued once per change
(`status:<ref>:<status>:<time>`), never to an address that takes no replies; and the auto-close scan: a resolved
case without a client reply for `status_notices.autoclose_business_days` business days is closed (audited, the
client told). Must not decide a transition (the case life cycle does) or send mail (the outbox does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import structlog

from casebot import case as lifecycle
from casebot.case import Status, Transition
from casebot.jobs.clocks import ClockPolicy, apply_transition
from casebot.notices import NoticeError, Notices
from casebot.pipeline.loop_guard import BOUNCE_LOCALPARTS, NO_REPLY_LOCALPARTS
from casebot.store import Tx

log = structlog.get_logger("casebot.status")


@dataclass(frozen=True)
class StatusNotifier:
    notices: Notices
    enabled: frozenset[str]  # "waiting", "resolved", "closed", "reopened"

    def __call__(self, tx: Tx, case_id: int, transition: Transition, at: dt.datetime) -> None:
        if not transition.has("status.changed"):
            return
        after = transition.after.status
        which = "reopened" if transition.has("case.reopened") else after.value
        if which not in self.enabled:
            return
        rec = tx.clock_record(case_id)
        local = rec.requester.partition("@")[0]
        if not rec.requester or local in BOUNCE_LOCALPARTS or local in NO_REPLY_LOCALPARTS:
            tx.event(case_id, at, "status_notice.suppressed", why=f"{rec.requester or 'no requester'} takes no replies")
            return
        thread = tx.client_message_ids(case_id)
        why = next((str(c.detail.get("why", "")) for c in transition.changes if c.kind == "status.changed"), "")
        key = f"status:{rec.reference}:{which}:{at.astimezone(dt.UTC).isoformat()}"
        try:
            notice = self.notices.status(reference=rec.reference, subject=rec.subject, requester=rec.requester,
                                         requester_name=rec.requester_name, status=which, why=why,
                                         to=(rec.requester,), thread=thread, key=key, now=at)
        except NoticeError as exc:
            tx.event(case_id, at, "status_notice.failed", why=str(exc))
            log.error("status_notice.render_failed", reference=rec.reference, error=str(exc))
            return
        if tx.queue(notice, case_id=case_id, now=at):
            tx.event(case_id, at, "status_notice.queued", key=notice.key, status=which, to=rec.requester)


def autoclose(tx: Tx, clocks: ClockPolicy, business_days: int, now: dt.datetime) -> list[str]:
    """Close resolved cases whose resolution is `business_days` business days old with no client reply since
    (a client reply reopens a case, so a case still resolved has none). Returns the references closed."""
    if business_days <= 0:
        return []
    cal = clocks.sla.calendar
    closed: list[str] = []
    for case_id, resolved_at in tx.resolved_cases():
        if cal.add(resolved_at, cal.day_length * business_days) > now:
            continue
        why = f"no reply from the client within {business_days} business days of the resolution"
        transition = lifecycle.apply(tx.state(case_id), lifecycle.StatusSet(now, Status.CLOSED, why, "casebot"))
        apply_transition(tx, clocks, case_id, transition, now)
        closed.append(tx.clock_record(case_id).reference)
    return closed
