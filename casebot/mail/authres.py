"""Is a staff member's message authenticated? Read from our receiving server's `Authentication-Results` (pure).

Owns the decision "trust this staff message for commands and relaying": it is authenticated only when an
`Authentication-Results` header (RFC 8601) written by the configured authserv-id shows DKIM pass aligned with the
From domain, or DMARC pass for it, plus the plain-words evidence for the audit trail. Parsing is the `authres`
library's; choosing which headers to believe and what counts as a pass is ours.

Which headers are believed. Our servers prepend their headers, so what they wrote sits at the top and anything the
sender wrote sits below it. Walking from the top down, `Authentication-Results` headers whose authserv-id equals the
configured one (case-insensitive) count while only our receiving side's trace headers have been met:
`Authentication-Results`, `ARC-*`, `Received`, `Return-Path`, `Delivered-To`, `X-Original-To`, `Envelope-To` and
`Delivery-Date` (Exim), `Received-SPF` (SPF policy daemons), `X-Received` (Gmail), `DKIM-Filter` (OpenDKIM),
`DMARC-Filter` (OpenDMARC), `X-Virus-Scanned` and `X-Spam-*` (amavis, SpamAssassin), `X-Spamd-*` and `X-Rspamd-*`
(rspamd). The walk stops at the first other header (From, Subject, DKIM-Signature, ...: the sender's block has
begun), and also at the first `Received` below one of our `Authentication-Results`: a `Received` marks an earlier
hop, which the sender may have written, so a second block lower down is never believed, even when our own server
wrote it (fail-safe: the top-most block is the one that counts). A header naming our authserv-id anywhere below the
stop never counts; the evidence says how many were ignored. At most 50 are read (a flood ends the walk).

What this relies on (RFC 8601 section 5): the receiving server adds its own `Authentication-Results` to every
message and deletes incoming ones that claim its authserv-id. Without that, a forgery placed right under our trace
headers cannot be told apart by position. Microsoft 365 writes its `Authentication-Results` without an authserv-id
(not RFC 8601 syntax): such a header cannot be attributed and is skipped as malformed.

Alignment. DKIM pass counts when the signing domain (`header.d`, else the domain of `header.i`) is the From domain
or a parent of it (relaxed alignment: From `mail.example.com` with `d=example.com` passes, `d=evil.example` and
`d=notexample.com` do not; a single-label `d=` never aligns; no public-suffix list is consulted). DMARC pass counts
when its `header.from` is the From domain, or is absent. A header that cannot be read is skipped, its reason in the
evidence.

Must not do I/O, DNS look-ups or raise on bad input, and never verifies a signature itself: it trusts the receiving
server's results, and only those.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import authres

from casebot.mail.address import clean_text

# Trace headers a receiving MTA (and its milters / filters) prepends above the message it received.
_TRACE_NAMES = frozenset({
    "authentication-results",
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "delivery-date",
    "received-spf",
    "x-received",
    "dkim-filter",
    "dmarc-filter",
    "x-virus-scanned",
})
_TRACE_PREFIXES = ("arc-", "x-spam-", "x-spamd-", "x-rspamd-")

# Longer than any real header (a Fastmail one with every method is ~1 KB); the parser is quadratic, so cap it.
_MAX_VALUE = 8192
_MAX_HEADERS = 50  # Authentication-Results parsed per message (Fastmail writes 5); the rest count as "below"
_MAX_SHOWN = 100  # characters of one header-supplied value quoted in the evidence
_MAX_EVIDENCE = 600
_LEADING_ID = re.compile(r"\s*([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+)")

NOT_CONFIGURED = "staff identity rests on the From header alone (staff.authserv_id is not set)"


@dataclass(frozen=True)
class AuthVerdict:
    verified: bool
    evidence: str  # plain words for the audit trail


def check(items: Sequence[tuple[str, str]], authserv_id: str, from_domain: str) -> AuthVerdict:
    """Decide from the message's header (name, value) pairs, top first (`Head.items`)."""
    ours = authserv_id.strip().lower()
    if not ours:
        return AuthVerdict(False, NOT_CONFIGURED)
    domain = _domain(from_domain)
    if not domain:
        return AuthVerdict(False, "the From header has no domain to check authentication against")

    trusted: list[Any] = []
    notes: list[str] = []
    others: list[str] = []
    stop, parsed_count = len(items), 0
    for index, (raw_name, value) in enumerate(items):
        name = raw_name.strip().lower()
        if name == "authentication-results" and parsed_count == _MAX_HEADERS:
            notes.append(f"read only the first {_MAX_HEADERS} Authentication-Results")
            stop = index
            break
        if name == "authentication-results":
            parsed_count += 1
            parsed, problem = _parse(value)
            if parsed is None:
                notes.append(f"skipped an unreadable Authentication-Results ({problem})")
            elif str(parsed.authserv_id) == ours:
                trusted.append(parsed)
            elif _shown(str(parsed.authserv_id)) not in others:
                others.append(_shown(str(parsed.authserv_id)))
            continue
        if (name == "received" and trusted) or not (name in _TRACE_NAMES or name.startswith(_TRACE_PREFIXES)):
            stop = index
            break
    if others:
        notes.append("ignored Authentication-Results from " + ", ".join(others[:3]) + (", ..." if others[3:] else ""))
    below = sum(1 for n, v in items[stop:] if n.strip().lower() == "authentication-results" and _leading_id(v) == ours)
    if below:
        notes.append(f"ignored {below} Authentication-Results naming {_shown(ours)} below the sender's headers")

    if not trusted:
        return AuthVerdict(False, _evidence(f"no Authentication-Results from {_shown(ours)} above the sender's headers",
                                            notes))
    seen: list[str] = []
    for header in trusted:
        for result in header.results:
            method, outcome = str(getattr(result, "method", "")), str(getattr(result, "result", ""))
            if method == "dkim":
                shown, signer = _dkim_signer(result)
                clause = f"dkim={_shown(outcome)}" + (f" {shown}" if shown else " (no header.d)")
                if outcome == "pass" and signer and _aligned(signer, domain):
                    return AuthVerdict(True, _evidence(f"Authentication-Results from {_shown(ours)}: {clause} "
                                                       f"(aligned with From {domain})", notes))
                if outcome == "pass" and signer:
                    clause += f" (not aligned with From {domain})"
                seen.append(clause)
            elif method == "dmarc":
                header_from = _domain(_property(result, "header", "from").rpartition("@")[2])
                clause = f"dmarc={_shown(outcome)}" + (f" header.from={_shown(header_from)}" if header_from else "")
                if outcome == "pass" and header_from in ("", domain):
                    return AuthVerdict(True, _evidence(f"Authentication-Results from {_shown(ours)}: {clause}", notes))
                if outcome == "pass":
                    clause += f" (not the From domain {domain})"
                seen.append(clause)
    found = "; ".join(seen[:6]) + ("; ..." if seen[6:] else "") if seen else "no dkim or dmarc result"
    return AuthVerdict(False, _evidence(f"Authentication-Results from {_shown(ours)} show no DKIM pass aligned with "
                                        f"From {domain} and no DMARC pass: {found}", notes))


