"""The new part of a reply (pure): quoted history and the signature stripped with mail-parser-reply.

Owns `latest_reply()`, the only importer of `mailparser_reply`. The library splits the text at reply headers
("On ... wrote:", "Am ... schrieb ...:", "Le ... a écrit :", Outlook "From:/Sent:" blocks, "-----Original
Message-----") and finds a signature ("-- ", "Best regards", "Sent from my iPhone"). Guards on top of it, so
that no text a person wrote is lost: hyphen lists are never taken for a signature; the library's disclaimer
removal ("Warning: ... mail ...") is not used; a signature is only removed when its first line looks like a
sign-off (the keyword is a whole word, and what follows is a short name, not a sentence); Polish is not a default
language (its "Od:/Do:/Data:" header needs one line, so "Data: ..." in a body would cut it); line indentation is
kept; two Gmail headers 1.36 misses (Spanish "El ... escribió:", Dutch "Op ... schreef Name <addr>:") are
cut here; separator lines left above a cut header are dropped; an empty result falls back to the text above
the first `>` line. Must not do I/O, read the clock or touch storage, and never
raises: a library error returns the text unchanged with how="not stripped: <reason>".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailparser_reply.constants import GENERIC_MAIL_SEPARATOR, MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

# Every language mail-parser-reply 1.36 knows, except "david" (a Tobit David header, not a language).
SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(sorted(code for code in MAIL_LANGUAGES if code != "david"))
# No Portuguese, Norwegian or Finnish in 1.36; Polish left out on purpose (see the module docstring).
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "cs", "ja", "ko", "zh")

_QUOTE_PREFIX = re.compile(r"^(?:> ?)*")
_SEPARATOR_LINE = re.compile(r"(?:> ?)*(?:[-_]{2}|[-_]{32,})")
_TRAILING_SEPARATORS = re.compile(r"(?:\n[ \t]*[-_=]{5,}[ \t]*)+\Z")
# 1.36 wants "\s escribió:" (two spaces) and "schreef:" right after the date; Gmail writes
# "El mié, 29 jun 2022 a las 11:08, Rick (<rick@example.com>) escribió:" and "Op ... schreef Name <addr>:".
_EXTRA_HEADERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("es", re.compile(r"^(?:> ?)*El\s.+\sescribió:$", re.MULTILINE)),
    ("nl", re.compile(r"^(?:> ?)*Op\s.+\sschreef\s.+:$", re.MULTILINE)),
)


@dataclass(frozen=True)
class Stripped:
    text: str  # the new part of the reply, without quoted history or signature
    removed: bool  # True when something was stripped
    how: str  # evidence for the audit trail


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)] if value else []


def _keywords(languages: Sequence[str]) -> list[re.Pattern[str]]:
    """Sign-off keywords ("Best regards", "Sent from my") of the languages, as patterns anchored at a line start."""
    found: list[re.Pattern[str]] = []
    for code in languages:
        entry = MAIL_LANGUAGES.get(code, {})
        for key in ("signatures", "sent_from"):
            for pattern in _as_list(entry.get(key)):
                # a keyword ending in a letter must end a word: Danish "Tak" is not "Take a look"
                found.append(re.compile(f"(?:{pattern})(?:(?<=\\w)(?!\\w)|(?<!\\w))", re.IGNORECASE))
    return found


def _looks_like_sign_off(first_line: str, languages: Sequence[str]) -> bool:
    """The first line of what the library took for a signature is a separator or a short sign-off."""
    line = first_line.strip()
    if _SEPARATOR_LINE.fullmatch(line):
        return True
    line = _QUOTE_PREFIX.sub("", line)
    if line.startswith("/"):  # Swedish "/Anna"; "/var/log is full" is text
        return re.fullmatch(r"/\w+[.,!]?", line) is not None
    best = -1
    for keyword in _keywords(languages):
        match = keyword.match(line)
        if match and match.end() > best:
            best = match.end()
    if best < 0:
        return False
    rest = line[best:].strip(" ,;:-!")
    words = rest.split()
    return not words or (len(words) <= 3 and not rest.endswith((".", "?", "!", ":")))


def _signature_start(text: str, pattern: re.Pattern[str], languages: Sequence[str]) -> tuple[int | None, bool]:
    """Where the first signature that looks like a sign-off starts, and whether a non-sign-off match was skipped."""
    position, rejected = 0, False
    while (match := pattern.search(text, position)) is not None:
        start = match.start() + len(match.group()) - len(match.group().lstrip())
        if _looks_like_sign_off(text[start:].split("\n", 1)[0], languages):
            return start, rejected
        rejected = True
        end_of_line = text.find("\n", start)
        if end_of_line < 0:
            break
        position = end_of_line + 1
    return None, rejected


def _extra_header(text: str, languages: Sequence[str]) -> tuple[int, str] | None:
    """Gmail headers mail-parser-reply 1.36 misses (its Spanish and Dutch patterns want other spacing)."""
    for code, header in _EXTRA_HEADERS:
        if code in languages and (match := header.search(text)) is not None:
            return match.start(), code
    return None


def _header_language(header: str, languages: Sequence[str]) -> str:
    for code in languages:
        entry = MAIL_LANGUAGES.get(code, {})
        for key in ("wrote_header", "from_header"):
            for pattern in _as_list(entry.get(key)):
                if re.search(pattern, header, re.MULTILINE | re.IGNORECASE):
                    return code
    if re.search(GENERIC_MAIL_SEPARATOR, header, re.MULTILINE | re.IGNORECASE):
        return "Original Message"
    return "?"


def _restore(kept: str, lines: list[str]) -> str:
    """The original lines (indentation kept, trailing spaces dropped) that the library's stripped `kept` covers."""
    stripped = [line.strip() for line in lines]
    count = kept.count("\n") + 1
    for start in range(len(lines) - count + 1):
        if "\n".join(stripped[start : start + count]) == kept:
            return "\n".join(line.rstrip() for line in lines[start : start + count])
    return kept


