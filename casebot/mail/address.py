"""Addresses, header text and Message-IDs, read robustly from real-world mail (pure).

Owns header decoding with CR/LF and control characters removed (no header injection), address extraction (the
angle-bracket address wins over a display name that looks like an address; RFC 5322 comments ignored; `<>` is the
null sender) and Message-ID lists, with the length caps that keep both database engines in agreement. Must not do
I/O or raise on bad input: what cannot be read gives an empty value.
"""

from __future__ import annotations

import contextlib
import email.charset
import email.utils
import re
from dataclasses import dataclass
from email.header import decode_header, make_header

_WS = re.compile(r"\s+")
_SURROGATES = re.compile("[\udc80-\udcff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ADDR = re.compile(r"[^\s<>()\[\]:;,\"@]+@[^\s<>()\[\]:;,\"@]+\.[^\s<>()\[\]:;,\"@]+|[^\s<>@,\"]+@[A-Za-z0-9-]+")
_MSGID = re.compile(r"<([^<>\s]+)>")
# Longer than any real one (RFC 5321 allows 254 for an address, RFC 5322 998 for a line): anything longer is
# cut, the same way everywhere, so storage limits agree on SQLite and PostgreSQL and threading still matches.
MAX_ADDRESS = 320
MAX_MESSAGE_ID = 900


@dataclass(frozen=True)
class Address:
    name: str
    addr: str  # lower-cased bare address; "" for the null sender

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2] if "@" in self.addr else ""

    def formatted(self) -> str:
        return email.utils.formataddr((self.name, self.addr)) if self.name else self.addr



def clean_text(value: str) -> str:
    """One line of text that is safe in a header: every run of white space (CR/LF included) becomes one space."""
    return _WS.sub(" ", _CONTROL.sub("", value)).strip()


def decode_header_value(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    if _SURROGATES.search(text):
        # Raw 8-bit header bytes (RFC 6532 UTF-8, or a legacy charset) arrive surrogate-escaped from the
        # compat32 parser: read them as UTF-8, replacing what is not.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    # Any broken encoded-word: keep the raw text, still cleaned.
    with contextlib.suppress(Exception):
        text = str(make_header(decode_header(text)))
    return clean_text(text)


def _strip_comments(value: str) -> str:
    """Drop RFC 5322 comments `( ... )` outside quotes: `mallory@evil (Alice <alice@corp>)` is mallory's."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for ch in value:
        if escaped:
            escaped = False
            if not depth:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if not depth:
                out.append(ch)
            continue
        if ch == '"' and not depth:
            quoted = not quoted
        elif ch == "(" and not quoted:
            depth += 1
            continue
        elif ch == ")" and not quoted and depth:
            depth -= 1
            continue
        if not depth:
            out.append(ch)
    return "".join(out)


def _split_addresses(value: str) -> list[str]:
    """Split an address list on commas outside quotes and angle brackets."""
    parts: list[str] = []
    buf: list[str] = []
    quoted, angle = False, 0
    for ch in value:
        if ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle += 1
        elif ch == ">" and not quoted and angle:
            angle -= 1
        if ch in ",;" and not quoted and not angle:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


def parse_addresses(value: str) -> list[Address]:
    """Addresses from a header value, robust to real-world mess.

    `billing@bank.example <real@client.example>` gives real@client.example (the stdlib picks the first);
    `<>` gives the null address; two addresses without a comma give both.
    """
    out: list[Address] = []
    for part in _split_addresses(_strip_comments(decode_header_value(value))):
        angles = re.findall(r"<([^<>]*)>", part)
        if angles:
            addr = angles[-1].strip()
            name = part[: part.find("<")].strip().strip('"').strip()
            out.append(Address(clean_text(name), addr.lower()[:MAX_ADDRESS] if "@" in addr else ""))
            continue
        bare = _ADDR.findall(part)
        if bare:
            out.extend(Address("", a.strip(".").lower()[:MAX_ADDRESS]) for a in bare)
            continue
        name, addr = email.utils.parseaddr(part)
        if "@" in addr:
            out.append(Address(clean_text(name), addr.lower()[:MAX_ADDRESS]))
    return out


def message_ids(value: str) -> tuple[str, ...]:
    """`<a@x> <b@y>` -> ("a@x", "b@y"); a bare id without brackets is accepted too."""
    value = _CONTROL.sub("", value or "")
    found = _MSGID.findall(value)
    if not found and value and "@" in value:
        found = [value.strip().strip("<>")]
    return tuple(dict.fromkeys(f.strip()[:MAX_MESSAGE_ID] for f in found if f.strip()))


def first_address(value: str) -> Address:
    """The first address of a header-style value (`Example Support <support@example.com>`), or the null one."""
    parsed = parse_addresses(value)
    return parsed[0] if parsed else Address("", "")


def address_domain(address: str) -> str:
    return first_address(address).domain

