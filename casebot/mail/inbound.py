"""Inbound mail: raw bytes -> a normalised `InboundMail` (pure; the only importer of mailparser).

Owns the one parse of a message: the header block read once (`read_head`, which also gives the dedupe key), the
body read once by mail-parser, plain text (HTML-only mail converted without hidden text), attachments with
sanitised, deterministic names, and the client's own words for keyword matching (`visible_body`). Must not do
I/O or raise on bad input: what it cannot read it records as a defect; the caller keeps the raw bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.charset
import email.utils
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import mailparser

from casebot.mail.address import _WS, Address, clean_text, decode_header_value, message_ids, parse_addresses
from casebot.mail.html import html_to_text


@dataclass(frozen=True)
class Attachment:
    filename: str  # sanitised: no path, no control characters, never empty
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class InboundMail:
    raw: bytes
    dedupe_key: str
    message_id: str | None
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: Address | None
    subject: str
    date: dt.datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: dict[str, str]  # lower-cased name -> single-line value, for the loop guard and the audit
    content_type: str
    defects: tuple[str, ...] = field(default=())
    header_items: tuple[tuple[str, str], ...] = ()  # every header in order, top first, raw (for trust checks)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this message answers, nearest first (In-Reply-To, then References newest first)."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid not in seen:
                seen.append(mid)
        return tuple(seen)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")



_GENERATED_NAME = re.compile(r"[A-Za-z]{10}\.(?:txt|rtf)")
_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt", "image/png": ".png", "image/jpeg": ".jpg"}


# Bidirectional controls and other invisible format characters (Unicode category Cf): U+202E turns
# "invoice_fdp.exe" into what a reader sees as "invoice_exe.pdf". A file name never needs one.
_FORMAT_CHARS = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def sanitize_filename(name: str, index: int, content_type: str = "") -> str:
    name = decode_header_value(name)
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in _FORMAT_CHARS.sub("", name) if unicodedata.category(ch) != "Cf")
    name = re.split(r"[\\/]", name)[-1]
    name = re.sub(r"[\x00-\x1f\x7f<>:\"|?*]", "_", name).strip().lstrip(".").strip()
    if len(name) > 180:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 170] + dot + ext[:9]) if dot else name[:180]
    if not name:
        name = f"attachment-{index}{_EXTENSIONS.get(content_type, '.bin')}"
    return name


def _header_block(raw: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def _body_bytes(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[i + len(sep):]
    return b""


@dataclass(frozen=True)
class Head:
    """The header block of a message, read once: raw (name, value) pairs in order, names lower-cased, values as
    the bytes were (surrogate-escaped), plus the message's dedupe key."""

    items: tuple[tuple[str, str], ...]
    dedupe_key: str

    def first(self, name: str) -> str:
        return next((v for n, v in self.items if n == name), "")

    def every(self, name: str) -> list[str]:
        return [v for n, v in self.items if n == name]


def read_head(raw: bytes) -> Head:
    """Read the header block once; cheap (no body parse), so a duplicate can be recognised before `parse`."""
    block = _header_block(raw)
    # raw_items(): values as the bytes were; str() of compat32's Header would have turned raw UTF-8 (RFC 6532)
    # into replacement characters before decode_header_value could read it.
    items = tuple((name.lower(), str(value)) for name, value in block.raw_items())
    return Head(items, _dedupe_key(block, raw))


def dedupe_key(raw: bytes) -> str:
    """Message-ID plus a hash of sender, date, subject and body: one message delivered twice gives one key,
    while two different messages that share a Message-ID (broken mailers) give two. Works on unparseable mail."""
    return read_head(raw).dedupe_key


def _dedupe_key(headers: Message, raw: bytes) -> str:
    h = hashlib.sha256()
    for name in ("message-id", "from", "date", "subject"):
        h.update(_WS.sub(" ", str(headers.get(name, "") or "")).strip().encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
    h.update(_body_bytes(raw).replace(b"\r\n", b"\n").rstrip())
    mid = message_ids(str(headers.get("message-id", "") or ""))
    prefix = mid[0][:200] if mid else "-"
    return f"{prefix}|{h.hexdigest()}"


def _date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)