def _above_first_quote(lines: list[str]) -> str:
    above: list[str] = []
    for line in lines:
        if line.lstrip().startswith(">"):
            break
        above.append(line.rstrip())
    return "\n".join(above).strip("\n")


def latest_reply(text: str, languages: Sequence[str] = DEFAULT_LANGUAGES) -> Stripped:
    """The new part of `text` (plain text): what is above the first reply header, without a signature."""
    try:
        return _latest_reply(text, languages)
    except Exception as error:  # the library is heuristic regex work on hostile input: never let it escape
        return Stripped(text, False, f"not stripped: {type(error).__name__}: {error}"[:200])


def _latest_reply(text: str, languages: Sequence[str]) -> Stripped:
    if not text.strip():
        return Stripped(text, False, "not stripped: empty text")
    codes = [code.lower().strip() for code in languages]
    codes = [code for code in dict.fromkeys(codes) if code in SUPPORTED_LANGUAGES] or ["en"]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    normalised = "\n".join(line.strip() for line in lines)
    message = EmailMessage(text=normalised, languages=list(codes), keep_hyphen_lists=True).read()
    codes = message.languages  # the library adds "en"
    first = message.replies[0]
    notes: list[str] = []
    removed = False
    if first.headers:  # the text starts with a reply header: nothing was written above the quote
        kept = ""
    else:
        kept = first.content
        if len(message.replies) > 1:
            removed = True
            language = _header_language(message.replies[1].headers, codes)
            notes.append(f"quoted history removed (mail-parser-reply, {language})")
        cut = _extra_header(kept, codes)
        if cut is not None:
            kept, removed = kept[: cut[0]].strip(), True
            notes.append(f"quoted history removed (casebot, {cut[1]})")
        if removed:
            kept = _TRAILING_SEPARATORS.sub("", kept).strip()
        signature_at, rejected = _signature_start(kept, message.SIGNATURE_REGEX, codes)
        if signature_at is not None:
            kept, removed = kept[:signature_at].strip(), True
            notes.append("signature removed")
        elif rejected:
            notes.append("signature kept (not a sign-off)")
    if not kept:
        kept = _above_first_quote(lines)
        if "\n".join(line.strip() for line in kept.split("\n")).strip() in ("", first.headers):
            return Stripped(text, False, "not stripped: nothing above the quoted history")
        return Stripped(kept, True, "quoted history removed (text above the first '>' line)")
    if not removed:
        return Stripped(text, False, "; ".join(["nothing to strip", *notes]))
    return Stripped(_restore(kept, lines), True, "; ".join(notes))