def _parse(value: str) -> tuple[Any, str]:
    """One header value -> (parsed header, "") or (None, why not). Never raises."""
    text = clean_text(_readable(value))  # unfolded, one line, no control characters
    if len(text) > _MAX_VALUE:
        return None, f"longer than {_MAX_VALUE} characters"
    try:
        return authres.parse_value(text), ""
    except Exception as exc:  # third-party parser on hostile input: anything it raises means "unreadable"
        return None, _shown(str(exc) or type(exc).__name__)


def _readable(value: str) -> str:
    # Raw 8-bit bytes arrive surrogate-escaped from the compat32 header parser (see inbound.read_head).
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _leading_id(value: str) -> str:
    match = _LEADING_ID.match(_readable(value))
    return match.group(1).lower() if match else ""


def _property(result: Any, ptype: str, pname: str) -> str:
    for prop in getattr(result, "properties", None) or ():
        if getattr(prop, "type", None) == ptype and getattr(prop, "name", None) == pname:
            return str(getattr(prop, "value", "") or "")
    return ""


def _dkim_signer(result: Any) -> tuple[str, str]:
    """(the property as shown in the evidence, the signing domain) of a dkim result; header.d wins over header.i."""
    d = _domain(_property(result, "header", "d"))
    if d:
        return f"header.d={_shown(d)}", d
    i = _property(result, "header", "i")
    if i:
        return f"header.i={_shown(i.lower())}", _domain(i.rpartition("@")[2])
    return "", ""


def _aligned(signer: str, domain: str) -> bool:
    """Relaxed alignment: the signing domain is the From domain or one of its parents (never a bare label)."""
    return "." in signer and (domain == signer or domain.endswith("." + signer))


def _domain(value: str) -> str:
    text = _readable(value).strip().strip('"').rstrip(".").lower()
    if text and not text.isascii():
        with contextlib.suppress(UnicodeError):  # not a valid IDN: compared as written, so it matches nothing
            text = text.encode("idna").decode("ascii")
    return text


def _shown(value: str) -> str:
    text = clean_text(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _evidence(main: str, notes: list[str]) -> str:
    text = "; ".join([main, *notes])
    return text if len(text) <= _MAX_EVIDENCE else text[: _MAX_EVIDENCE - 3] + "..."
