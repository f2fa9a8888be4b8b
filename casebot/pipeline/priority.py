"""Step `priority`: the priority of a new case, from the ordered keyword rules (`casebot.rules`).

Hit when a rule matched: the finding names the rule, the keyword and where it was found; otherwise the default
priority. A reply to an existing case keeps the case's priority. Must not read the rules file (the composition
root loads it into `PipelineConfig.rules`) or look at hidden text (the mail model drops it).
"""

from __future__ import annotations

from typing import ClassVar

from casebot import mail as mailmodel
from casebot import rules
from casebot.pipeline.base import Finding, Incoming, Verdict


class PriorityStep:
    name: ClassVar[str] = "priority"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        if verdict.placement.case is not None:
            return Finding(False, "unchanged", "reply to an existing case")
        config, triage = incoming.config, verdict.triage
        body = mailmodel.visible_body(incoming.mail, config.body_chars)
        found = rules.match(config.rules, incoming.mail.subject, body)
        if found is None:
            triage.priority, triage.rule = config.default_priority, None
            return Finding(False, str(config.default_priority), "no rule matched: default")
        triage.priority, triage.rule = found.rule.priority, found.rule.name
        return Finding(True, str(found.rule.priority), f"{found.where} matches {found.keyword!r}",
                       {"rule": found.rule.name, "where": found.where, "keyword": found.keyword})
