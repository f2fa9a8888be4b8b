"""Notices: every kind of mail casebot writes, built in one place (pure).

Owns the kinds of outbound mail, one `Kind` each plus one template: to the client, the acknowledgement (`ack`),
a relayed staff reply (`relay`), a status notice (`status`) and the answer to an escalation (`escack`); to staff,
the SLA reminder (`remind`), breach alert (`breach`), escalation (`escalate`), on-call page (`page`), daily
digest (`digest`), new-case notice (`notice`), a client's escalation (`clientesc`) and a reply about bad commands
(`cmderr`). Also their template variables (the wording of the SLA notices is `casebot.sla_notices`', of the
staff notice `casebot.staff_notices`'), their idempotency-key recipes (`ack:<message>`,
`remind:<ref>:<target>:<threshold>`, `breach:<ref>:<target>`, `escalate:<ref>:<target>`, `page:<ref>`,
`digest:<YYYY-MM-DD>`, `notice:<ref>`, `oauth:<problem>:<token>:<day>` for the OAuth2 alert (`oauth`) ...), the
Message-ID that derives from the key (a resend after a crash is
the same mail), threading headers and the casebot marker header. `Notices.build()` renders and composes; the
caller only queues the result. Must not decide whether a mail is sent (the pipeline and the jobs do), queue it,
or read the clock: `now` is passed in.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
from dataclasses import dataclass
from typing import Any

from casebot import refs
from casebot.alerts import Alert, format_local
from casebot.case import Priority
from casebot.commands import CommandError, help_text
from casebot.mail import (
    Address,
    Attachment,
    InboundMail,
    Outgoing,
    compose,
    envelope_address,
    first_address,
    make_message_id,
)
from casebot.sla import Deadlines, Plan, SlaPolicy, describe
from casebot.sla_notices import CaseFacts as CaseFacts  # re-exported: callers build notices from here
from casebot.sla_notices import DigestFacts as DigestFacts
from casebot.sla_notices import SlaWording
from casebot.staff_notices import Triage, attachments_within, staff_notice_variables
from casebot.templates import TemplateError, Templates


@dataclass(frozen=True)
class Kind:
    name: str  # the outbox's `kind` column and the audit events' prefix (`ack.queued`, `ack.sent`)
    template: str
    what: str  # one line for the README and `casebot check`


ACK = Kind("ack", "acknowledgement.txt.j2", "acknowledgement of a new case, to the client")
REMINDER = Kind("remind", "reminder.txt.j2", "reminder that a share of an SLA target has elapsed, to staff.notify")
BREACH = Kind("breach", "breach.txt.j2", "breach alert at an SLA deadline, to staff.notify")
ESCALATION = Kind("escalate", "escalation.txt.j2", "escalation of a breached critical/high case, to escalation.manager")
PAGE = Kind("page", "page.txt.j2", "page to a plan's on-call address for an out-of-hours case with 24x7 cover")
DIGEST = Kind("digest", "digest.txt.j2", "daily digest of open, due, breached and waiting cases, to staff.notify")
STAFF_NOTICE = Kind("notice", "staff_notice.txt.j2", "new-case notice with the client's message, to staff.notify")
RELAY = Kind("relay", "relay.txt.j2", "a staff reply relayed to the client, threaded into their conversation")
COMMAND_ERRORS = Kind("cmderr", "command_errors.txt.j2", "what was wrong with a staff member's commands, to them")
STATUS = Kind("status", "status.txt.j2", "a short notice to the client at each status change of their case")
CLIENT_ESCALATION = Kind("clientesc", "client_escalation.txt.j2", "a client escalated a case, to manager and team")
ESCALATION_ACK = Kind("escack", "escalation_ack.txt.j2", "what happens next, to the client who escalated")
OAUTH_ALERT = Kind("oauth", "oauth_alert.txt.j2", "an OAuth2 token that stopped working, or a client secret near its "
                   "expiry, to staff.notify")
KINDS: tuple[Kind, ...] = (ACK, REMINDER, BREACH, ESCALATION, PAGE, DIGEST, STAFF_NOTICE, RELAY, COMMAND_ERRORS,
                           STATUS, CLIENT_ESCALATION, ESCALATION_ACK, OAUTH_ALERT)
_ALERT_KINDS = {"reminder": REMINDER, "breach": BREACH, "escalation": ESCALATION}


def templates_used() -> list[str]:
    return [k.template for k in KINDS]


def ack_key(dedupe_key: str) -> str:
    """One acknowledgement per inbound message, whatever happens: keyed by the message's dedupe key."""
    return "ack:" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:40]


