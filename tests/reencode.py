"""One message, encoded many ways: what a relay, an archive re-import or a client resend makes of the same mail.

`build(fields, variant)` writes the same headers, text and attachment with the variant's MIME boundary, transfer
encodings (8bit, quoted-printable, base64; base64 line length), line endings and transport headers (Received,
Return-Path, Delivered-To). Every variant is the same message to a reader, so casebot must give them one dedupe
key. Used by the unit table (tests/unit/test_dedupe.py) and the re-delivery test (tests/integration).
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass


@dataclass(frozen=True)
class Fields:
    sender: str = "Ana Lima <ana@client.example>"
    to: str = "support@example.com"
    subject: str = "Invoice 2211 is wrong"
    date: str = "Tue, 03 Mar 2026 10:15:00 +0100"
    message_id: str = "<inv-2211@client.example>"
    text: str = "Hello,\n\nthe invoice 2211 lists 12 licences; we have 10. Olá, ça va?\n\nAna\n"
    attachment: bytes = bytes(range(256)) * 40
    filename: str = "invoice-2211.pdf"
    log: str | None = "line 1 of the log\nline 2 of the log\n"  # a text/plain attachment, or None


@dataclass(frozen=True)
class Variant:
    boundary: str = "b1_first_boundary"
    text_cte: str = "quoted-printable"  # 8bit, quoted-printable, base64
    log_cte: str = "8bit"  # 8bit, base64
    b64_line: int = 76
    eol: str = "\r\n"
    hops: int = 1  # Received headers on top
    preamble: str = "This is a multi-part message in MIME format."
    charset: str = "utf-8"  # the text's charset: utf-8 or iso-8859-1 (what a relay re-encoding to latin-1 makes)


VARIANTS: dict[str, Variant] = {
    "original": Variant(),
    "new-boundaries": Variant(boundary="=_relay_rewrote_it_0042"),
    "text-base64": Variant(text_cte="base64"),
    "text-8bit": Variant(text_cte="8bit"),
    "lf-line-endings": Variant(eol="\n"),
    "base64-64-columns": Variant(b64_line=64),
    "log-base64": Variant(log_cte="base64"),
    "latin-1": Variant(charset="iso-8859-1", text_cte="quoted-printable"),
    "more-hops-no-preamble": Variant(hops=3, preamble=""),
    "all-at-once": Variant(boundary="----=_Part_99_1234.5678", text_cte="base64", log_cte="base64", b64_line=72,
                           eol="\n", hops=2, preamble=""),
}


def _b64(data: bytes, width: int) -> str:
    flat = base64.b64encode(data).decode("ascii")
    return "\n".join(flat[i : i + width] for i in range(0, len(flat), width)) + "\n"


def _body(data: bytes, cte: str) -> str:
    if cte == "base64":
        return _b64(data, 76)
    if cte == "quoted-printable":
        return quopri.encodestring(data).decode("ascii")
    return data.decode("latin-1")  # 8bit: the bytes as they are (turned back into bytes below)


def build(f: Fields = Fields(), v: Variant = Variant()) -> bytes:
    lines: list[str] = []
    for hop in range(v.hops):
        lines.append(f"Received: from mx{hop}.relay.example by mx{hop + 1}.example.com; "
                     f"Tue, 03 Mar 2026 10:{16 + hop:02d}:00 +0000")
    lines += ["Return-Path: <ana@client.example>", f"Delivered-To: {f.to}"] if v.hops > 1 else []
    lines += [f"From: {f.sender}", f"To: {f.to}", f"Subject: {f.subject}", f"Date: {f.date}",
              f"Message-ID: {f.message_id}", "MIME-Version: 1.0",
              f'Content-Type: multipart/mixed; boundary="{v.boundary}"', ""]
    if v.preamble:
        lines.append(v.preamble)
    text = f.text.encode(v.charset, "replace")
    lines += [f"--{v.boundary}", f"Content-Type: text/plain; charset={v.charset}",
              f"Content-Transfer-Encoding: {v.text_cte}", "", _body(text, v.text_cte).rstrip("\r\n")]
    if f.log is not None:
        log = f.log.encode("utf-8")
        lines += [f"--{v.boundary}", "Content-Type: text/plain; charset=utf-8",
                  f"Content-Transfer-Encoding: {v.log_cte}", 'Content-Disposition: attachment; filename="app.log"',
                  "", _body(log, v.log_cte).rstrip("\r\n")]
    lines += [f"--{v.boundary}", f'Content-Type: application/pdf; name="{f.filename}"',
              "Content-Transfer-Encoding: base64", f'Content-Disposition: attachment; filename="{f.filename}"', "",
              _b64(f.attachment, v.b64_line).rstrip("\n"), f"--{v.boundary}--", ""]
    out = "\n".join(lines)
    out = out.replace("\r\n", "\n").replace("\n", v.eol)
    return out.encode("latin-1")
