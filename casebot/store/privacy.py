"""Privacy in the store: one person's data read out (subject-access export) and erased, and the admin log.

Owns the queries behind `casebot privacy export|erase`: which cases a person is on (requester, participant,
sender or recipient of a message, matched case-insensitively), everything stored about them (cases with their
audit trail, messages with raw bytes and attachments, outbox mail to them, case-less mail, quarantined mail), and
the erasure writes: raw mail, bodies, subjects, names and attachment data emptied, their address replaced by the
pseudonym the caller gives, the case skeleton (reference, priority, status, dates, SLA facts) kept. Also the
`admin_log` table.
Must not decide whom to erase or compute the pseudonym (`jobs.privacy` does), talk to IMAP or commit (the
caller's transaction does; a dry run rolls it back).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.orm import Session, selectinload

from casebot.store.records import iso
from casebot.store.schema import AdminLog, Case, Event, IngestFailure, Message, Outbox, Participant, Quarantined

ERASED = "(erased)"
CANCELLED = "cancelled before delivery by a privacy erasure"


@dataclass(frozen=True)
class SubjectAttachment:
    id: int
    filename: str
    content_type: str
    size: int
    data: bytes
    purged_at: dt.datetime | None


@dataclass(frozen=True)
class SubjectMessage:
    id: int
    case_reference: str | None
    message_id: str | None
    disposition: str
    sender: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    received_at: dt.datetime
    automated: str | None
    raw: bytes
    purged_at: dt.datetime | None
    attachments: tuple[SubjectAttachment, ...]


@dataclass(frozen=True)
class SubjectOutbox:
    id: int
    case_reference: str | None
    kind: str
    recipients: tuple[str, ...]
    message_id: str
    status: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    raw: bytes


@dataclass(frozen=True)
class SubjectCase:
    reference: str
    facts: dict[str, Any]  # the case row as JSON, its participants and roles of the person on it
    events: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class SubjectData:
    """Everything stored about one address (`casebot privacy export`)."""

    cases: tuple[SubjectCase, ...]
    messages: tuple[SubjectMessage, ...]
    outbox: tuple[SubjectOutbox, ...]
    quarantine: tuple[tuple[int, str, dt.datetime, bytes], ...]  # id, reason, when, raw


def scrub(value: Any, address: str, pseudonym: str) -> Any:
    """A JSON value with every occurrence of `address` (any case) replaced by `pseudonym`."""
    pattern = re.compile(re.escape(address), re.IGNORECASE)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return pattern.sub(pseudonym, v)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    return walk(value)


def _swap(values: list[str], address: str, pseudonym: str) -> list[str]:
    return [pseudonym if v.lower() == address else v for v in values]


def _names(values: list[str] | None) -> set[str]:
    return {v.lower() for v in values or []}


class PrivacyOps:
    session: Session

    # -- the admin log --

    def admin_log(self, at: dt.datetime, actor: str, action: str, subject: str = "", **detail: Any) -> None:
        self.session.add(AdminLog(at=at, actor=actor[:120], action=action, subject=subject[:320], detail=detail))

    def admin_entries(self, action: str | None = None) -> list[dict[str, Any]]:
        stmt = select(AdminLog).order_by(AdminLog.id)
        if action is not None:
            stmt = stmt.where(AdminLog.action == action)
        return [{"id": r.id, "at": iso(r.at), "actor": r.actor, "action": r.action, "subject": r.subject,
                 **r.detail} for r in self.session.scalars(stmt)]

    # -- finding a person --

    def subject_case_ids(self, address: str) -> tuple[set[int], set[int]]:
        """(cases they requested, other cases they are a participant of or wrote to)."""
        a = address.lower()
        sole = set(self.session.scalars(select(Case.id).where(func.lower(Case.requester) == a)))
        other = set(self.session.scalars(select(Participant.case_id).where(func.lower(Participant.address) == a)))
        like = f'%"{a}"%'
        for case_id, sender, to, cc in self.session.execute(
                select(Message.case_id, Message.sender, Message.recipients, Message.cc).where(
                    Message.case_id.is_not(None), or_(
                        func.lower(Message.sender) == a, func.lower(cast(Message.recipients, String)).like(like),
                        func.lower(cast(Message.cc, String)).like(like)))):
            if a in {str(sender).lower()} | _names(to) | _names(cc):  # LIKE's "_" matches any character
                other.add(int(case_id or 0))
        return sole, other - sole

    def _caseless_messages(self, address: str) -> list[Message]:
        a = address.lower()
        like = f'%"{a}"%'
        bounces = set(self.session.scalars(select(Outbox.bounce_message_pk).where(
            func.lower(Outbox.bounce_recipient) == a, Outbox.bounce_message_pk.is_not(None))))
        rows = self.session.scalars(
            select(Message).where(Message.case_id.is_(None), or_(
                func.lower(Message.sender) == a, func.lower(cast(Message.recipients, String)).like(like),
                func.lower(cast(Message.cc, String)).like(like), Message.id.in_(bounces))).order_by(Message.id)
            .options(selectinload(Message.attachments)))
        # the mail to or from them, and the bounces of casebot's mail to them (the automated mail about them)
        return [m for m in rows if m.id in bounces or a in {m.sender.lower()} | _names(m.recipients) | _names(m.cc)]

    def _outbox_to(self, address: str) -> list[Outbox]:
        """Outbox mail with the address among its recipients, on any case or none."""
        a = address.lower()
        rows = self.session.scalars(select(Outbox).where(func.lower(cast(Outbox.recipients, String))
                                                         .like(f'%"{a}"%')).order_by(Outbox.id))
        return [o for o in rows if a in _names(o.recipients)]

    def quarantined(self) -> list[tuple[int, str, str, dt.datetime, bytes]]:
        """Every quarantined message (id, source, reason, when, raw): a small table, the caller filters."""
        return [(q.id, q.source, q.reason, q.created_at, q.raw)
                for q in self.session.scalars(select(Quarantined).order_by(Quarantined.id))]

    # -- export --

    def subject_data(self, address: str, quarantine_ids: set[int]) -> SubjectData:
        a = address.lower()
        sole, other = self.subject_case_ids(a)
        ids = sole | other
        cases = list(self.session.scalars(select(Case).where(Case.id.in_(ids)).order_by(Case.id))) if ids else []
        refs = {c.id: c.reference for c in cases}
        out_cases = []
        for c in cases:
            senders = set(self.session.scalars(select(func.lower(Message.sender)).where(Message.case_id == c.id)))
            roles = [r for r, on in (("requester", c.id in sole),
                                     ("participant", a in {p.address.lower() for p in c.participants}),
                                     ("sender", a in senders)) if on] or ["recipient"]
            facts = {"reference": c.reference, "subject": c.subject, "requester": c.requester,
                     "requester_name": c.requester_name, "status": c.status, "priority": c.priority,
                     "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
                     "first_response_due": iso(c.first_response_due), "resolution_due": iso(c.resolution_due),
                     "first_response_at": iso(c.first_response_at), "resolved_at": iso(c.resolved_at),
                     "plan": c.plan, "roles": roles,
                     "participants": sorted({f"{p.address} ({p.role})" for p in c.participants})}
            events = tuple({"at": iso(e.at), "kind": e.kind, **e.detail} for e in self.session.scalars(
                select(Event).where(Event.case_id == c.id).order_by(Event.id)))
            out_cases.append(SubjectCase(c.reference, facts, events))
        msgs = list(self.session.scalars(select(Message).where(Message.case_id.in_(ids)).order_by(Message.id)
                                         .options(selectinload(Message.attachments)))) if ids else []
        msgs += self._caseless_messages(a)
        messages = tuple(SubjectMessage(
            m.id, refs.get(m.case_id or 0), m.message_id, m.disposition, m.sender, tuple(m.recipients), tuple(m.cc),
            m.subject, m.received_at, m.automated, bytes(m.raw), m.purged_at,
            tuple(SubjectAttachment(t.id, t.filename, t.content_type, t.size, bytes(t.data), t.purged_at)
                  for t in sorted(m.attachments, key=lambda t: t.id))) for m in msgs)
        outbox = tuple(SubjectOutbox(o.id, refs.get(o.case_id or 0), o.kind, tuple(o.recipients), o.message_id,
                                     o.status, o.created_at, o.sent_at, bytes(o.raw))
                       for o in self._outbox_to(a))
        quarantine = tuple((i, reason, at, raw) for i, _s, reason, at, raw in self.quarantined()
                           if i in quarantine_ids)
        return SubjectData(tuple(out_cases), messages, outbox, quarantine)

    # -- erasure --

    def _empty_message(self, m: Message, address: str, pseudonym: str, now: dt.datetime) -> bool:
        """Empty one message of personal data; False when there was nothing left to empty."""
        changed = bool(m.raw) or bool(m.body_text) or m.subject != ERASED or bool(m.sender_name) \
            or m.sender.lower() == address or address in _names(m.recipients) | _names(m.cc)
        for t in m.attachments:
            if t.data or t.filename != ERASED:
                changed = True
                t.data, t.filename, t.sha256, t.purged_at = b"", ERASED, "", t.purged_at or now
        if not changed:
            return False
        m.raw, m.body_text, m.subject, m.sender_name = b"", "", ERASED, ""
        m.sender = pseudonym if m.sender.lower() == address else m.sender
        m.recipients, m.cc = _swap(list(m.recipients), address, pseudonym), _swap(list(m.cc), address, pseudonym)
        m.trace = [{"step": e.get("step"), "hit": e.get("hit"), "decision": scrub(e.get("decision"), address,
                                                                                   pseudonym)} for e in m.trace]
        m.defects = [ERASED] if m.defects else []
        m.purged_at = m.purged_at or now
        return True

    def _outbox(self, o: Outbox, address: str, pseudonym: str, whole: bool, n: Counter[str]) -> bool:
        """One outbox mail: emptied when it was the case's (`whole`) or to them alone, else their address out
        (a pending mail to several still goes to the others). True when something changed."""
        others = _names(o.recipients) - {address}
        changed = False
        if whole or not others:
            if o.raw or o.status == "pending":
                n["outbox_emptied"] += 1
                changed = True
            o.raw = b""
            if o.status == "pending":
                o.status, o.last_error = "failed", CANCELLED
        elif o.status == "pending":
            o.recipients = [r for r in o.recipients if r.lower() != address]
            o.primary_recipient = o.recipients[0]
            n["outbox_recipient_removed"] += 1
            return True
        elif o.raw:
            n["outbox_kept_mentioning"] += 1
        if address in _names(o.recipients) or o.primary_recipient.lower() == address:
            o.recipients = _swap(list(o.recipients), address, pseudonym)
            o.primary_recipient = pseudonym if o.primary_recipient.lower() == address else o.primary_recipient
            n["outbox_pseudonymised"] += 1
            changed = True
        o.last_error = scrub(o.last_error, address, pseudonym)
        o.bounce_diagnostic = scrub(o.bounce_diagnostic, address, pseudonym)
        if (o.bounce_recipient or "").lower() == address:
            o.bounce_recipient = pseudonym
        return changed

    def erase_subject(self, address: str, pseudonym: str, now: dt.datetime,
                      quarantine_ids: set[int]) -> tuple[Counter[str], dict[int, str]]:
        """Erase one person: returns the counts of what changed (and what was kept) and {case id: "whole" or
        "partial"} for the cases changed. Changes nothing when nothing is left (a second erasure)."""
        a, p, n = address.lower(), pseudonym, Counter[str]()
        sole, other = self.subject_case_ids(a)
        touched: dict[int, str] = {}
        for c in self.session.scalars(select(Case).where(Case.id.in_(sole))) if sole else ():
            c.subject, c.requester, c.requester_name = ERASED, p, ""
            n["cases_erased"] += 1
            touched[c.id] = "whole"
        ids = sole | other
        if ids:
            taken = {(pp.case_id, pp.address) for pp in self.session.scalars(
                select(Participant).where(Participant.case_id.in_(ids), Participant.address == p))}
            for pp in self.session.scalars(select(Participant).where(Participant.case_id.in_(ids),
                                                                     func.lower(Participant.address) == a)):
                if (pp.case_id, p) in taken:
                    self.session.delete(pp)
                else:
                    pp.address = p
                    taken.add((pp.case_id, p))
                n["participants_pseudonymised"] += 1
                touched.setdefault(pp.case_id, "partial")
            for m in self.session.scalars(select(Message).where(Message.case_id.in_(ids))
                                          .options(selectinload(Message.attachments))):
                mine = m.case_id in sole or m.sender.lower() == a
                if mine:
                    if self._empty_message(m, a, p, now):
                        n["messages_emptied"] += 1
                        n["attachments_emptied"] += len(m.attachments)
                        touched.setdefault(int(m.case_id or 0), "partial")
                    continue
                if a in _names(m.recipients) | _names(m.cc):
                    m.recipients, m.cc = _swap(list(m.recipients), a, p), _swap(list(m.cc), a, p)
                    n["messages_pseudonymised"] += 1
                    touched.setdefault(int(m.case_id or 0), "partial")
                if m.raw and a.encode() in bytes(m.raw).lower():
                    n["messages_kept_mentioning"] += 1  # another person's mail on a case they were on
            for e in self.session.scalars(select(Event).where(Event.case_id.in_(ids))):
                detail = scrub(e.detail, a, p)
                if e.case_id in sole:
                    detail = {k: v for k, v in detail.items() if k not in ("trace", "subject")}
                if detail != e.detail:
                    e.detail = detail
                    n["events_scrubbed"] += 1
        for m in self._caseless_messages(a):
            if self._empty_message(m, a, p, now):
                n["messages_emptied"] += 1
        for o in self._outbox_to(a):
            if self._outbox(o, a, p, o.case_id in sole, n) and o.case_id is not None:
                touched.setdefault(o.case_id, "partial")
        for o in self.session.scalars(select(Outbox).where(Outbox.case_id.in_(sole))) if sole else ():
            if o.raw or o.status == "pending":
                self._outbox(o, a, p, True, n)
        for row in self.session.scalars(select(AdminLog).where(func.lower(AdminLog.subject) == a)):
            row.subject, row.detail = p, scrub(row.detail, a, p)
            n["admin_log_pseudonymised"] += 1
        for q in self.session.scalars(select(Quarantined).where(Quarantined.id.in_(quarantine_ids))) \
                if quarantine_ids else ():
            self.session.execute(delete(IngestFailure).where(IngestFailure.source == q.source))
            self.session.delete(q)
            n["quarantine_deleted"] += 1
        return +n, touched

    def references(self, case_ids: set[int]) -> dict[int, str]:
        if not case_ids:
            return {}
        return {int(i): str(r) for i, r in self.session.execute(
            select(Case.id, Case.reference).where(Case.id.in_(case_ids)))}

    def erased_message_ids(self, pseudonym: str) -> list[str]:
        """The Message-IDs of the mail an erasure emptied (theirs, and all of the cases they requested)."""
        p = pseudonym
        sole = select(Case.id).where(Case.requester == p)
        rows = self.session.scalars(
            select(Message.message_id).where(Message.message_id.is_not(None), Message.purged_at.is_not(None), or_(
                Message.sender == p, Message.case_id.in_(sole),
                Message.case_id.is_(None) & or_(cast(Message.recipients, String).like(f'%"{p}"%'),
                                                cast(Message.cc, String).like(f'%"{p}"%'),
                                                Message.id.in_(select(Outbox.bounce_message_pk).where(
                                                    Outbox.bounce_recipient == p))))))
        return sorted({str(r) for r in rows})
