"""A staff member's mail on a case, applied inside the ingest transaction: recorded, commanded, relayed.

Owns what a staff reply does: an unproven staff sender's mail is stored on the case, flagged, and changes nothing;
a staff auto-reply (out of office) is stored and changes nothing; otherwise the commands at the top of the reply
apply through the case life cycle (`#status`, `#priority`, `#assign`; a bad one gets the staff member a short reply
saying how to write it), `#note` keeps the whole mail internal, and the rest is the public reply: quoted history
and signature stripped, the first response stamped, and the text relayed from the support address to the client
and the case's participants who did not already get it directly, threaded into their conversation. Must not
decide who is staff (the pipeline does) or send mail (the outbox does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import structlog

from casebot import case as lifecycle
from casebot import commands
from casebot.case import Priority, Status
from casebot.jobs.clocks import ClockPolicy, apply_transition
from casebot.mail import InboundMail, reply
from casebot.notices import NoticeError, Notices
from casebot.pipeline import CaseView, Verdict
from casebot.pipeline.sender_role import is_staff
from casebot.store import MessageRecord, Tx

log = structlog.get_logger("casebot.staff")


@dataclass(frozen=True)
class StaffResult:
    disposition: str  # staff-reply, staff-note, staff-unverified, staff-automated
    relayed: int = 0


def relay_key(dedupe_key: str) -> str:
    return "relay:" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:40]


def apply_staff(tx: Tx, clocks: ClockPolicy, notices: Notices, staff: frozenset[str], own: frozenset[str],
                m: InboundMail, verdict: Verdict, record: MessageRecord, view: CaseView,
                now: dt.datetime, note_address: str = "") -> StaffResult:
    role = verdict.role
    if not role.verified:
        tx.add_message(record, case_id=view.id, disposition="staff-unverified")
        tx.event(view.id, now, "staff.unverified", sender=m.sender.addr, evidence=role.evidence,
                 why="not acted on and not relayed: the sender's staff identity is not proven")
        log.warning("staff.unverified", reference=view.reference, evidence=role.evidence)
        return StaffResult("staff-unverified")
    if verdict.origin.automated:
        tx.add_message(record, case_id=view.id, disposition="staff-automated")
        tx.event(view.id, now, "message.added", sender=m.sender.addr, automated=verdict.origin.automated,
                 why="a staff member's automatic reply: stored, not relayed, changes nothing")
        return StaffResult("staff-automated")

    stripped = reply.latest_reply(m.text)
    parsed = commands.parse(stripped.text)
    by = m.sender.addr
    to_note = bool(note_address) and note_address in {a.addr for a in (*m.to, *m.cc)}
    note = to_note or any(c.name == "note" for c in parsed.commands)
    for cmd in parsed.commands:
        event: lifecycle.Event | None = None
        if cmd.name == "status":
            event = lifecycle.StatusSet(now, Status(cmd.value), f"{cmd.line.strip()} from {by}", by)
        elif cmd.name == "priority":
            event = lifecycle.PrioritySet(now, Priority(cmd.value), f"{cmd.line.strip()} from {by}", by)
        elif cmd.name == "assign":
            tx.event(view.id, now, "case.assigned", assignee=cmd.value, by=by)
        if event is not None:
            apply_transition(tx, clocks, view.id, lifecycle.apply(tx.state(view.id), event), now)
    if parsed.errors:
        _command_errors(tx, notices, m, view, parsed.errors, now)
    if note:
        tx.add_message(record, case_id=view.id, disposition="staff-note")
        tx.event(view.id, now, "note.added", by=by, why=f"{'sent to ' + note_address if to_note else '#note'}: "
                                                        "internal, never sent to the client")
        return StaffResult("staff-note")

    tx.add_message(record, case_id=view.id, disposition="staff-reply")
    text = parsed.body.strip()
    tx.event(view.id, now, "staff.replied", by=by, stripped=stripped.how,
             commands=[c.line.strip() for c in parsed.commands])
    if not text:
        return StaffResult("staff-reply")  # commands only: nothing to tell the client
    transition = lifecycle.apply(tx.state(view.id), lifecycle.StaffResponded(now, by))
    apply_transition(tx, clocks, view.id, transition, now)
    already = {a.addr for a in (*m.to, *m.cc)}
    to = sorted(a for a in view.participants
                if a and a not in already and a not in own and not is_staff(a, staff))
    if not to:
        tx.event(view.id, now, "relay.skipped", why="every client on the case received the staff mail directly")
        return StaffResult("staff-reply")
    thread = tx.client_message_ids(view.id)
    try:
        notice = notices.relay(mail=m, text=text, reference=view.reference, to=tuple(to), thread=thread,
                               key=relay_key(m.dedupe_key), now=now)
    except NoticeError as exc:
        tx.event(view.id, now, "relay.failed", why=str(exc))
        log.error("relay.render_failed", reference=view.reference, error=str(exc))
        return StaffResult("staff-reply")
    if tx.queue(notice, case_id=view.id, now=now):
        tx.event(view.id, now, "relay.queued", key=notice.key, to=to, by=by, message_id=notice.message_id)
    return StaffResult("staff-reply", relayed=len(to))


def _command_errors(tx: Tx, notices: Notices, m: InboundMail, view: CaseView,
                    errors: tuple[commands.CommandError, ...], now: dt.datetime) -> None:
    tx.event(view.id, now, "command.invalid", by=m.sender.addr,
             errors=[f"{e.line.strip()}: {e.problem}" for e in errors])
    try:
        notice = notices.command_errors(mail=m, reference=view.reference, errors=errors,
                                        key="cmderr:" + relay_key(m.dedupe_key)[6:], now=now)
    except NoticeError as exc:
        log.error("command_errors.render_failed", reference=view.reference, error=str(exc))
        return
    tx.queue(notice, case_id=view.id, now=now)
