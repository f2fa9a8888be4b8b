"""Addresses, header text and Message-IDs, read robustly from real-world mail (pure).

Owns header decoding with CR/LF and control characters removed (no header injection), address extraction (the
angle-bracket address wins over a display name that looks like an address; RFC 5322 comments ignored; `<>` is the
null sender) and Message-ID lists, with the length caps that keep both database engines in agreement. Also
whether an address can be written at all (`Address.problem`: two `@`, no domain, control characters, raw 8-bit
bytes that are not UTF-8, a quoted or over-long local part, a domain IDNA 2008 refuses) and its written form
(`envelope_address`: the domain as an A-label, `xn--`; a non-ASCII local part kept, which needs SMTPUTF8); the only
importer of idna. Must not do I/O or raise on bad input: what cannot be read gives an empty value (or a problem).
"""

from __future__ import annotations

import contextlib
import email.charset
import email.utils
import re
import unicodedata
from dataclasses import dataclass
from email.header import decode_header, make_header

import idna

_WS = re.compile(r"\s+")
_SURROGATES = re.compile("[\udc80-\udcff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ADDR = re.compile(r"[^\s<>()\[\]:;,\"@]+@[^\s<>()\[\]:;,\"@]+\.[^\s<>()\[\]:;,\"@]+|[^\s<>@,\"]+@[A-Za-z0-9-]+")
_MSGID = re.compile(r"<([^<>\s]+)>")
# Longer than any real one (RFC 5321 allows 254 for an address, RFC 5322 998 for a line): anything longer is
# cut, the same way everywhere, so storage limits agree on SQLite and PostgreSQL and threading still matches.
MAX_ADDRESS = 320
MAX_MESSAGE_ID = 900


_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_ASCII_LABEL = re.compile(r"[A-Za-z0-9_-]+")
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")


@dataclass(frozen=True)
class Address:
    name: str
    addr: str  # lower-cased bare address; "" for the null sender
    problem: str = ""  # why no mail can be written to it ("" when it can): see `address_problem`

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2] if "@" in self.addr else ""

    def formatted(self) -> str:
        """For reading (templates, listings), not for a header: `outbound` writes headers."""
        if not self.name:
            return self.addr
        if not self.addr.isascii():
            return f"{self.name} <{self.addr}>"
        return email.utils.formataddr((self.name, self.addr))


def _bad_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "CZ" or ch == "\ufffd"


def address_problem(addr: str) -> str:
    """Why `addr` cannot be written as a header or an SMTP envelope address ("" when it can). Conservative:
    a quoted local part or a domain literal (`[192.0.2.1]`), valid as they are, get no mail either."""
    if not addr:
        return "empty address"
    if "\ufffd" in addr:
        return "raw 8-bit bytes that are not UTF-8"
    bad = next((ch for ch in addr if (_bad_char(ch) and not ch.isascii()) or ord(ch) < 0x21 or ord(ch) == 0x7F), None)
    if bad is not None:
        return f"control or space character U+{ord(bad):04X}"
    if addr.count("@") != 1:
        return "no @" if "@" not in addr else "more than one @"
    local, _, domain = addr.partition("@")
    if not local:
        return "no local part"
    if not domain:
        return "no domain"
    if local.startswith('"'):
        return "quoted local part"
    if len(local.encode("utf-8")) > 64 or len(addr.encode("utf-8")) > 254:
        return "too long (RFC 5321: 64 octets before the @, 254 in all)"
    atoms = local.split(".")
    if any(not a or not all(_ATEXT.fullmatch(c) or not c.isascii() for c in a) for a in atoms):
        return f"local part {local!r} is not a dot-atom"
    if domain.startswith("["):
        return "domain literal"
    try:
        ascii_domain(domain)
    except ValueError as exc:
        return f"domain {domain!r}: {exc}"
    return ""


def ascii_domain(domain: str) -> str:
    """`bücher.example` -> `xn--bcher-kva.example` (IDNA 2008 with UTS 46 mapping); ASCII labels are checked
    for characters a host name cannot hold. ValueError when it cannot be written."""
    domain = domain.rstrip(".")
    if domain.isascii():
        labels = domain.split(".")
        if len(domain) > 253 or any(not lab or len(lab) > 63 or not _ASCII_LABEL.fullmatch(lab) for lab in labels):
            raise ValueError("not a host name")
        return domain.lower()
    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"not a valid internationalised domain ({exc})") from exc


def envelope_address(addr: str) -> str:
    """The form an address is written in (To header and SMTP envelope): the domain as an A-label. A non-ASCII
    local part stays UTF-8 and needs SMTPUTF8 (`needs_smtputf8`). ValueError naming the problem otherwise."""
    problem = address_problem(addr)
    if problem:
        raise ValueError(f"address not deliverable: {problem}")
    local, _, domain = addr.partition("@")
    return f"{local}@{ascii_domain(domain)}"


def needs_smtputf8(addr: str) -> bool:
    return not addr.isascii()



def clean_text(value: str) -> str:
    """One line of text that is safe in a header: every run of white space (CR/LF included) becomes one space."""
    return _WS.sub(" ", _CONTROL.sub("", value)).strip()


def decode_header_value(value: object) -> str:
    return clean_text(_decoded(value))


def _decoded(value: object) -> str:
    """Encoded words and raw UTF-8 decoded; control characters still there (for `address_problem`)."""
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
    return text


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
    `<>` gives the null address; two addresses without a comma give both. An address that cannot be written
    back (`a@b@c`, control characters, raw bytes that are not UTF-8) keeps its `problem`.
    """
    out: list[Address] = []
    text = _UNFOLD.sub("", _decoded(value)).replace("\t", " ")
    for part in _split_addresses(_strip_comments(text)):
        angles = re.findall(r"<([^<>]*)>", part)
        if angles:
            raw = angles[-1].strip()
            name = part[: part.find("<")].strip().strip('"').strip()
            out.append(_address(clean_text(name), raw) if "@" in raw else Address(clean_text(name), ""))
            continue
        bare = _ADDR.findall(part)
        if bare:
            tokens = part.split()
            for a in bare:
                token = next((t for t in tokens if a in t), a).strip(".,;")
                out.append(_address("", token if token.count("@") > 1 else a.strip(".")))
            continue
        name, addr = email.utils.parseaddr(part)
        if "@" in addr:
            out.append(_address(clean_text(name), addr))
    return out


def _address(name: str, raw: str) -> Address:
    """The stored address (cleaned, lower-cased, capped) and, from the raw text, why it cannot be written."""
    addr = clean_text(raw).lower()
    return Address(name, addr[:MAX_ADDRESS], address_problem(raw.lower()))


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

