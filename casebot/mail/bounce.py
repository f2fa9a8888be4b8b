"""Delivery reports: what a bounce, DSN, read receipt (MDN) or feedback report (ARF) says (pure; the only importer
of flufl.bounce).

Owns `read_report(raw)`, which turns a message into a `DeliveryReport`: its kind (`dsn` for an RFC 3464
`multipart/report; report-type=delivery-status`, `mdn` for RFC 8098 disposition notifications, `arf` for RFC 5965
feedback reports, `bounce` for the non-standard dialects GNU Mailman's flufl.bounce recognises, `none`), the
recipients it reports on (Final-/Original-Recipient, Action, Status, Diagnostic-Code; flufl.bounce's permanent and
temporary failures), the Message-IDs it names, best first (the embedded `message/rfc822` or `text/rfc822-headers`
part, the MDN's `Original-Message-ID`, `Message-ID:` lines quoted in the text, then the report's own
`In-Reply-To`/`References`) and a one-line diagnostic. Only the first `limit` bytes are read (the report parts come
first; a returned 40 MB attachment is not parsed). flufl.bounce's detectors also read embedded messages (a relay
that wrapped a DSN in a `message/rfc822`) and guess at plain text, so a person's forwarded or quoted bounce reads as
a bounce too: callers ask only about mail with a bounce's own marks (`pipeline.loop_guard`). Must not do I/O,
look anything up or raise: a malformed message (deep nesting, broken MIME, a detector that fails) gives a smaller
report, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import email
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import compat32

from flufl.bounce import all_failures

from casebot.mail.address import clean_text, message_ids

KINDS = ("dsn", "bounce", "mdn", "arf", "none")
DEFAULT_LIMIT = 4 * 1024 * 1024
MAX_PARTS = 200
MAX_DEPTH = 12
MAX_IDS = 10

_REPORT_TYPES = {"delivery-status": "dsn", "disposition-notification": "mdn", "feedback-report": "arf"}
_REPORT_PARTS = {"message/delivery-status": "dsn", "message/global-delivery-status": "dsn",
                 "message/disposition-notification": "mdn", "message/global-disposition-notification": "mdn",
                 "message/feedback-report": "arf"}
_HEADER_PARTS = frozenset({"text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header",
                           "message/global-headers"})
_EMBEDDED = frozenset({"message/rfc822", "message/global"})
_QUOTED_ID = re.compile(r"^[ \t>]*Message-I[Dd][ \t]*:[ \t]*(<[^<>\s]{1,900}>)", re.MULTILINE)
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_LINE = re.compile(r"^.*\b(?:[45]\d\d[ -]|[45]\.\d{1,3}\.\d{1,3}\b).*$", re.MULTILINE)

# flufl.bounce logs a traceback for a detector that trips over a malformed message, then re-raises; `_flufl`
# handles that itself, so the library's own log would only repeat it (and it logs every detector run at INFO).
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Recipient:
    """One recipient a report is about: `action` is RFC 3464's (failed, delayed, delivered, relayed, expanded),
    or failed/delayed for flufl.bounce's permanent/temporary failures."""

    address: str
    action: str = "failed"
    status: str = ""  # the enhanced status code, 5.1.1
    diagnostic: str = ""  # the Diagnostic-Code without its type ("550 5.1.1 User unknown")


@dataclass(frozen=True)
class DeliveryReport:
    kind: str = "none"  # one of KINDS
    recipients: tuple[Recipient, ...] = ()
    message_ids: tuple[str, ...] = ()  # the Message-IDs the report names, best first, without angle brackets
    diagnostic: str = ""  # one line: the failure's diagnostic, the MDN's disposition, the ARF's feedback type

    @property
    def original_message_id(self) -> str | None:
        return self.message_ids[0] if self.message_ids else None

    @property
    def failed(self) -> tuple[Recipient, ...]:
        """The recipients mail did not reach and will not (Action: failed, or a permanent bounce)."""
        return tuple(r for r in self.recipients if r.action == "failed")

    @property
    def is_failure(self) -> bool:
        return self.kind in ("dsn", "bounce") and bool(self.failed)

    @property
    def evidence(self) -> str:
        """The report in one line, for the trace: `DSN: 5.1.1 for x@y, original <id>`."""
        if self.kind == "none":
            return ""
        original = f", original <{self.original_message_id}>" if self.message_ids else ", original unknown"
        if self.kind == "mdn":
            return f"MDN (read receipt): {self.diagnostic or 'disposition unknown'}{original}"
        if self.kind == "arf":
            return f"ARF feedback report: {self.diagnostic or 'feedback type unknown'}{original}"
        shown = self.failed or self.recipients
        label = "DSN" if self.kind == "dsn" else "bounce"
        if shown and shown[0].action != "failed":
            label += f" ({shown[0].action})"
        status = next((r.status for r in shown if r.status), "")
        who = ", ".join(r.address for r in shown[:3]) + (" ..." if len(shown) > 3 else "")
        return f"{label}: {status + ' ' if status else ''}for {who or 'unknown recipients'}{original}"


