"""Building the MIME tree of an inbound message with bounded memory (pure; stdlib `email` only).

Owns `message(raw)`: the compat32 tree the stdlib parser builds, fed in 64 KiB chunks (`message_from_bytes`
would copy the whole text into a four-byte-per-character StringIO first), with long base64 runs (an attachment's
body) handed to the parser as a short token and put back into the tree afterwards, so the parser never holds
them as hundreds of thousands of line objects; it reports where each whole-run payload sits in `raw`, so a big
attachment can stay undecoded until it is stored. Must not decode, interpret or store anything, or raise for
bad input beyond what the stdlib parser raises.
"""

from __future__ import annotations

import os
import re
from email.message import Message
from email.parser import BytesFeedParser
from email.policy import compat32

from casebot.mail.dedupe import payload_of

_FEED_CHUNK = 1 << 16


# A long run of base64-looking lines (an attachment's body): handed to the parser as one short token and put back
# into the tree afterwards, so the parser never holds it as a list of 400,000 line objects (50 MB for 30 MB).
# One character class, not a repeated line group: sre would keep a backtracking frame per line (75 MB).
_BLOB_RUN = re.compile(rb"[A-Za-z0-9+/=\r\n]{262144,}")


def _blob_span(raw: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The whole lines of a run, without its leading newlines and its last line's newline (which the parser
    strips before a boundary: it stays in the stream)."""
    if start > 0 and raw[start - 1 : start] != b"\n":
        start = raw.find(b"\n", start, end) + 1  # the run began mid-line (a header's "... base64")
    while start < end and raw[start : start + 1] in (b"\r", b"\n"):
        start += 1
    last = raw.rfind(b"\n", start, end)
    if last <= start:
        return None
    end = last - 1 if raw[last - 1 : last] == b"\r" else last
    return (start, end) if end - start >= 65536 else None


def message(raw: bytes) -> tuple[Message, dict[int, tuple[int, int]]]:
    """The MIME tree, fed in chunks: `email.message_from_bytes` copies the whole text into a StringIO first (four
    bytes per character: 120 MB for a 30 MB mail). Long base64 runs skip the parser (`_BLOB_RUN`); the second
    value maps each payload str that is exactly one such run (by id) to its place in `raw`."""
    blobs: dict[str, tuple[int, int]] = {}
    pieces: list[bytes | memoryview] = []
    view, at = memoryview(raw), 0
    nonce = os.urandom(8).hex()
    for run in _BLOB_RUN.finditer(raw):
        span = _blob_span(raw, run.start(), run.end())
        if span is None:
            continue
        token = f"casebot-blob-{nonce}-{len(blobs)}"
        blobs[token] = span
        pieces += [view[at : span[0]], token.encode()]
        at = span[1]
    pieces.append(view[at:])
    parser = BytesFeedParser(policy=compat32)
    for piece in pieces:
        for i in range(0, len(piece), _FEED_CHUNK):
            parser.feed(bytes(piece[i : i + _FEED_CHUNK]))
    root = parser.close()
    spans = _restore(root, blobs, view) if blobs else {}
    return root, spans


def _restore(root: Message, blobs: dict[str, tuple[int, int]], raw: memoryview) -> dict[int, tuple[int, int]]:
    """Put each base64 run back where its token landed (a leaf's payload, or a preamble or epilogue)."""
    spans: dict[int, tuple[int, int]] = {}

    def back(text: str | None) -> str | None:
        if not text or "casebot-blob-" not in text:
            return text
        for token, (start, end) in blobs.items():
            if text == token:  # the usual case, a whole leaf: no second copy through replace()
                whole = str(raw[start:end], "ascii")
                spans[id(whole)] = (start, end)
                return whole
            if token in text:
                text = text.replace(token, str(raw[start:end], "ascii"))
        return text

    stack = [root]
    while stack:
        part = stack.pop()
        part.preamble, part.epilogue = back(part.preamble), back(part.epilogue)
        payload = payload_of(part)
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
        elif isinstance(payload, str) and "casebot-blob-" in payload:
            part.set_payload(back(payload) or "")
    return spans


