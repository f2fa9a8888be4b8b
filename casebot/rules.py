"""Keyword priority rules: their format, validation and matching (pure).

Owns the rule format (`[[rules]] name, priority, keywords`), its validation (errors name the rule) and the
matching policy: whole-word phrases, case-insensitive; a subject match counts SUBJECT_WEIGHT levels above a body
match; ties go to the subject, then to file order. Must not read files, the clock or storage: the composition
root reads the rules file and hands the parsed TOML to `parse_rules`; the caller gives visible text only (quotes
stripped, hidden HTML already dropped by the mail model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from casebot.case import PRIORITIES, Priority


class RulesError(ValueError):
    """Raised when a rules file is unreadable or a rule is malformed; the message names the rule."""


@dataclass(frozen=True)
class PriorityRule:
    name: str
    priority: Priority
    keywords: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "priority", Priority(self.priority))  # a plain "high" is accepted too

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        phrases = sorted({k.strip().lower() for k in self.keywords if k.strip()}, key=len, reverse=True)
        body = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in phrases)
        return re.compile(rf"(?<![\w])(?:{body})(?![\w])", re.IGNORECASE)

    def search(self, text: str) -> str | None:
        m = self.pattern.search(text)
        return m.group(0) if m else None


@dataclass(frozen=True)
class Match:
    rule: PriorityRule
    where: str  # "subject" or "body"
    keyword: str


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


SUBJECT_WEIGHT = 1.5  # a keyword in the subject counts one and a half priority levels more than in the body


def match(rules: tuple[PriorityRule, ...], subject: str, body: str) -> Match | None:
    """The best-scoring match: severity of the rule, plus SUBJECT_WEIGHT when found in the subject. So a
    subject "Quick question" with "production down" in the body is critical, while a subject "URGENT" (high)
    outweighs a stray "data loss" deep in the body. Ties go to the subject, then to file order."""
    best: tuple[float, Match] | None = None
    # Phones and Word type curly apostrophes: "can\u2019t log in" must match the rule's "can't log in".
    for where, text in (("subject", subject.translate(_QUOTES)), ("body", body.translate(_QUOTES))):
        bonus = SUBJECT_WEIGHT if where == "subject" else 0.0
        for rule in rules:
            score = rule.priority.rank + bonus
            if best is not None and score <= best[0]:
                continue
            found = rule.search(text)
            if found:
                best = (score, Match(rule, where, " ".join(found.split())))
    return best[1] if best else None


def parse_rules(data: dict[str, object], origin: str) -> tuple[PriorityRule, ...]:
    raw = data.get("rules")
    if not isinstance(raw, list) or not raw:
        raise RulesError(f"{origin}: expected at least one [[rules]] table")
    out: list[PriorityRule] = []
    for i, item in enumerate(raw):
        where = f"{origin}: rules[{i}]"
        if not isinstance(item, dict):
            raise RulesError(f"{where}: expected a table")
        name, priority, keywords = item.get("name"), item.get("priority"), item.get("keywords")
        unknown = set(item) - {"name", "priority", "keywords"}
        if unknown:
            raise RulesError(f"{where} ({name or 'unnamed'}): unknown key(s) {', '.join(sorted(unknown))}")
        if not isinstance(name, str) or not name or len(name) > 120:
            raise RulesError(f"{where}.name: expected a non-empty string of at most 120 characters")
        if priority not in PRIORITIES:
            raise RulesError(f"{where}.priority ({name}): must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) and k for k in keywords):
            raise RulesError(f"{where}.keywords ({name}): expected a non-empty array of strings")
        out.append(PriorityRule(name, Priority(priority), tuple(keywords)))
    return tuple(out)