NONE = DeliveryReport()


def _parts(msg: Message) -> Iterator[Message]:
    """Every part, depth first, without entering embedded messages (their report parts are not this report's),
    bounded in depth and count, and iterative. (On pathological nesting the parser itself gives up first: then
    `read_report` says what the top-level header declares.)"""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part
        ctype = part.get_content_type()
        if part.is_multipart() and depth < MAX_DEPTH and ctype not in _EMBEDDED and ctype not in _REPORT_PARTS:
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))


def _text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a report part: the parser's own (delivery-status), its one sub-message (MDN, ARF), or,
    for a part the parser left as text (base64, broken), the blank-line-separated blocks read here."""
    payload = part.get_payload()
    base64_encoded = str(part.get("content-transfer-encoding", "") or "").strip().lower() == "base64"
    if isinstance(payload, list) and not base64_encoded:
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, list):  # the parser read base64 text as header blocks: join and decode it here
        joined = "".join(str(p.get_payload()) for p in payload if isinstance(p, Message))
        try:
            text = base64.b64decode(joined).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return []
    else:
        text = _text(part)
    text = text.replace("\r\n", "\n")
    return [HeaderParser(policy=compat32).parsestr(block.strip() + "\n") for block in re.split(r"\n\s*\n", text)
            if block.strip()]


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return " ".join(clean_text(str(value)).split()) if value is not None else ""


def _typed(value: str) -> str:
    """`rfc822; user@example.com` -> `user@example.com`; `smtp; 550 ...` -> `550 ...`."""
    head, sep, rest = value.partition(";")
    return (rest if sep and " " not in head.strip() else value).strip()


def _recipients(part: Message) -> list[Recipient]:
    out: list[Recipient] = []
    for block in _blocks(part):
        address = _typed(_field(block, "original-recipient")) or _typed(_field(block, "final-recipient"))
        address = address.strip().strip("<>").strip()[:320]
        if not address:
            continue
        action = (_field(block, "action").lower().split() or [""])[0].rstrip(";")
        if action.startswith("fail") or action == "error":  # opensmtpd writes `Action: error`
            action = "failed"
        status = (_field(block, "status").split() or [""])[0][:32]
        out.append(Recipient(address, action or "unknown", status, _typed(_field(block, "diagnostic-code"))[:500]))
    return out


def _embedded_ids(part: Message) -> tuple[str, ...]:
    ctype = part.get_content_type()
    if ctype in _EMBEDDED:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            return message_ids(str(inner.get("message-id", "") or ""))
        text = _text(part)  # a message/rfc822 part the parser could not read as one
    else:
        text = _text(part)
    headers = HeaderParser(policy=compat32).parsestr(text.replace("\r\n", "\n"), headersonly=True)
    return message_ids(str(headers.get("message-id", "") or ""))


def _plain_headers(msg: Message) -> None:
    """Top-level headers the parser returns as `Header` objects (raw 8-bit) made plain ASCII strings, and a From
    header present: flufl.bounce's detectors call `.lower()` on them, and one detector's exception ends the scan."""
    for name in {n.lower() for n in msg}:
        values = msg.get_all(name) or []
        if any(isinstance(v, Header) for v in values):
            del msg[name]
            for v in values:
                msg[name] = str(v).encode("ascii", "replace").decode("ascii")
    if msg.get("from") is None:
        msg["From"] = "<>"


def _flufl(msg: Message) -> list[Recipient]:
    try:
        _plain_headers(msg)
        temporary, permanent = all_failures(msg)
    except Exception:
        # A detector that trips over a malformed message: the report is smaller, the message is still stored.
        return []
    out = [Recipient(a.decode("ascii", "replace"), "failed") for a in sorted(permanent)]
    out += [Recipient(a.decode("ascii", "replace"), "delayed") for a in sorted(temporary - permanent)]
    return out


def _read(msg: Message) -> DeliveryReport:
    top = msg.get_content_type()
    kind = _REPORT_TYPES.get(str(msg.get_param("report-type", "") or "").lower(), "") if top == "multipart/report" \
        else ""
    recipients: list[Recipient] = []
    ids: list[str] = []
    texts: list[str] = []
    notes = {"mdn": "", "arf": ""}
    for part in _parts(msg):
        ctype = part.get_content_type()
        part_kind = _REPORT_PARTS.get(ctype)
        if part_kind:
            kind = kind or part_kind
            if part_kind == "dsn":
                recipients += _recipients(part)
            for block in _blocks(part)[:1]:
                if part_kind == "mdn":
                    ids += message_ids(_field(block, "original-message-id"))
                    notes["mdn"] = _field(block, "disposition")[:300]
                elif part_kind == "arf":
                    notes["arf"] = "; ".join(v for v in (_field(block, "feedback-type"), _field(block, "user-agent"))
                                             if v)[:300]
        elif ctype in _EMBEDDED or ctype in _HEADER_PARTS:
            ids += _embedded_ids(part)
        elif part.get_content_maintype() == "text" and not part.is_multipart():
            texts.append(_text(part)[:200_000])
    if kind in ("", "dsn") and not recipients:
        found = _flufl(msg)
        if found:
            recipients, kind = found, kind or "bounce"
    if not kind:
        return NONE
    for text in texts:
        ids += message_ids(" ".join(_QUOTED_ID.findall(text)))
    ids += message_ids(str(msg.get("in-reply-to", "") or ""))
    ids += reversed(message_ids(str(msg.get("references", "") or "")))
    diagnostic = notes.get(kind, "") or _diagnostic(recipients, texts)
    return DeliveryReport(kind, tuple(dict.fromkeys(recipients)), tuple(dict.fromkeys(ids))[:MAX_IDS],
                          " ".join(diagnostic.split())[:500])


def _diagnostic(recipients: list[Recipient], texts: list[str]) -> str:
    failed = [r for r in recipients if r.action == "failed"] or recipients
    for r in failed:
        if r.diagnostic or r.status:
            return r.diagnostic or r.status
    for text in texts:  # a non-standard bounce: the first line with an SMTP reply or status code
        found = _SMTP_LINE.search(text)
        if found:
            return found.group(0).strip()
    return ""


def read_report(raw: bytes, limit: int = DEFAULT_LIMIT) -> DeliveryReport:
    """What this message reports about the delivery of another, or `NONE`. Never raises."""
    try:
        msg = email.message_from_bytes(raw[:limit], policy=compat32)
        report = _read(msg)
    except Exception:
        # RecursionError on pathological nesting, or a parser corner case: what the top-level header says.
        return _from_head(raw)
    if report.recipients and not any(r.status for r in report.recipients):
        text = report.diagnostic
        found = _ENHANCED.search(text)
        if found:
            first = report.recipients[0]
            report = DeliveryReport(report.kind, (Recipient(first.address, first.action, found.group(1),
                                                            first.diagnostic), *report.recipients[1:]),
                                    report.message_ids, report.diagnostic)
    return report


def _from_head(raw: bytes) -> DeliveryReport:
    """The kind a message's top-level Content-Type declares, for a body the parser cannot read."""
    try:
        head = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
        kind = _REPORT_TYPES.get(str(head.get_param("report-type", "") or "").lower(), "") \
            if head.get_content_type() == "multipart/report" else ""
        if not kind:
            return NONE
        ids = (*message_ids(str(head.get("in-reply-to", "") or "")),
               *reversed(message_ids(str(head.get("references", "") or ""))))
        return DeliveryReport(kind, message_ids=tuple(dict.fromkeys(ids))[:MAX_IDS], diagnostic="report unreadable")
    except Exception:
        return NONE
