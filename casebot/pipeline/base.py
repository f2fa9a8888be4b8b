"""Pipeline plumbing: the context a message carries through the steps, the lookup protocol, the chain runner.

Owns `Context` (the decisions so far and the trace), `Lookup` (the read-only questions steps may ask about
stored cases) and `run_chain`. Must not import an adapter or read the clock: `now` arrives in the context.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from casebot.mail import InboundMail
from casebot.pipeline.priority import PriorityRule
from casebot.refs import ReferenceFormat


class Stop(Exception):
    """Raised by a step to end the chain (e.g. the message is casebot's own mail)."""


@dataclass(frozen=True)
class CaseView:
    """What a step may know about an existing case."""

    reference: str
    status: str
    requester: str
    participants: frozenset[str]


class Lookup(Protocol):
    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        """The case that stored or sent any of these Message-IDs (nearest first), if any."""
        ...

    def case_by_reference(self, reference: str) -> CaseView | None: ...

    def is_own_message_id(self, message_id: str) -> bool:
        """True when casebot itself sent a mail with this Message-ID."""
        ...

    def acks_to(self, address: str, since: dt.datetime) -> int:
        """Acknowledgements queued to `address` at or after `since`."""
        ...

    def acks_for_sender(self, sender: str, since: dt.datetime) -> int:
        """Acknowledgements queued at or after `since` for cases opened by mail from `sender`."""
        ...


@dataclass(frozen=True)
class PipelineConfig:
    reference_format: ReferenceFormat
    own_addresses: frozenset[str]
    public_domains: frozenset[str]
    rules: tuple[PriorityRule, ...]
    default_priority: str = "low"
    body_chars: int = 4000
    ack_enabled: bool = True
    ack_rate_limit: int = 5
    ack_rate_window: dt.timedelta = dt.timedelta(hours=1)


@dataclass
class Context:
    mail: InboundMail
    now: dt.datetime
    config: PipelineConfig
    lookup: Lookup
    # Decisions, filled in by the steps.
    own_mail: bool = False
    automated: str | None = None  # why no automatic reply may go to this sender
    case: CaseView | None = None  # existing case the message belongs to
    linked_to: str | None = None  # a new case is opened, linked to this reference
    reopen: bool = False
    priority: str | None = None
    priority_rule: str | None = None
    acknowledge: bool = False
    ack_to: str = ""  # where an acknowledgement goes: Reply-To if given, else From
    ack_reason: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)

    def record(self, step: str, decision: str, **detail: Any) -> None:
        self.trace.append({"step": step, "decision": decision, **detail})

    @property
    def opens_case(self) -> bool:
        return not self.own_mail and self.case is None


Step = Callable[[Context], None]

STEPS: dict[str, Step] = {}


def step(name: str) -> Callable[[Step], Step]:
    def register(fn: Step) -> Step:
        STEPS[name] = fn
        return fn

    return register


DEFAULT_CHAIN: tuple[str, ...] = ("own_mail", "loop_guard", "threading", "priority", "acknowledgement")


def run_chain(ctx: Context, chain: tuple[str, ...] = DEFAULT_CHAIN) -> Context:
    from casebot.pipeline import steps  # noqa: F401 - registers the steps

    for name in chain:
        try:
            STEPS[name](ctx)
        except Stop:
            break
    return ctx
