"""The wording of the mail casebot writes to staff about a new case: the new-case notice's variables (pure).

Owns what the notice tells the team: the reference, the client (name, address, who else was in Cc), the client's
message as text, its attachments (attached up to a size, listed always), the priority and the rule (and keyword)
that set it, both deadlines in local time, the plan, and how to answer. Must not decide whether a notice is sent,
render or compose it (`notices` does) or read the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from casebot.alerts import format_local
from casebot.commands import help_text
from casebot.mail import Attachment, InboundMail
from casebot.sla import SlaPolicy, describe
from casebot.sla_notices import CaseFacts

MAX_TEXT = 20_000  # characters of the client's message quoted in the notice; the case keeps the whole of it


@dataclass(frozen=True)
class Triage:
    """Why the case has its priority, from the pipeline's trace."""

    rule: str | None
    where: str = ""  # "subject" or "body"
    keyword: str = ""


def attachments_within(attachments: Sequence[Attachment], limit: int) -> tuple[Attachment, ...]:
    """The attachments that ride along: in order, while their total stays within `limit` bytes (0: none)."""
    out: list[Attachment] = []
    total = 0
    for att in attachments:
        if limit and total + att.size <= limit:
            out.append(att)
            total += att.size
    return tuple(out)


def staff_notice_variables(sla: SlaPolicy, mail: InboundMail, case: CaseFacts, triage: Triage,
                           attached: Sequence[Attachment], support: str) -> dict[str, Any]:
    cal = sla.calendar
    plan = next((p for p in sla.plans if p.name == case.plan), None)
    targets = sla.targets_for(case.priority, plan)
    cut = "\n[... cut here: the whole message is on the case]"
    text = mail.text if len(mail.text) <= MAX_TEXT else mail.text[:MAX_TEXT] + cut
    names = {a.filename for a in attached}
    return {
        "reference": case.reference,
        "original_subject": case.subject,
        "requester": case.requester,
        "requester_name": case.requester_name,
        "client": f"{case.requester_name} <{case.requester}>" if case.requester_name else case.requester,
        "cc": [a.addr for a in mail.cc if a.addr],
        "priority": case.priority.value,
        "rule": triage.rule or "",
        "rule_evidence": (f"{triage.where} matches {triage.keyword!r}" if triage.rule and triage.keyword
                          else "no rule matched: the default priority"),
        "first_response_by": format_local(case.first_response_due, cal) if case.first_response_due else "",
        "resolution_by": format_local(case.resolution_due, cal) if case.resolution_due else "",
        "first_response_target": describe(targets.first_response),
        "resolution_target": describe(targets.resolution),
        "plan": case.plan or "",
        "round_the_clock": sla.is_24x7(case.priority, plan),
        "opened": format_local(case.opened_at, cal),
        "text": text,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "attached": a.filename in names} for a in mail.attachments],
        "support_address": support,
        "commands_help": help_text(),
    }
