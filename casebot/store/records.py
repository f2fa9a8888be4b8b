"""Typed records handed to and from the store: what a job writes, what the CLI reads.

Owns the value objects at the store's boundary (`MessageRecord`, `NewCase`, `OutboxItem`, `CaseSummary`), so no
caller builds ORM rows or passes `**kwargs`. Must not import SQLAlchemy or hold behaviour beyond formatting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from casebot.case import Priority, Status
from casebot.mail import Attachment, InboundMail


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class MessageRecord:
    """One inbound message as stored: the parsed fields, the pipeline's trace and the raw bytes."""

    dedupe_key: str
    message_id: str | None
    sender: str
    sender_name: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    sent_at: dt.datetime | None
    received_at: dt.datetime
    body_text: str
    automated: str | None
    source: str
    trace: tuple[dict[str, Any], ...]
    defects: tuple[str, ...]
    raw: bytes
    attachments: tuple[Attachment, ...]
    arrived_at: dt.datetime | None = None  # the mail server's arrival time (InboundMail.arrived_at)

    @classmethod
    def of(cls, m: InboundMail, *, source: str, received_at: dt.datetime, automated: str | None,
           trace: list[dict[str, Any]]) -> MessageRecord:
        return cls(
            dedupe_key=m.dedupe_key, message_id=m.message_id, sender=m.sender.addr, sender_name=m.sender.name,
            recipients=tuple(a.addr for a in m.to), cc=tuple(a.addr for a in m.cc), subject=m.subject,
            sent_at=m.date, received_at=received_at, body_text=m.text, automated=automated, source=source,
            trace=tuple(trace), defects=m.defects, raw=m.raw, attachments=m.attachments, arrived_at=m.arrived_at,
        )


@dataclass(frozen=True)
class NewCase:
    reference: str
    subject: str
    requester: str
    requester_name: str
    priority: Priority
    priority_rule: str | None
    opened_at: dt.datetime
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    linked_to: str | None
    plan: str | None = None
    next_alert_at: dt.datetime | None = None


@dataclass(frozen=True)
class ClockRecord:
    """One case's clocks as stored: what the reminder scan, a deadline recomputation and `sla explain` read."""

    id: int
    reference: str
    subject: str
    requester: str
    requester_name: str
    status: Status
    priority: Priority
    plan: str | None
    opened_at: dt.datetime
    first_response_at: dt.datetime | None
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    resolved_at: dt.datetime | None
    paused_since: dt.datetime | None
    pauses: tuple[tuple[dt.datetime, dt.datetime], ...]  # closed pauses of the resolution clock, in order


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    kind: str
    envelope_from: str
    recipients: tuple[str, ...]
    message_id: str
    raw: bytes
    attempts: int
    case_reference: str | None
    case_id: int | None


@dataclass(frozen=True)
class CaseSummary:
    reference: str
    subject: str
    requester: str
    status: str
    priority: str
    priority_rule: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    message_count: int
    linked_to: str | None
    plan: str | None = None
    breached: tuple[str, ...] = ()  # targets missed: "first_response", "resolution"

    def as_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "subject": self.subject,
            "requester": self.requester,
            "status": self.status,
            "priority": self.priority,
            "priority_rule": self.priority_rule,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "first_response_due": iso(self.first_response_due),
            "resolution_due": iso(self.resolution_due),
            "message_count": self.message_count,
            "linked_to": self.linked_to,
            "plan": self.plan,
            "breached": list(self.breached),
        }
