"""Pipeline plumbing: what a step sees, what it may decide, and the contract every step keeps.

Owns `Incoming` (the parsed mail with its arrival time, `now`, the pipeline's settings and the read-only `Lookup`
into stored cases), the typed `Verdict` grouped by concern (origin, placement, triage, acknowledgement), the
`Finding` a step returns, the `Step` protocol and `Stop`. Must not import an adapter, read the clock or write
anything: `now` arrives in `Incoming`, and the ingest job applies the verdict in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from casebot.automated import Patterns
from casebot.case import Priority, Status
from casebot.mail import InboundMail
from casebot.mail.bounce import DeliveryReport
from casebot.refs import ReferenceFormat
from casebot.rules import PriorityRule


@dataclass(frozen=True)
class CaseView:
    """What a step may know about an existing case."""

    reference: str
    status: Status
    requester: str
    participants: frozenset[str]
    id: int = 0  # the store's key, so the job that applies the verdict needs no second look-up


class Lookup(Protocol):
    """The questions a step may ask about stored cases; the store answers them inside the ingest transaction."""

    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        """The case that stored or sent any of these Message-IDs (nearest first), if exactly one did."""
        ...

    def case_view(self, reference: str) -> CaseView | None: ...

    def is_own_message_id(self, message_id: str) -> bool:
        """True when casebot itself sent a mail with this Message-ID."""
        ...

    def acks_to(self, address: str, since: dt.datetime, until: dt.datetime) -> int:
        """Acknowledgements queued to `address` for mail that arrived from `since` to `until` (the server's
        arrival time, not the moment casebot ingested it)."""
        ...

    def acks_for_sender(self, sender: str, since: dt.datetime, until: dt.datetime) -> int:
        """Acknowledgements queued for cases opened by mail from `sender` that arrived from `since` to `until`."""
        ...


@dataclass(frozen=True)
class PipelineConfig:
    reference_format: ReferenceFormat
    own_addresses: frozenset[str]
    public_domains: frozenset[str]
    rules: tuple[PriorityRule, ...]
    default_priority: Priority = Priority.LOW
    body_chars: int = 4000
    ack_enabled: bool = True
    ack_rate_limit: int = 5
    ack_rate_window: dt.timedelta = dt.timedelta(hours=1)
    # Senders and subjects that mark automated mail (config/automated.toml).
    automated: Patterns = field(default_factory=Patterns)
    escalation_words: tuple[str, ...] = ()
    escalation_address: str = ""
    staff_addresses: frozenset[str] = frozenset()  # addresses and "@domain" entries, lower-cased
    authserv_id: str = ""  # whose Authentication-Results prove a staff sender
    note_address: str = ""  # staff mail to this address is an internal note


@dataclass(frozen=True)
class Incoming:
    """One message as the steps see it: read-only."""

    mail: InboundMail
    now: dt.datetime
    config: PipelineConfig
    lookup: Lookup

    @property
    def arrived_at(self) -> dt.datetime:
        """When the mail server received the message (the transport's word the ingest job put on the mail:
        IMAP INTERNALDATE, the Maildir file time, the top Received header), else `now`; never after `now`."""
        arrived = self.mail.arrived_at
        return min(arrived, self.now) if arrived is not None else self.now


# --- the verdict, by concern -------------------------------------------------------------------------------------


@dataclass
class Origin:
    """Who sent it, as far as loop safety cares."""

    own_mail: bool = False  # casebot's own mail come back: stored, never a case
    automated: str | None = None  # why no automatic reply may go to this sender
    # Automated mail that answers a mail (dsn, bounce, mdn, arf, auto-reply): stored on the case of the mail it
    # answers, or kept without a case; never a case of its own (step `automated_answer`).
    answer: str | None = None
    report: DeliveryReport | None = None  # what casebot.mail.bounce read from a bounce, DSN, MDN or ARF report
    bounced: str | None = None  # casebot's own Message-ID a failure report is about: its outbox row bounced


@dataclass
class Role:
    """Whether the sender is staff, and whether that is proven (DKIM/DMARC seen by our own receiving server)."""

    staff: bool = False
    verified: bool = False
    evidence: str = ""


@dataclass
class Placement:
    """Where the message goes: an existing case, or a new one (maybe linked to an old one)."""

    case: CaseView | None = None
    linked_to: str | None = None
    caseless: str = ""  # set: stored without a case (automated mail that answers nothing casebot has), and why


@dataclass
class Escalation:
    requested: bool = False
    why: str = ""


@dataclass
class Triage:
    priority: Priority | None = None
    rule: str | None = None


@dataclass
class Acknowledgement:
    send: bool = False
    to: str = ""  # Reply-To if given, else From
    why: str = ""


@dataclass
class Verdict:
    origin: Origin = field(default_factory=Origin)
    role: Role = field(default_factory=Role)
    placement: Placement = field(default_factory=Placement)
    triage: Triage = field(default_factory=Triage)
    escalation: Escalation = field(default_factory=Escalation)
    ack: Acknowledgement = field(default_factory=Acknowledgement)
    trace: list[dict[str, Any]] = field(default_factory=list)  # written by the runner only, one entry per step

    @property
    def opens_case(self) -> bool:
        return not self.origin.own_mail and self.placement.case is None and not self.placement.caseless


@dataclass(frozen=True)
class Finding:
    """What one step found, for the trace: `hit` when the step decided something (a rule fired), `decision` in a
    word or two, `why` in plain words with the evidence, `detail` any further facts (a rule name, a reference)."""

    hit: bool
    decision: str
    why: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


class Stop(BaseException):
    """Raised by a step to end the chain after it; carries the step's finding. A BaseException, so a step's own
    `except Exception` can never swallow it."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.decision)
        self.finding = finding


class Step(Protocol):
    """One named decision about a message (GNU Mailman 3's IRule/IHandler). Contract: read `incoming`, update only
    the verdict fields of its own concern, return a `Finding` (or raise `Stop` with one to end the chain); never
    write, send or read the clock. The runner records the finding in the trace."""

    name: ClassVar[str]

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding: ...