def alert_key(reference: str, kind: str, target: str, threshold: float) -> str:
    """`remind:<ref>:<target>:<threshold>` (one per share), `breach:<ref>:<target>`, `escalate:<ref>:<target>`.
    `kind` is an `Alert.kind` (`reminder`, `breach`, `escalation`) or the kind's name (`remind`, `escalate`)."""
    found = _ALERT_KINDS.get(kind) or next((k for k in _ALERT_KINDS.values() if k.name == kind), None)
    if found is None:
        raise ValueError(f"unknown alert kind {kind!r}")
    if found is REMINDER:
        return f"{REMINDER.name}:{reference}:{target}:{threshold:g}"
    return f"{found.name}:{reference}:{target}"


def page_key(reference: str) -> str:
    """One on-call page per case, whatever happens."""
    return f"{PAGE.name}:{reference}"


def notice_key(reference: str) -> str:
    """One new-case notice to staff per case."""
    return f"{STAFF_NOTICE.name}:{reference}"


def oauth_key(token: str, problem: str, day: dt.date) -> str:
    """`oauth:token_failed:<token>:<day the failure began>` (one per failure), `oauth:secret_expiring:<token>:<the
    secret's expiry date>` (one per secret)."""
    return f"{OAUTH_ALERT.name}:{problem}:{token}:{day.isoformat()}"


