"""Notices: every kind of mail casebot writes, built in one place (pure).

Owns the kinds of outbound mail (today the acknowledgement, `ack`; the staff notice, the relay of a staff reply,
reminders, breach alerts, escalations and status notices join as one `Kind` each plus one template), their
template variables, their idempotency-key recipe (`ack:<message>`, later `remind:<case>:<target>:<threshold>`...),
the Message-ID that derives from the key (a resend after a crash is the same mail), threading headers and the
casebot marker header. `Notices.build()` renders and composes; the caller only queues the result. Must not
decide whether a mail is sent (the pipeline and the jobs do), queue it, or read the clock: `now` is passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from casebot import refs
from casebot.case import Priority
from casebot.mail import Address, InboundMail, Outgoing, compose, first_address, make_message_id
from casebot.sla import Deadlines, SlaPolicy, describe
from casebot.templates import TemplateError, Templates


@dataclass(frozen=True)
class Kind:
    name: str  # the outbox's `kind` column and the audit events' prefix (`ack.queued`, `ack.sent`)
    template: str
    what: str  # one line for the README and `casebot check`


ACK = Kind("ack", "acknowledgement.txt.j2", "acknowledgement of a new case, to the client")
KINDS: tuple[Kind, ...] = (ACK,)


def templates_used() -> list[str]:
    return [k.template for k in KINDS]


def ack_key(dedupe_key: str) -> str:
    """One acknowledgement per inbound message, whatever happens: keyed by the message's dedupe key."""
    return "ack:" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class Identity:
    """Who casebot writes as, parsed once at start-up from `outgoing.from_address`."""

    from_address: str  # as configured, display name included
    address: Address
    team: str

    @classmethod
    def parse(cls, from_address: str) -> Identity:
        address = first_address(from_address)
        return cls(from_address, address, address.name or "Support")

    @property
    def envelope_from(self) -> str:
        return self.address.addr

    @property
    def domain(self) -> str:
        return self.address.domain


class NoticeError(Exception):
    """Raised when a notice cannot be built (its template fails, or compose refuses a value); the caller keeps the
    case, records why no mail went out and logs it."""


@dataclass(frozen=True)
class Notice:
    """A mail ready for the outbox."""

    kind: str
    key: str
    recipients: tuple[str, ...]
    envelope_from: str
    message_id: str
    raw: bytes


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def business_days(workdays: tuple[int, ...]) -> str:
    days = sorted(workdays)
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{_DAY_NAMES[days[0]]} to {_DAY_NAMES[days[-1]]}"
    return ", ".join(_DAY_NAMES[d] for d in days)


class Notices:
    """Builds every notice from the templates, the SLA policy and casebot's identity."""

    def __init__(self, templates: Templates, identity: Identity, sla: SlaPolicy) -> None:
        self.templates, self.identity, self.sla = templates, identity, sla

    def common(self, now: dt.datetime) -> dict[str, Any]:
        """Variables every template gets."""
        cal = self.sla.calendar
        return {
            "team": self.identity.team,
            "business_hours": f"{cal.start:%H:%M}-{cal.end:%H:%M} {cal.timezone}",
            "business_days": business_days(cal.workdays),
            "now": now,
        }

    def acknowledgement(
        self, *, mail: InboundMail, to: str, reference: str, subject: str, priority: Priority,
        deadlines: Deadlines | None, now: dt.datetime,
    ) -> Notice:
        targets = self.sla.targets.get(priority)
        variables = {
            **self.common(now),
            "reference": reference,
            "subject": refs.tag_subject(reference, mail.subject or subject),
            "original_subject": subject,
            "requester_name": mail.sender.name,
            "requester": mail.sender.addr,
            "priority": priority.value,
            "first_response_due": deadlines.first_response_due if deadlines else None,
            "resolution_due": deadlines.resolution_due if deadlines else None,
            "first_response_target": describe(targets.first_response) if targets else "",
            "resolution_target": describe(targets.resolution) if targets else "",
        }
        answers = mail.message_id
        return self.build(
            ACK, ack_key(mail.dedupe_key), (to,), variables, reference=reference, now=now,
            in_reply_to=answers, references=(*mail.references, answers) if answers else mail.references,
        )

    def build(
        self, kind: Kind, key: str, to: tuple[str, ...], variables: dict[str, Any], *, reference: str | None,
        now: dt.datetime, in_reply_to: str | None = None, references: tuple[str, ...] = (),
    ) -> Notice:
        """Render `kind`'s template with `variables` and compose the mail; the Message-ID derives from `key`."""
        message_id = make_message_id(self.identity.domain, key)
        try:
            rendered = self.templates.render(kind.template, variables)
            raw = compose(Outgoing(
                from_address=self.identity.from_address, to=to, subject=rendered.subject, text=rendered.text,
                message_id=message_id, in_reply_to=in_reply_to, references=references,
                headers=(("X-Casebot-Reference", reference),) if reference else (), date=now,
            ))
        except (TemplateError, ValueError) as exc:  # ValueError: UnicodeError and email's header errors
            raise NoticeError(f"{type(exc).__name__}: {exc}") from exc
        return Notice(kind.name, key, to, self.identity.envelope_from, message_id, raw)
