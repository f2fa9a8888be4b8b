"""Inbound mail: raw bytes -> a normalised `InboundMail` (pure; the only importer of mailparser).

Owns the one parse of a message: the header block read once (`read_head`), the MIME tree built once (fed in chunks,
so a 30 MB mail costs no 4-byte-per-character copy) and read by mail-parser and by `dedupe.key` (the dedupe key),
plain text (HTML-only mail converted without hidden text), attachments with sanitised, deterministic names, the top
Received header's date (`arrived_at`, when no transport said better), a mail over the size limit kept unparsed
(`parse_unparsed`), and the client's own words for keyword matching (`visible_body`). Must not do I/O or raise on
bad input: what it cannot read it records as a defect; the caller keeps the raw bytes.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.charset
import email.utils
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import mailparser

import casebot.mail.dedupe as dedupe
import casebot.mail.mime as mime
from casebot.mail.address import _WS, Address, clean_text, decode_header_value, message_ids, parse_addresses
from casebot.mail.html import visible_text


@dataclass(frozen=True)
class Attachment:
    """One attachment. A big base64 one keeps only where its text sits in the raw message (`encoded`) and is
    decoded when `data` is read, so its bytes are not held beside the raw ones while the message is stored."""

    filename: str  # sanitised: no path, no control characters, never empty
    content_type: str
    _data: bytes = field(default=b"", repr=False)
    encoded: memoryview | None = field(default=None, repr=False, compare=False)  # base64 text, in the raw bytes
    _size: int = 0

    @property
    def data(self) -> bytes:
        return self._data if self.encoded is None else binascii.a2b_base64(self.encoded)

    @property
    def size(self) -> int:
        return len(self._data) if self.encoded is None else self._size

    @property
    def lazy(self) -> bool:
        return self.encoded is not None


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
    # When the server received it: the transport's word (IMAP INTERNALDATE, Maildir file time) if the ingest job
    # sets it, else the top Received header's date; None when nothing said. The ack rate limit counts by it.
    arrived_at: dt.datetime | None = None
    unparsed_size: int = 0  # > 0: the full size of a mail over mailbox.max_message_bytes, stored unparsed

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


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_HEADER_CAP = 1 << 20  # a "header block" without an end is read this far (the parser stops earlier anyway)


def _header_block(raw: bytes) -> Message:
    # Only the bytes up to the first blank line: the parser stops there anyway, and given the whole message it
    # would copy all of it into a four-byte-per-character buffer first (240 MB for a 30 MB mail).
    end = _HEADER_END.search(raw, 0, _HEADER_CAP)
    return BytesHeaderParser(policy=compat32).parsebytes(raw[: end.end() if end else _HEADER_CAP])


def _body_bytes(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[i + len(sep):]
    return b""


@dataclass(frozen=True)
class Head:
    """The header block of a message, read once: raw (name, value) pairs in order, names lower-cased, values as
    the bytes were (surrogate-escaped)."""

    items: tuple[tuple[str, str], ...]

    def first(self, name: str) -> str:
        return next((v for n, v in self.items if n == name), "")

    def every(self, name: str) -> list[str]:
        return [v for n, v in self.items if n == name]


def read_head(raw: bytes) -> Head:
    """Read the header block once; cheap (no body parse)."""
    block = _header_block(raw)
    # raw_items(): values as the bytes were; str() of compat32's Header would have turned raw UTF-8 (RFC 6532)
    # into replacement characters before decode_header_value could read it.
    items = tuple((name.lower(), str(value)) for name, value in block.raw_items())
    return Head(items)


def dedupe_key(raw: bytes) -> str:
    """Message-ID plus a hash of the decoded content (see `casebot.mail.dedupe`): one message delivered twice, or
    re-encoded in transit, gives one key; two different messages give two. Works on unparseable mail."""
    return parse(raw).dedupe_key


def _arrival(received: str) -> dt.datetime | None:
    """The date of a Received header: what follows its last ';' (RFC 5321 section 4.4)."""
    _, sep, date = received.rpartition(";")
    return _date(_WS.sub(" ", date).strip()) if sep else None


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



def _attachments(parsed: Any, defects: list[str], known: dict[int, bytes],
                 spans: Mapping[int, tuple[int, int]], raw: memoryview) -> tuple[Attachment, ...]:
    """The attachments mail-parser found; `known` learns each base64 payload's decoded bytes (by the payload
    str's id: mail-parser hands over the tree's own str), so the dedupe key does not decode it again. One that
    is a whole base64 run of the raw message (`spans`) is kept lazy (`Attachment.encoded`)."""
    out: list[Attachment] = []
    for i, att in enumerate(getattr(parsed, "attachments", []) or [], start=1):
        try:
            payload = att.get("payload", "") or ""
            span: tuple[int, int] | None = None
            if att.get("binary"):
                # binascii straight from the str: b64decode would first copy the whole payload into bytes.
                data = binascii.a2b_base64(payload)
                known[id(payload)] = data
                span = spans.get(id(payload))
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
            name = sanitize_filename(name, i, ctype)
            if span is None:
                out.append(Attachment(name, ctype, data))
            else:
                out.append(Attachment(name, ctype, b"", raw[span[0] : span[1]], len(data)))
        except Exception as exc:
            # One bad part must not lose the rest; the raw bytes are kept anyway.
            defects.append(f"attachment {i} unreadable: {type(exc).__name__}")
    return tuple(out)


def parse(raw: bytes, head: Head | None = None) -> InboundMail:
    """Parse raw bytes. Never raises for bad mail; a message with no readable headers at all still parses,
    with defects recorded (the caller decides whether that is worth quarantining)."""
    defects: list[str] = []
    head = head or read_head(raw)
    parsed: Any = None
    tree: Message | None = None
    spans: dict[int, tuple[int, int]] = {}
    try:
        tree, spans = mime.message(raw)
        parsed = mailparser.MailParser(tree)
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
        seen = visible_text(html)
        text = seen.text
        defects.extend(seen.defects)
    known: dict[int, bytes] = {}
    attachments = _attachments(parsed, defects, known, spans, memoryview(raw)) if parsed is not None else ()
    if not text and not html and not attachments:
        # Nothing readable came out (mail-parser failed, or e.g. multipart without a boundary): show the raw
        # body rather than an empty case. The raw bytes are kept either way.
        text = _body_bytes(raw).decode("utf-8", "replace")
        if text.strip():
            defects.append("no readable text part: raw body shown")
    text = text.replace("\x00", "").replace("\r\n", "\n")
    key = dedupe.key(raw, tree, head.first("message-id"), bool(head.items), known)
    return _inbound(raw, head, key, text, html, attachments, defects)


def parse_unparsed(raw: bytes, size: int, limit: int) -> InboundMail:
    """A mail over `mailbox.max_message_bytes`: only its header block is read (from `raw`, which may be just
    its first part, as fetched); the text is a note saying so, the defect records it. Never parses the body."""
    head = read_head(raw[:UNPARSED_HEAD_BYTES])
    note = (f"[casebot: this message is {size} bytes, over mailbox.max_message_bytes = {limit}; it was not "
            f"parsed and no attachment was extracted. The first {min(len(raw), UNPARSED_HEAD_BYTES)} bytes are "
            "kept here; the full message stays in its mailbox (see the message's source).]")
    defect = f"oversize: {size} bytes > mailbox.max_message_bytes {limit}: not parsed"
    key = dedupe.oversize_key(raw[:UNPARSED_HEAD_BYTES], size, head.first("message-id"))
    return _inbound(raw, head, key, note, None, (), [defect], unparsed_size=size)


UNPARSED_HEAD_BYTES = 256 * 1024  # what is fetched and kept of a mail over the size limit


def _inbound(raw: bytes, head: Head, key: str, text: str, html: str | None, attachments: tuple[Attachment, ...],
             defects: list[str], unparsed_size: int = 0) -> InboundMail:
    first, every = head.first, head.every
    headers: dict[str, str] = {}
    for name, value in head.items:
        if name not in headers:  # the first (topmost) occurrence wins, as for Subject/From
            headers[name] = decode_header_value(value)
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
        dedupe_key=key,
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
        arrived_at=_arrival(first("received")),
        unparsed_size=unparsed_size,
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