def digest_key(day: dt.date) -> str:
    """One digest per local business day."""
    return f"{DIGEST.name}:{day.isoformat()}"


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
        """The SMTP envelope sender: the domain as an A-label (`support@xn--bcher-kva.example`)."""
        try:
            return envelope_address(self.address.addr)
        except ValueError:
            return self.address.addr  # config validation names a bad from_address; never crash here

    @property
    def domain(self) -> str:
        """The A-label domain, for Message-IDs (which must be ASCII)."""
        return self.envelope_from.rpartition("@")[2] if "@" in self.envelope_from else ""


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
        self.wording = SlaWording(sla)

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
        deadlines: Deadlines | None, now: dt.datetime, plan: Plan | None = None, clock_start: dt.datetime | None = None,
    ) -> Notice:
        """`clock_start`: when the case's clock starts (the arrival itself within hours or with 24x7 cover); when
        not given, the policy's clock start for an arrival at `now`."""
        try:
            targets = self.sla.targets_for(priority, plan)
        except KeyError:
            targets = None
        start = clock_start if clock_start is not None else self.sla.clock_start(priority, now, plan)
        out_of_hours = start > now
        cal = self.sla.calendar
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
            "first_response_by": format_local(deadlines.first_response_due, cal) if deadlines else "",
            "resolution_by": format_local(deadlines.resolution_due, cal) if deadlines and deadlines.resolution_due
            else "",
            "clock_starts": format_local(start, cal) if out_of_hours else "",
            "out_of_hours": out_of_hours,
            "plan": plan.name if plan else "",
            "round_the_clock": self.sla.is_24x7(priority, plan),
        }
        answers = mail.message_id
        return self.build(
            ACK, ack_key(mail.dedupe_key), (to,), variables, reference=reference, now=now,
            in_reply_to=answers, references=(*mail.references, answers) if answers else mail.references,
        )

    def alert(self, alert: Alert, case: CaseFacts, to: tuple[str, ...], now: dt.datetime,
              left: dt.timedelta) -> Notice:
        """A reminder, breach alert or escalation (by `alert.kind`); `left` is the signed counted time left at
        `now` (negative once overdue, as `alerts.time_left` gives it)."""
        kind = _ALERT_KINDS[alert.kind]
        variables = {**self.common(now), **self.wording.alert(alert, case, left)}
        key = alert_key(case.reference, alert.kind, alert.target, alert.threshold)
        return self.build(kind, key, to, variables, reference=case.reference, now=now)

    def page(self, case: CaseFacts, to: tuple[str, ...], now: dt.datetime) -> Notice:
        """The page to a plan's on-call address for a case its plan covers 24x7 that arrived out of hours."""
        variables = {**self.common(now), **self.wording.page(case, now)}
        return self.build(PAGE, page_key(case.reference), to, variables, reference=case.reference, now=now)

    def digest(self, day: dt.date, digest: DigestFacts, to: tuple[str, ...], now: dt.datetime) -> Notice:
        """The daily digest of `day` (a local date)."""
        variables = {**self.common(now), **self.wording.digest(day, digest)}
        return self.build(DIGEST, digest_key(day), to, variables, reference=None, now=now)

    def staff_notice(self, mail: InboundMail, case: CaseFacts, triage: Triage, to: tuple[str, ...], now: dt.datetime,
                     attach_max_bytes: int) -> Notice:
        """The new-case notice to staff: the client's message, its files (attached up to `attach_max_bytes`),
        priority and why, deadlines. Reply-To is the support address, so a plain "Reply" lands back in casebot."""
        attached = attachments_within(mail.attachments, attach_max_bytes)
        variables = {**self.common(now), "subject": refs.tag_subject(case.reference, mail.subject or case.subject),
                     **staff_notice_variables(self.sla, mail, case, triage, attached, self.identity.envelope_from)}
        return self.build(STAFF_NOTICE, notice_key(case.reference), to, variables, reference=case.reference, now=now,
                          attachments=attached, reply_to=self.identity.from_address)

    def relay(self, *, mail: InboundMail, text: str, reference: str, to: tuple[str, ...], thread: tuple[str, ...],
              key: str, now: dt.datetime) -> Notice:
        """A staff reply to the client, from the support address (the staff member's name shown), threaded into
        the client's conversation (`thread`: their Message-IDs, oldest first), the staff's files along."""
        name = mail.sender.name or mail.sender.addr.partition("@")[0]
        variables = {**self.common(now), "subject": refs.tag_subject(reference, mail.subject or reference),
                     "reference": reference, "text": text, "staff_name": name}
        sender = email.utils.formataddr((f"{name} ({self.identity.team})", self.identity.envelope_from))
        return self.build(RELAY, key, to, variables, reference=reference, now=now,
                          in_reply_to=thread[-1] if thread else None, references=thread,
                          attachments=mail.attachments, from_address=sender)

    def status(self, *, reference: str, subject: str, requester: str, requester_name: str, status: str, why: str,
               to: tuple[str, ...], thread: tuple[str, ...], key: str, now: dt.datetime) -> Notice:
        """The client's notice of a status change (`waiting`, `resolved`, `closed`, `reopened`), threaded."""
        variables = {**self.common(now), "subject": refs.tag_subject(reference, subject), "reference": reference,
                     "requester": requester, "requester_name": requester_name, "status": status, "why": why}
        return self.build(STATUS, key, to, variables, reference=reference, now=now,
                          in_reply_to=thread[-1] if thread else None, references=thread)

    def client_escalation(self, *, case: CaseFacts, mail: InboundMail, why: str, to: tuple[str, ...], key: str,
                          now: dt.datetime) -> Notice:
        cal = self.sla.calendar
        variables = {**self.common(now), "subject": refs.tag_subject(case.reference, f"Escalated: {case.subject}"),
                     "reference": case.reference, "client": mail.sender.formatted(), "why": why,
                     "priority": case.priority.value, "text": mail.text[:5000],
                     "first_response_by": format_local(case.first_response_due, cal) if case.first_response_due
                     else "", "resolution_by": format_local(case.resolution_due, cal) if case.resolution_due else ""}
        return self.build(CLIENT_ESCALATION, key, to, variables, reference=case.reference, now=now)

    def escalation_ack(self, *, case: CaseFacts, mail: InboundMail, to: tuple[str, ...], key: str,
                       thread: tuple[str, ...], now: dt.datetime) -> Notice:
        variables = {**self.common(now), "subject": refs.tag_subject(case.reference, mail.subject or case.subject),
                     "reference": case.reference, "requester_name": mail.sender.name,
                     "priority": case.priority.value}
        return self.build(ESCALATION_ACK, key, to, variables, reference=case.reference, now=now,
                          in_reply_to=mail.message_id or (thread[-1] if thread else None), references=thread)

    def oauth_alert(self, *, token: str, problem: str, detail: str, day: dt.date, to: tuple[str, ...],
                    now: dt.datetime, days_left: int = 0, since: dt.datetime | None = None) -> Notice:
        """`problem` "token_failed" (`day`: the day the failure began, at `since`) or "secret_expiring" (`day`: the
        secret's expiry date, `days_left` until then)."""
        server = "IMAP mailbox" if token == "mailbox" else "SMTP server"
        failed = problem == "token_failed"
        subject = (f"casebot cannot log in to the {server}: OAuth2 token failing" if failed else
                   f"casebot's OAuth2 client secret ({token}) expires {day.isoformat()}")
        variables = {**self.common(now), "subject": subject, "problem": problem, "token": token, "server": server,
                     "detail": detail, "since": format_local(since or now, self.sla.calendar),
                     "consequence": "no new mail is read from the mailbox" if token == "mailbox" else
                     "no mail is sent (it waits in the outbox)",
                     "consequence_short": "reading mail" if token == "mailbox" else "sending mail",
                     "login_command": f"casebot oauth login --for {token}", "expires": day.isoformat(),
                     "days_left": days_left}
        return self.build(OAUTH_ALERT, oauth_key(token, problem, day), to, variables, reference=None, now=now)

    def command_errors(self, *, mail: InboundMail, reference: str, errors: tuple[CommandError, ...], key: str,
                       now: dt.datetime) -> Notice:
        tagged = refs.tag_subject(reference, mail.subject or "")
        subject = tagged.replace(f"[{reference}]", f"[{reference}] Command not understood:", 1)
        variables = {**self.common(now), "subject": subject,
                     "reference": reference, "help": help_text(),
                     "errors": [{"line": e.line.strip(), "problem": e.problem, "usage": e.usage} for e in errors]}
        answers = mail.message_id
        return self.build(COMMAND_ERRORS, key, (mail.sender.addr,), variables, reference=reference, now=now,
                          in_reply_to=answers, references=(*mail.references, answers) if answers else ())

    def build(
        self, kind: Kind, key: str, to: tuple[str, ...], variables: dict[str, Any], *, reference: str | None,
        now: dt.datetime, in_reply_to: str | None = None, references: tuple[str, ...] = (),
        attachments: tuple[Attachment, ...] = (), reply_to: str | None = None, from_address: str | None = None,
    ) -> Notice:
        """Render `kind`'s template with `variables` and compose the mail; the Message-ID derives from `key`."""
        message_id = make_message_id(self.identity.domain, key)
        try:
            rendered = self.templates.render(kind.template, variables)
            raw = compose(Outgoing(
                from_address=from_address or self.identity.from_address, to=to, subject=rendered.subject,
                text=rendered.text,
                message_id=message_id, in_reply_to=in_reply_to, references=references,
                headers=(("X-Casebot-Reference", reference),) if reference else (), date=now,
                attachments=attachments, reply_to=reply_to,
            ))
        except (TemplateError, ValueError) as exc:  # ValueError: UnicodeError, email's header errors, an address
            raise NoticeError(f"{type(exc).__name__}: {exc}") from exc
        return Notice(kind.name, key, to, self.identity.envelope_from, message_id, raw)
