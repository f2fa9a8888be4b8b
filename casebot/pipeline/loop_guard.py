"""Step `loop_guard` (RFC 3834): is this mail automated, so that no automatic reply may go back to it?

Hit for `Auto-Submitted` other than `no`, `Precedence: bulk/junk/list/auto_reply`, list headers,
`X-Auto-Response-Suppress`, `X-Autoreply`-style headers, bounces (null sender, `Return-Path: <>`, MAILER-DAEMON,
postmaster, `multipart/report`), casebot's own addresses and `noreply@` senders; then the patterns of
`casebot.automated` (mail-system senders, list robots, bounce and out-of-office subjects in many languages).
Such mail is still stored on its case: only automatic replies are suppressed. Must not write anything or stop
the chain.
"""

from __future__ import annotations

from typing import ClassVar

from casebot.automated import Patterns
from casebot.mail import InboundMail
from casebot.pipeline.base import Finding, Incoming, Verdict

NO_REPLY_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
NO_REPLY_LOCALPARTS = frozenset({"noreply", "no-reply", "donotreply", "do-not-reply", "no_reply"})
BOUNCE_LOCALPARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "bounce", "bounces"})


def automation_reason(m: InboundMail, own_addresses: frozenset[str], patterns: Patterns | None = None) -> str | None:
    """Why no automatic reply may go to this message's sender, or None."""
    auto = m.header("auto-submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = m.header("precedence").strip().lower()
    if precedence in NO_REPLY_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe", "list-post"):
        if m.header(name):
            return f"{name} header (mailing list)"
    if m.header("x-auto-response-suppress"):
        return "X-Auto-Response-Suppress header"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if m.header(name):
            return f"{name} header"
    if not m.sender.addr:
        return "null sender (bounce)"
    if m.header("return-path").replace(" ", "") == "<>":
        return "null envelope sender (Return-Path: <>)"
    local = m.sender.addr.split("@", 1)[0]
    if local in BOUNCE_LOCALPARTS:
        return f"sender {local}@ (bounce)"
    if m.content_type == "multipart/report":
        return "multipart/report (delivery status notification)"
    if m.sender.addr in own_addresses:
        return "sender is casebot's own address"
    if local in NO_REPLY_LOCALPARTS:
        return f"sender {local}@ does not accept replies"
    return patterns.evidence(m) if patterns is not None else None


class LoopGuard:
    name: ClassVar[str] = "loop_guard"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        reason = automation_reason(incoming.mail, incoming.config.own_addresses, incoming.config.automated)
        verdict.origin.automated = reason
        return Finding(True, "automated", reason) if reason else Finding(False, "human")
