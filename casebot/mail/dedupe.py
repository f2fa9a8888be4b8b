"""The dedupe key of an inbound message (pure): "the same message delivered twice" versus "two messages".

Owns the key `<Message-ID>|<sha256>`, the hash taken over what a reader of the message sees, never over how it
travelled: sender, date and subject (encoded words decoded, whitespace collapsed, the date as an instant), and
every leaf part of the MIME tree in order, each as its content type and its decoded content (transfer encoding
undone; text decoded from its charset with line endings and trailing blanks normalised; other parts as their
decoded bytes), plus the headers of embedded messages. MIME boundaries, preambles, transfer encodings, line
endings and transport headers (Received, Return-Path, Delivered-To) do not count, so a message re-encoded in
transit is a duplicate. A message without usable structure (no header block, no blank line after it, or a tree
the parser could not build) is keyed by its raw bytes (line endings normalised), so two different such inputs
never share a key. Must not parse the message a second time (it reads the tree `inbound.parse` built) or raise.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.utils
import hashlib
import quopri
import re
from collections.abc import Mapping
from email import errors
from email.message import Message
from typing import Any

from casebot.mail.address import decode_header_value, message_ids

_WS = re.compile(r"\s+")
_MAX_PARTS = 10_000  # a hostile tree with more leaves than this is keyed by its raw bytes
_IDENTITY = ("from", "date", "subject")
_TRANSPORT = frozenset({"received", "return-path", "delivered-to", "x-original-to", "envelope-to"})


def _prefix(message_id_header: str) -> str:
    mids = message_ids(message_id_header)
    return mids[0][:200] if mids else "-"


def _norm_text(text: str) -> bytes:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip().encode("utf-8", "surrogateescape")


def _header_value(name: str, value: str) -> bytes:
    text = _WS.sub(" ", decode_header_value(value)).strip()
    if name == "date":
        try:
            parsed = email.utils.parsedate_to_datetime(text)
            if parsed is not None:
                text = parsed.astimezone(dt.UTC).isoformat() if parsed.tzinfo else parsed.isoformat() + " local"
        except (TypeError, ValueError, IndexError):
            pass
    return text.encode("utf-8", "surrogateescape")


def payload_of(part: Message) -> Any:
    """The payload as stored: `get_payload()` would first encode a whole str payload once more to look for
    surrogates (a 30 MB copy for a 30 MB attachment, on every call)."""
    return part.__dict__.get("_payload")


def _decoded(part: Message, known: Mapping[int, bytes]) -> bytes:
    """The part's content with its transfer encoding undone, without the copies `get_payload(decode=True)` makes
    of a large base64 body; `known` holds what the parse already decoded (by the payload's id)."""
    payload = payload_of(part)
    if not isinstance(payload, str):
        return b""
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    try:
        if cte == "base64":
            if id(payload) in known:
                return known[id(payload)]
            if payload.isascii():  # straight from the str: no 30 MB bytes copy of a big attachment first
                return binascii.a2b_base64(payload)
            return binascii.a2b_base64(payload.encode("ascii", "surrogateescape"))
        if cte == "quoted-printable":
            return quopri.decodestring(payload.encode("ascii", "surrogateescape"))
    except (binascii.Error, ValueError):
        pass  # undecodable as declared: the bytes as they are still identify the part
    return payload.encode("ascii", "surrogateescape")


def _leaf(h: Any, part: Message, known: Mapping[int, bytes]) -> None:
    ctype = part.get_content_type()
    h.update(ctype.encode("ascii", "replace") + b"\x00")
    data = _decoded(part, known)
    if part.get_content_maintype() == "text":
        charset = part.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset, "replace")
        except (LookupError, UnicodeError):
            text = data.decode("utf-8", "replace")
        h.update(_norm_text(text))
    else:
        h.update(data)
    h.update(b"\x01")


def _embedded_headers(h: Any, message: Message) -> None:
    for name, value in message.items():
        lname = name.lower()
        if lname not in _TRANSPORT:
            h.update(lname.encode("ascii", "replace") + b":" + _header_value(lname, str(value)) + b"\x00")
    h.update(b"\x02")


def _tree_digest(root: Message, known: Mapping[int, bytes]) -> str | None:
    """sha256 over the identity headers and every leaf; None when the tree is too big to be a real message."""
    h = hashlib.sha256(b"casebot-dedupe-2\x00")
    for name in _IDENTITY:
        h.update(_header_value(name, str(root.get(name, "") or "")) + b"\x00")
    stack: list[tuple[Message | None, bool]] = [(root, False)]  # None closes a container
    seen = 0
    while stack:  # iterative: a 5,000-level nesting must not exhaust the interpreter's stack
        part, embedded = stack.pop()
        if part is None:
            h.update(b"]")
            continue
        seen += 1
        if seen > _MAX_PARTS:
            return None
        if embedded:
            _embedded_headers(h, part)
        payload = payload_of(part)
        if isinstance(payload, list):
            h.update(b"[")
            is_message = part.get_content_maintype() == "message"
            stack.append((None, False))
            stack.extend((child, is_message) for child in reversed(payload) if isinstance(child, Message))
        else:
            _leaf(h, part, known)
    return h.hexdigest()


def raw_key(raw: bytes, message_id_header: str = "") -> str:
    """The key of a message without usable structure: its raw bytes, line endings normalised."""
    h = hashlib.sha256(b"casebot-dedupe-raw\x00")
    h.update(raw.replace(b"\r\n", b"\n").rstrip())
    return f"{_prefix(message_id_header)}|{h.hexdigest()}"


def structured(raw: bytes, root: Message, has_headers: bool) -> bool:
    """Whether the tree identifies the message: a header block ended by a blank line, and a Message-ID or a
    From to say whose message it is. Anything else is keyed by its raw bytes."""
    if not has_headers or not (root.get("message-id") or root.get("from")):
        return False
    if any(isinstance(d, errors.MissingHeaderBodySeparatorDefect) for d in root.defects):
        return False
    return any(raw.find(sep) >= 0 for sep in (b"\r\n\r\n", b"\n\n", b"\n\r\n"))


def key(raw: bytes, root: Message | None, message_id_header: str, has_headers: bool,
        known: Mapping[int, bytes] | None = None) -> str:
    """The dedupe key from the one parse's tree (`root`; None when the parser failed) and the header block's
    Message-ID. `known`: base64 payloads the parse already decoded, by the id of the payload str (so a big
    attachment is decoded once)."""
    mid = message_id_header
    if root is None or not structured(raw, root, has_headers):
        return raw_key(raw, mid)
    try:
        digest = _tree_digest(root, known or {})
    except Exception:
        # A tree this module cannot walk (a hostile part): the raw bytes still tell two messages apart.
        digest = None
    if digest is None:
        return raw_key(raw, mid)
    return f"{_prefix(mid)}|{digest}"


def oversize_key(head_bytes: bytes, size: int, message_id_header: str) -> str:
    """A message too big to parse: its size and its first bytes (what was fetched) identify it."""
    h = hashlib.sha256(b"casebot-dedupe-oversize\x00%d\x00" % size)
    h.update(head_bytes.replace(b"\r\n", b"\n"))
    return f"{_prefix(message_id_header)}|{h.hexdigest()}"
