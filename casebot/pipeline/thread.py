"""Step `threading`: which existing case a message answers, if any.

Hit when the message belongs to a case: `In-Reply-To`/`References` against every Message-ID casebot stored or sent
(a Message-ID on two cases says nothing and is skipped), then a reference in the subject, which threads only when
the sender is a participant or from the requester's own (non-public) domain. A closed case, or a reference quoted
by a stranger, gives a new case linked to the old one: a guessed reference never reads or writes someone else's
case. Must not change a case's status (the case life cycle does, when the job applies the verdict).
"""

from __future__ import annotations

from typing import ClassVar

from casebot.case import Status
from casebot.pipeline.base import CaseView, Finding, Incoming, Verdict


def _belongs(incoming: Incoming, case: CaseView) -> str | None:
    sender = incoming.mail.sender.addr
    if not sender:
        return None
    if sender in case.participants:
        return "sender is a participant"
    domain = sender.rpartition("@")[2]
    if domain and domain == case.requester.rpartition("@")[2] and domain not in incoming.config.public_domains:
        return f"sender is from the requester's domain {domain}"
    return None


class Threading:
    name: ClassVar[str] = "threading"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        m, place = incoming.mail, verdict.placement
        if m.thread_ids:
            case = incoming.lookup.case_for_message_ids(m.thread_ids)
            if case is not None and case.status != Status.CLOSED:
                place.case = case
                return Finding(True, "attach", "In-Reply-To/References matches a stored message",
                               {"reference": case.reference})
            if case is not None:
                place.linked_to = case.reference
                return Finding(False, "new case linked", "case is closed", {"reference": case.reference})
        unknown: list[str] = []
        for reference in incoming.config.reference_format.find(m.subject):
            case = incoming.lookup.case_view(reference)
            if case is None:
                unknown.append(reference)
                continue
            why = _belongs(incoming, case)
            if why and case.status != Status.CLOSED:
                place.case = case
                return Finding(True, "attach", f"reference in subject; {why}", {"reference": case.reference})
            place.linked_to = case.reference
            return Finding(False, "new case linked",
                           "case is closed" if why else "sender is not a participant of the referenced case",
                           {"reference": case.reference})
        if unknown:
            return Finding(False, "new case", f"unknown reference(s) in subject: {', '.join(unknown)}")
        return Finding(False, "new case")
