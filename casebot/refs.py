"""Case reference numbers: format, mint from a sequence number, find in a subject.

Owns the mapping between a sequence number and its printed reference (default `CASE-000123`) and the pattern that
recognises a reference in a subject line. Pure: the sequence itself is minted atomically by the store.
Must not mint numbers (the store does, atomically) or look up cases.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cached_property

DEFAULT_FORMAT = "CASE-{number:06d}"


class ReferenceFormatError(ValueError):
    """Raised when a configured reference format is unusable (no `{number}` field, or an unsafe character)."""


@dataclass(frozen=True)
class ReferenceFormat:
    """A format such as `CASE-{number:06d}` or `PR{number:05d}`: literal text plus exactly one `{number}` field."""

    template: str = DEFAULT_FORMAT

    def __post_init__(self) -> None:
        fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
        if fields != ["number"]:
            raise ReferenceFormatError(f"reference format must contain exactly one {{number}} field: {self.template!r}")
        literal = "".join(lit for lit, _, _, _ in string.Formatter().parse(self.template))
        if not literal or not re.fullmatch(r"[A-Za-z0-9#/_.-]+", literal):
            raise ReferenceFormatError(
                f"reference format needs a literal prefix of letters, digits or #/_.- : {self.template!r}"
            )
        if len(self.format(10**12 - 1)) > 64:  # also raises ValueError early for a bad format spec
            raise ReferenceFormatError(
                f"reference format makes references longer than 64 characters: {self.template!r}"
            )

    def format(self, number: int) -> str:
        return self.template.format(number=number)

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        parts: list[str] = []
        for literal, field, _spec, _conv in string.Formatter().parse(self.template):
            parts.append(re.escape(literal))
            if field is not None:
                parts.append(r"(?P<number>\d{1,12})")  # a 5000-digit "reference" is no reference
        # Word boundaries on both sides: `XCASE-0001` or `CASE-0001234x` are not references.
        return re.compile(r"(?<![A-Za-z0-9])" + "".join(parts) + r"(?![A-Za-z0-9])", re.IGNORECASE)

    def find(self, subject: str) -> list[str]:
        """References in a subject, bracketed ones first, normalised to their canonical printed form."""
        found: list[str] = []
        bracketed = [m for m in self.pattern.finditer(subject) if _in_brackets(subject, m.start(), m.end())]
        others = [m for m in self.pattern.finditer(subject) if m not in bracketed]
        for m in [*bracketed, *others]:
            ref = self.format(int(m.group("number")))
            if ref not in found:
                found.append(ref)
        return found

    def number_of(self, reference: str) -> int | None:
        m = self.pattern.fullmatch(reference)
        return int(m.group("number")) if m else None


def _in_brackets(text: str, start: int, end: int) -> bool:
    return start > 0 and end < len(text) and text[start - 1] == "[" and text[end] == "]"


# The full-width colon (U+FF1A) is what CJK mail clients write after a reply prefix.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|wg|fw|fwd|tr|rif|r|ref|odp|vá|res|enc)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)


def strip_reply_prefixes(subject: str) -> str:
    """`RE[2]: AW: Sv: Hello` -> `Hello`. Localised prefixes do not change what a message is about."""
    return _PREFIX.sub("", subject).strip()


def tag_subject(reference: str, subject: str) -> str:
    """`[CASE-000123] original subject`, without stacking tags or reply prefixes on each round trip."""
    clean = strip_reply_prefixes(subject)
    tag = f"[{reference}]"
    ours = reference.lower()
    # One pattern for every reference (a pattern per reference would fill re's cache with one per case).
    clean = _TAG.sub(lambda m: " " if m.group(1).lower() == ours else m.group(0), clean).strip()
    return f"{tag} {clean}" if clean else tag


_TAG = re.compile(r"\s*\[([^\[\]]{1,200})\]\s*")
