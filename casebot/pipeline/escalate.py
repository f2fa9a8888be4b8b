"""Step `escalation`: does the client ask for their case to be escalated?

Hit for a human client's reply to an existing case whose subject or first line holds one of
`escalation.words` as a whole word (case-insensitive: "ESCALATE", "Re: escalation - order 42"), or that was sent
to `escalation.address` (To or Cc). The finding quotes the evidence. Must not apply the escalation (the ingest
job does: recorded, manager and team told, priority raised, client answered) or act on staff or automated mail.
"""

from __future__ import annotations

import re
from typing import ClassVar

from casebot.pipeline.base import Finding, Incoming, Verdict


class EscalationStep:
    name: ClassVar[str] = "escalation"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        m, config = incoming.mail, incoming.config
        if verdict.placement.case is None or verdict.role.staff or verdict.origin.automated:
            return Finding(False, "not asked", "only a client's human reply to a case can escalate it")
        address = config.escalation_address.lower()
        if address and address in {a.addr for a in (*m.to, *m.cc)}:
            return self._hit(verdict, f"sent to the escalation address {address}")
        first = next((line.strip() for line in m.text.splitlines() if line.strip()), "")
        for where, text in (("subject", m.subject), ("first line", first)):
            for word in config.escalation_words:
                found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE)
                if found:
                    return self._hit(verdict, f"{where} says {found.group(0)!r}")
        return Finding(False, "not asked")

    @staticmethod
    def _hit(verdict: Verdict, why: str) -> Finding:
        verdict.escalation.requested, verdict.escalation.why = True, why
        return Finding(True, "escalate", why)