def _attachments(parsed: Any, defects: list[str]) -> tuple[Attachment, ...]:
    out: list[Attachment] = []
    for i, att in enumerate(getattr(parsed, "attachments", []) or [], start=1):
        try:
            payload = att.get("payload", "") or ""
            if att.get("binary"):
                data = base64.b64decode(payload)
            else:
                charset = att.get("charset") or "utf-8"
                try:
                    data = str(payload).encode(charset, "replace")
                except LookupError:
                    data = str(payload).encode("utf-8", "replace")
            ctype = clean_text(str(att.get("mail_content_type") or "application/octet-stream")).lower()[:255]
            name = str(att.get("filename") or "")
            if _GENERATED_NAME.fullmatch(name) and name not in str(att.get("content-disposition") or ""):
                # mail-parser invents a random `xxxxxxxxxx.txt` for a nameless part: the same bytes would get a
                # different name on every parse. Use casebot's own deterministic fallback instead.
                name = ""
            out.append(Attachment(sanitize_filename(name, i, ctype), ctype, data))
        except Exception as exc:
            # One bad part must not lose the rest; the raw bytes are kept anyway.
            defects.append(f"attachment {i} unreadable: {type(exc).__name__}")
    return tuple(out)


def parse(raw: bytes, head: Head | None = None) -> InboundMail:
    """Parse raw bytes. Never raises for bad mail; a message with no readable headers at all still parses,
    with defects recorded (the caller decides whether that is worth quarantining)."""
    defects: list[str] = []
    head = head or read_head(raw)
    raw_headers = head.items
    first, every = head.first, head.every

    headers: dict[str, str] = {}
    for key, value in raw_headers:
        if key not in headers:  # the first (topmost) occurrence wins, as for Subject/From
            headers[key] = decode_header_value(value)
    parsed: Any = None
    try:
        parsed = mailparser.parse_from_bytes(raw)
    except Exception as exc:
        # mail-parser on hostile input: the headers and the raw bytes still count.
        defects.append(f"body not parsed: {type(exc).__name__}: {exc}"[:300])

    text_parts: list[str] = []
    html_parts: list[str] = []
    if parsed is not None:
        try:
            text_parts = [str(t) for t in parsed.text_plain]
            html_parts = [str(t) for t in parsed.text_html]
        except Exception as exc:
            # Text extraction is best effort; defects are recorded.
            defects.append(f"text not extracted: {type(exc).__name__}")
        try:
            for part_defects in parsed.defects or []:
                defects.extend(str(v)[:300] for values in part_defects.values() for v in values)
        except Exception:
            # Defect reporting must never fail the parse.
            pass
    html = "\n".join(html_parts) if html_parts else None
    text = "\n\n".join(t.strip() for t in text_parts if t.strip())
    if not text and html:
        text = html_to_text(html)
    attachments = _attachments(parsed, defects) if parsed is not None else ()
    if not text and not html and not attachments:
        # Nothing readable came out (mail-parser failed, or e.g. multipart without a boundary): show the raw
        # body rather than an empty case. The raw bytes are kept either way.
        text = _body_bytes(raw).decode("utf-8", "replace")
        if text.strip():
            defects.append("no readable text part: raw body shown")
    text = text.replace("\x00", "").replace("\r\n", "\n")

    senders = parse_addresses(first("from"))
    return_path = first("return-path").strip()
    if senders:
        sender = senders[0]
    else:
        sender = Address("", "")
        if return_path and return_path != "<>":
            rp = parse_addresses(return_path)
            sender = rp[0] if rp else sender
    reply_to = parse_addresses(first("reply-to"))
    mids = message_ids(first("message-id"))
    return InboundMail(
        raw=raw,
        dedupe_key=head.dedupe_key,
        message_id=mids[0] if mids else None,
        sender=sender,
        to=tuple(a for v in every("to") for a in parse_addresses(v)),
        cc=tuple(a for v in every("cc") for a in parse_addresses(v)),
        reply_to=reply_to[0] if reply_to else None,
        subject=headers.get("subject", ""),
        date=_date(first("date")),
        in_reply_to=message_ids(first("in-reply-to")),
        references=message_ids(first("references")),
        text=text,
        html=html,
        attachments=attachments,
        headers=headers,
        content_type=headers.get("content-type", "text/plain").split(";")[0].strip().lower(),
        defects=tuple(defects),
        header_items=head.items,
    )


def visible_body(mail: InboundMail, limit: int) -> str:
    """The client's own words for keyword matching: quoted lines (`> ...`) and the quoted tail dropped, capped."""
    lines: list[str] = []
    for line in mail.text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if re.match(r"^(On .+ wrote:|-----\s*Original Message\s*-----|From: .+)$", stripped):
            break
        lines.append(line)
    return "\n".join(lines)[:limit]

