"""Pipeline steps defined outside casebot, as an admin's or a test's plugin would be (`module:Class` in
`[pipeline] steps`). Used by tests/unit/test_pipeline.py and tests/integration/test_quarantine.py."""

from __future__ import annotations

from typing import ClassVar

from casebot.pipeline import Finding, Incoming, Verdict


class TagVip:
    """Raises a new case from a VIP domain to critical: a step that decides something, after `priority`."""

    name: ClassVar[str] = "tag_vip"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        if verdict.opens_case and incoming.mail.sender.domain == "vip.example":
            from casebot.case import Priority

            verdict.triage.priority, verdict.triage.rule = Priority.CRITICAL, "vip-domain"
            return Finding(True, "critical", "sender's domain vip.example is a VIP domain")
        return Finding(False, "not vip")


class ExplodeOnPoison:
    """A fault inside casebot's own processing of one message (not a fake server): raises for a poison subject."""

    name: ClassVar[str] = "explode_on_poison"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        if "poison" in incoming.mail.subject:
            raise RuntimeError("simulated fault while processing")
        return Finding(False, "harmless")
