"""Commands staff write at the top of a reply from their own mail client (pure).

Owns `parse()`, which reads `#status`, `#priority`, `#assign` and `#note` lines at the top of a reply into
`Command`s and `CommandError`s and returns the body without them (command lines are never relayed), and
`help_text()`, the "how to write commands" block for a reply to staff. Rules:
  * leading blank lines are skipped; the block is the lines at the top that start with `#` and a word; blank
    lines inside the block are skipped; the first other line (text, a `-- ` signature separator, a `>` quote,
    an "On ... wrote:" header) ends it, and everything from there on is body, `#hashtags` included;
  * names and values are case-insensitive (`#Status Waiting`); `#status: waiting` is accepted; `# status
    waiting` (a space after `#`) counts only when the word is a command name, so a `# Heading` stays body;
    `#1 priority` (a digit after `#`) is body and ends the block;
  * an unknown `#word` in the block is an error, not body; so is a missing or unknown value or extra text;
  * the same command twice: an identical repeat is dropped; a conflicting one (`#status waiting` then
    `#status resolved`) is an error and the first stays;
  * `#assign` needs an address (one `@`, a dot in the domain, no spaces), lower-cased, `<...>` and `mailto:`
    removed;
  * `\\r\\n`, trailing spaces, non-breaking and zero-width spaces are tolerated.
Must not do I/O, read the clock or touch storage; it never raises on any text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casebot.case import PRIORITIES, STATUSES, Status

# The statuses staff may set (`new` is the store's, not a person's, to set).
SETTABLE_STATUSES: tuple[str, ...] = ("waiting", "resolved", "closed", "open")
assert set(SETTABLE_STATUSES) == {s.value for s in STATUSES if s is not Status.NEW}
PRIORITY_VALUES: tuple[str, ...] = tuple(p.value for p in PRIORITIES)

USAGE: dict[str, str] = {
    "status": "#status " + "|".join(SETTABLE_STATUSES),
    "priority": "#priority " + "|".join(PRIORITY_VALUES),
    "assign": "#assign ADDRESS",
    "note": "#note",
}
NAMES: tuple[str, ...] = tuple(USAGE)

_COMMAND = re.compile(r"#(?P<space>\s*)(?P<name>[^\W\d_][\w-]*)(?P<rest>.*)", re.DOTALL)
_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:.][^@\s<>\"(),;:]*")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None) | {0xA0: " ", 0x202F: " "}


@dataclass(frozen=True)
class Command:
    name: str  # "status" | "priority" | "assign" | "note"
    value: str  # normalised ("waiting", "high", "bob@example.com", "")
    line: str  # the line as written


@dataclass(frozen=True)
class CommandError:
    line: str
    problem: str  # e.g. "unknown status 'wating'"
    usage: str  # how to write it, e.g. "#status waiting|resolved|closed|open"


@dataclass(frozen=True)
class Parsed:
    commands: tuple[Command, ...]
    errors: tuple[CommandError, ...]
    body: str  # the text with the command lines removed (never relayed)


def _value(name: str, rest: str) -> tuple[str, str]:
    """(normalised value, problem) for a command's text after its name; problem "" when it is fine."""
    words = rest.split()
    if name == "note":
        return "", (f"#note takes no value, got {rest.strip()!r}" if words else "")
    if not words:
        return "", f"missing {'address' if name == 'assign' else name}"
    if len(words) > 1:
        return "", f"unexpected text after #{name} {words[0]}: {' '.join(words[1:])!r}"
    word = words[0]
    if name == "assign":
        address = word.strip("<>").removeprefix("mailto:").lower()
        if not _ADDRESS.fullmatch(address):
            return "", f"not an address: {word!r}"
        return address, ""
    allowed = SETTABLE_STATUSES if name == "status" else PRIORITY_VALUES
    if word.lower() not in allowed:
        return "", f"unknown {name} {word!r}"
    return word.lower(), ""


def parse(text: str) -> Parsed:
    """The commands at the top of `text`, the errors in them, and the body without the command lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    commands: list[Command] = []
    errors: list[CommandError] = []
    seen: dict[str, Command] = {}
    index = 0
    for index, raw in enumerate(lines):  # noqa: B007 - index is where the body starts
        line = raw.translate(_INVISIBLE).strip()
        if not line:
            continue
        match = _COMMAND.fullmatch(line)
        if not match or (match["space"] and match["name"].lower() not in NAMES):
            break
        name, written = match["name"].lower(), raw.rstrip()
        if name not in NAMES:
            errors.append(CommandError(written, f"unknown command #{match['name']}", " or ".join(USAGE.values())))
            continue
        value, problem = _value(name, match["rest"].removeprefix(":").replace("=", " ", 1))
        if problem:
            errors.append(CommandError(written, problem, USAGE[name]))
        elif name in seen and seen[name].value != value:
            errors.append(CommandError(written, f"#{name} given twice; kept {seen[name].line.strip()!r}", USAGE[name]))
        elif name not in seen:
            seen[name] = Command(name, value, written)
            commands.append(seen[name])
    else:
        index = len(lines)
    body = "\n".join(lines[index:]).strip("\n")
    return Parsed(tuple(commands), tuple(errors), body)


def help_text() -> str:
    """The short "how to write commands" block for a reply to staff."""
    return "\n".join([
        "Commands go on their own lines at the very top of your reply, before any other text:",
        f"  {USAGE['status']:<44} set the status",
        f"  {USAGE['priority']:<44} set the priority",
        f"  {USAGE['assign']:<44} assign the case, e.g. #assign bob@example.com",
        f"  {USAGE['note']:<44} the whole mail is an internal note (not sent to the client)",
        "Case does not matter. Command lines are never sent to the client; the first other line starts your text.",
    ])
