"""Patterns of automated mail beyond the RFC 3834 headers: senders and subjects in many languages (pure).

Owns the pattern set (`config/automated.toml`, or an admin's copy via `loop_guard.patterns_file`): sender local
parts, local-part pieces, list-robot prefixes and suffixes, delivery-system display names, and subject patterns
per language and kind (bounce, out-of-office, ticket auto-response, read receipt, list digest); their validation
(errors name the entry) and `evidence()`, which says why a mail looks automated, quoting what matched
("subject matches out-of-office pattern (de): 'Abwesenheitsnotiz'"). Must not read files (the composition root
does) or look at the RFC 3834 headers (the loop guard checks those first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from casebot.mail import InboundMail


class PatternsError(ValueError):
    """Raised for a malformed patterns file; the message names the entry."""


@dataclass(frozen=True)
class SubjectRule:
    lang: str
    kind: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Patterns:
    localparts: frozenset[str] = frozenset()
    localpart_contains: tuple[str, ...] = ()
    localpart_suffixes: tuple[str, ...] = ()
    localpart_prefixes: tuple[str, ...] = ()
    display_names: frozenset[str] = frozenset()
    subjects: tuple[SubjectRule, ...] = field(default=())

    def evidence(self, m: InboundMail) -> str | None:
        """Why this mail looks automated, or None."""
        addr = m.sender.addr
        local = addr.rpartition("@")[0].strip('"').lower() if "@" in addr else ""
        if local:
            if local in self.localparts:
                return f"sender {local}@ is a mail system"
            for piece in self.localpart_contains:
                if piece in local:
                    return f"sender {local}@ looks like a mail system ({piece!r})"
            for suffix in self.localpart_suffixes:
                if local.endswith(suffix):
                    return f"sender {local}@ is a list robot ({suffix!r})"
            for prefix in self.localpart_prefixes:
                if local.startswith(prefix):
                    return f"sender {local}@ is a list robot ({prefix!r})"
        name = m.sender.name.strip().lower()
        if name and name in self.display_names:
            return f"sender name {m.sender.name!r} is a delivery system's"
        subject = " ".join(m.subject.split())
        for rule in self.subjects:
            found = rule.pattern.search(subject)
            if found:
                return f"subject matches {rule.kind} pattern ({rule.lang}): {found.group(0)!r}"
        return None


def _strings(origin: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PatternsError(f"{origin}: {key}: expected an array of non-empty strings")
    return tuple(v.lower() for v in value)


def parse_patterns(data: dict[str, Any], origin: str) -> Patterns:
    senders = data.get("senders", {})
    if not isinstance(senders, dict):
        raise PatternsError(f"{origin}: [senders] must be a table")
    known = {"localparts", "localpart_contains", "localpart_suffixes", "localpart_prefixes", "display_names"}
    unknown = set(senders) - known
    if unknown:
        raise PatternsError(f"{origin}: senders: unknown key(s) {', '.join(sorted(unknown))}")
    rules: list[SubjectRule] = []
    for i, entry in enumerate(data.get("subjects", [])):
        where = f"{origin}: subjects[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"lang", "kind", "patterns"}:
            raise PatternsError(f"{where}: expected a table with lang, kind and patterns")
        lang, kind = entry.get("lang"), entry.get("kind")
        if not isinstance(lang, str) or not isinstance(kind, str) or not lang or not kind:
            raise PatternsError(f"{where}: lang and kind must be non-empty strings")
        for j, text in enumerate(entry.get("patterns", [])):
            if not isinstance(text, str) or not text:
                raise PatternsError(f"{where}.patterns[{j}] ({lang} {kind}): expected a non-empty string")
            try:
                rules.append(SubjectRule(lang, kind, re.compile(text, re.IGNORECASE)))
            except re.error as exc:
                raise PatternsError(f"{where}.patterns[{j}] ({lang} {kind}): not a valid pattern: {exc}") from exc
    return Patterns(
        localparts=frozenset(_strings(origin, "senders.localparts", senders.get("localparts", []))),
        localpart_contains=_strings(origin, "senders.localpart_contains", senders.get("localpart_contains", [])),
        localpart_suffixes=_strings(origin, "senders.localpart_suffixes", senders.get("localpart_suffixes", [])),
        localpart_prefixes=_strings(origin, "senders.localpart_prefixes", senders.get("localpart_prefixes", [])),
        display_names=frozenset(_strings(origin, "senders.display_names", senders.get("display_names", []))),
        subjects=tuple(rules),
    )
