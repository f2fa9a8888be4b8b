"""Outbound mail: `Outgoing` -> the bytes casebot sends (pure).

Owns `compose()`: every header value cleaned (text from a client's mail can never inject a header), long subjects
and bodies kept within RFC 5322's line limits (encoded words, quoted-printable), `Auto-Submitted: auto-replied` on
everything (RFC 3834), and Message-IDs derived from idempotency keys. Must not decide what to send or to whom
(`notices` does) or do I/O.
"""

from __future__ import annotations

import datetime as dt
import email.charset
import email.encoders
import email.utils
import hashlib
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText

from casebot.mail.address import clean_text, envelope_address, parse_addresses
from casebot.mail.inbound import Attachment


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
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None


_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP  # readable in any client's "view source", unlike base64


_MAX_LINE = 998  # RFC 5322 §2.1.1: no line longer than this, ever (servers answer "500 Line too long")
_FOLDABLE_WORD = 70  # the generator folds at white space; a word longer than this cannot be folded in time


def _header(name: str, value: str) -> str:
    """A header value that stays within the line limits: plain when it is ASCII and foldable at white space, else
    RFC 2047 encoded words, which split anywhere (a 1,000-character subject without a space included)."""
    value = clean_text(value)
    if value.isascii() and all(len(word) <= _FOLDABLE_WORD for word in value.split(" ")):
        return value
    return Header(value, "utf-8", header_name=name).encode()


_MAX_NAME = 200  # a display name longer than this is cut: with the address it must fit in one header line


def _formataddr(value: str) -> str:
    """`Name <addr>` as a header value: the domain as an A-label (`xn--`), the display name an encoded word when
    it is not ASCII, never an encoded word around the addr-spec (RFC 2047 §5). A non-ASCII local part is written
    as raw UTF-8 (RFC 6532; the sender adapter uses SMTPUTF8): it is returned surrogate-escaped, which the
    compat32 generator writes out byte for byte. ValueError when the address cannot be written."""
    parsed = parse_addresses(value)
    if not parsed or not parsed[0].addr:
        raise ValueError(f"address not deliverable: no address in {clean_text(value)[:80]!r}")
    if parsed[0].problem:
        raise ValueError(f"address not deliverable: {parsed[0].problem}")
    name, addr = parsed[0].name[:_MAX_NAME], envelope_address(parsed[0].addr)
    if addr.isascii():
        return email.utils.formataddr((name, addr), "utf-8")
    phrase = email.utils.formataddr((name, "x@x"), "utf-8")[: -len(" <x@x>")] if name else ""
    written = f"{phrase} <{addr}>" if phrase else addr
    return written.encode("utf-8").decode("ascii", "surrogateescape")


def _text_part(body: str, subtype: str) -> Message:
    # Quoted-printable also for ASCII text with an over-long line (a client's 1,000-character subject quoted in a
    # template): its soft line breaks keep every line within the limit, and the client shows the line whole.
    if body.isascii() and all(len(line) <= _MAX_LINE - 2 for line in body.splitlines()):
        return MIMEText(body, subtype, "us-ascii")
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, _UTF8_QP)  # sets charset="utf-8" and quoted-printable
    return part


def _attachment_part(att: Attachment) -> Message:
    maintype, _, subtype = att.content_type.partition("/")
    if not maintype or not subtype or maintype == "multipart":
        maintype, subtype = "application", "octet-stream"
    part = MIMENonMultipart(maintype, subtype)
    part.set_payload(att.data)
    email.encoders.encode_base64(part)  # base64 lines are 76 characters: within the limits whatever the bytes
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", att.filename)
                    if not att.filename.isascii() else att.filename)
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
    if out.attachments:
        body, msg = msg, MIMEMultipart("mixed")
        msg.attach(body)
        for att in out.attachments:
            msg.attach(_attachment_part(att))
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
    if out.reply_to:
        msg["Reply-To"] = _formataddr(out.reply_to)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    for name, value in out.headers:
        msg[clean_text(name)] = _header(clean_text(name), value)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


