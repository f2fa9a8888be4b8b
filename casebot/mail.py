"""Mail model: parse raw bytes into a normalised `InboundMail`, and compose outgoing messages.

Owns everything about the shape of an email: header decoding with CR/LF removed (no header injection), robust
address extraction (the angle-bracket address wins over a display name that looks like an address), plain text
(HTML-only mail converted with inscriptis, which drops `display:none` text), attachments with sanitised names,
the dedupe key of a message, and `compose()` of the messages casebot sends. The only importer of mailparser.
Pure: no I/O, no clock, no storage. It never raises on bad input: what it cannot read it reports as a defect,
and the raw bytes are kept by the caller so nothing is ever unrecoverable.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.charset
import email.utils
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email.header import Header, decode_header, make_header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import mailparser
from inscriptis import get_text
from lxml import html as lxml_html

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


_GENERATED_NAME = re.compile(r"[A-Za-z]{10}\.(?:txt|rtf)")
_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt", "image/png": ".png", "image/jpeg": ".jpg"}


def sanitize_filename(name: str, index: int, content_type: str = "") -> str:
    name = decode_header_value(name)
    name = unicodedata.normalize("NFC", name)
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


def dedupe_key(raw: bytes) -> str:
    """Message-ID plus a hash of sender, date, subject and body: one message delivered twice gives one key,
    while two different messages that share a Message-ID (broken mailers) give two. Works on unparseable mail.
    """
    headers = _header_block(raw)
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


_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:;|!|$)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:;|!|$)|max-height\s*:\s*0(?:px)?\s*(?:;|!|$)",
    re.IGNORECASE,
)
_HIDDEN_XPATH = (
    "//*[@hidden] | //template | //noscript | //script | //style | //head/title"
    " | //*[@aria-hidden='true'] | //*[@style]"
)


def _drop_hidden(html: str) -> str:
    """Remove what a reader never sees (hidden attribute, `display:none` even with !important, zero font size or
    opacity, template/noscript), so hidden keywords cannot raise a message's priority. Class-based CSS hiding
    is not evaluated: rules read the visible text only as far as inline markup tells."""
    doc = lxml_html.document_fromstring(html)
    for el in doc.xpath(_HIDDEN_XPATH):
        style = el.get("style")
        if style is None or _HIDDEN_STYLE.search(style):
            el.drop_tree()
    return str(lxml_html.tostring(doc, encoding="unicode"))


def html_to_text(html: str) -> str:
    try:
        return str(get_text(_drop_hidden(html))).strip()
    except Exception:
        # inscriptis on hostile markup: fall back to stripping tags.
        return clean_text(re.sub(r"<[^>]+>", " ", html))


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


def parse(raw: bytes, known_key: str | None = None) -> InboundMail:
    """Parse raw bytes. Never raises for bad mail; a message with no readable headers at all still parses,
    with defects recorded (the caller decides whether that is worth quarantining)."""
    defects: list[str] = []
    # raw_items(): values as the bytes were, surrogate-escaped; str() of compat32's Header would have turned
    # raw UTF-8 (RFC 6532) into replacement characters before decode_header_value could read it.
    raw_headers = [(name.lower(), str(value)) for name, value in _header_block(raw).raw_items()]

    def first(name: str) -> str:
        return next((v for n, v in raw_headers if n == name), "")

    def every(name: str) -> list[str]:
        return [v for n, v in raw_headers if n == name]

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
        dedupe_key=known_key or dedupe_key(raw),
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


def make_message_id(domain: str, key: str) -> str:
    """A Message-ID derived from an idempotency key: the same outbox row always carries the same id, so a resend
    after a crash is recognisable (and deduplicated by the recipient's client) as the same mail."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return f"casebot.{digest}@{domain or 'casebot.invalid'}"


@dataclass(frozen=True)
class Outgoing:
    from_address: str
    to: tuple[str, ...]
    subject: str
    text: str
    message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    date: dt.datetime | None = None


_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP  # readable in any client's "view source", unlike base64


def _header(name: str, value: str) -> str:
    value = clean_text(value)
    return value if value.isascii() else Header(value, "utf-8", header_name=name).encode()


def _formataddr(value: str) -> str:
    parsed = parse_addresses(value)
    if not parsed:
        return clean_text(value)
    name, addr = parsed[0].name, parsed[0].addr
    if not addr.isascii():
        # An internationalised address (RFC 6531) goes out as UTF-8; the sender adapter uses SMTPUTF8 for it.
        return f"{_header('To', name)} <{addr}>" if name else addr
    return email.utils.formataddr((name, addr), "utf-8")


def _text_part(body: str, subtype: str) -> Message:
    if body.isascii():
        return MIMEText(body, subtype, "us-ascii")
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, _UTF8_QP)  # sets charset="utf-8" and quoted-printable
    return part


def compose(out: Outgoing) -> bytes:
    """Build the bytes of an outgoing message. Every header value is cleaned, so text taken from a client's mail
    can never inject a header. RFC 3834: `Auto-Submitted: auto-replied` on everything casebot sends.

    Built with the compat32 MIME classes rather than `EmailMessage`: four times faster, and composing is on the
    ingest path of every new case.
    """
    text = _text_part(out.text, "plain")
    msg: Message = text
    if out.html:
        msg = MIMEMultipart("alternative")
        msg.attach(text)
        msg.attach(_text_part(out.html, "html"))
    msg["From"] = _formataddr(out.from_address)
    msg["To"] = ", ".join(_formataddr(t) for t in out.to)
    msg["Subject"] = _header("Subject", out.subject)
    msg["Date"] = email.utils.format_datetime(out.date or dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    msg["Message-ID"] = f"<{clean_text(out.message_id)}>"
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{clean_text(out.in_reply_to)}>"
    refs = [r for r in out.references if r]
    if refs:
        # Keep the first and the newest ids (RFC 5322 §3.6.4 allows trimming the middle of a long chain).
        trimmed = refs if len(refs) <= 20 else [refs[0], *refs[-19:]]
        msg["References"] = " ".join(f"<{clean_text(r)}>" for r in trimmed)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    for name, value in out.headers:
        msg[clean_text(name)] = _header(clean_text(name), value)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def first_address(value: str) -> Address:
    """The first address of a header-style value (`Example Support <support@example.com>`), or the null one."""
    parsed = parse_addresses(value)
    return parsed[0] if parsed else Address("", "")


def address_domain(address: str) -> str:
    return first_address(address).domain
