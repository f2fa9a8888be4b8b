"""Step `loop_guard` (RFC 3834): is this mail automated, so that no automatic reply may go back to it?

Hit for `Auto-Submitted` other than `no`, `Precedence: bulk/junk/list/auto_reply`, list headers,
`X-Auto-Response-Suppress`, `X-Autoreply`-style headers, bounces (null sender, `Return-Path: <>`, MAILER-DAEMON,
postmaster, `multipart/report`), casebot's own addresses and `noreply@` senders; then the patterns of
`casebot.automated` (mail-system senders, list robots, bounce and out-of-office subjects in many languages).
A `multipart/report`, or mail with a bounce's marks, is read by `casebot.mail.bounce`: the trace then names what
the report says ("DSN: 5.1.1 for x@y, original <id>"). Besides the reason, the step says whether the mail
*answers* a mail (`Origin.answer`: dsn, bounce, mdn, arf or auto-reply, which `automated_answer` places), as list,
bulk and notification mail does not. flufl.bounce's heuristics only ever see mail with a bounce's marks: on a
person's reply they find "failed recipients" in the quoted headers. Must not write anything or stop the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from casebot.automated import Patterns
from casebot.mail import InboundMail
from casebot.mail.bounce import NONE, DeliveryReport, read_report
from casebot.pipeline.base import Finding, Incoming, Verdict

NO_REPLY_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
NO_REPLY_LOCALPARTS = frozenset({"noreply", "no-reply", "donotreply", "do-not-reply", "no_reply"})
BOUNCE_LOCALPARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon", "bounce",
                               "bounces"})
AUTOREPLY_LOCALPARTS = frozenset({"autoreply", "auto-reply", "autoresponder", "auto-responder"})
NOT_MAIL_SYSTEMS = NO_REPLY_LOCALPARTS | AUTOREPLY_LOCALPARTS | {"devnull"}
# Subject pattern kinds (config/automated.toml) whose mail answers a mail, and the answer it is.
ANSWER_SUBJECTS = {"bounce": "bounce", "out-of-office": "auto-reply", "ticket auto-response": "auto-reply",
                   "read receipt": "auto-reply", "challenge-response": "auto-reply", "auto-reply": "auto-reply"}


def automation_reason(m: InboundMail, own_addresses: frozenset[str], patterns: Patterns | None = None) -> str | None:
    """Why no automatic reply may go to this message's sender, or None (headers, senders and subjects only)."""
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


def _subject_kind(m: InboundMail, patterns: Patterns | None) -> str | None:
    subject = " ".join(m.subject.split())
    for rule in patterns.subjects if patterns is not None else ():
        if rule.kind in ANSWER_SUBJECTS and rule.pattern.search(subject):
            return ANSWER_SUBJECTS[rule.kind]
    return None


def bounce_marks(m: InboundMail, patterns: Patterns | None) -> bool:
    """Whether the mail looks like a delivery report: a report part, a null envelope sender, a mail system's
    sender or a bounce subject. (A missing From alone is no such mark: broken human mail lacks one too.)"""
    if m.content_type == "multipart/report" or m.header("return-path").replace(" ", "") == "<>":
        return True
    local = m.sender.addr.rpartition("@")[0].strip('"').lower() if "@" in m.sender.addr else ""
    if local in BOUNCE_LOCALPARTS:
        return True
    if patterns is not None:
        if local and local in patterns.localparts and local not in NOT_MAIL_SYSTEMS:
            return True
        if local and any(piece in local for piece in patterns.localpart_contains):
            return True
        if m.sender.name.strip().lower() in patterns.display_names:
            return True
    return _subject_kind(m, patterns) == "bounce"


def auto_reply_marks(m: InboundMail, patterns: Patterns | None) -> bool:
    """Whether the mail is an automatic reply to a mail (out-of-office, vacation, another helpdesk's receipt)."""
    if m.header("auto-submitted").split(";")[0].strip().lower() == "auto-replied":
        return True
    if m.header("precedence").strip().lower() in ("auto_reply", "auto-reply"):
        return True
    if any(m.header(name) for name in ("x-autoreply", "x-autorespond", "x-autoresponder")):
        return True
    if m.sender.addr.split("@", 1)[0].lower() in AUTOREPLY_LOCALPARTS:
        return True
    return _subject_kind(m, patterns) == "auto-reply"


@dataclass(frozen=True)
class Assessment:
    reason: str | None  # why no automatic reply may go back (the report's evidence when there is a report)
    answer: str | None = None  # dsn, bounce, mdn, arf, auto-reply: automated mail that answers a mail
    report: DeliveryReport = NONE
    headers: str | None = None  # the header/sender/subject reason, when the report's evidence replaced it


def assess(m: InboundMail, own_addresses: frozenset[str], patterns: Patterns | None = None) -> Assessment:
    """The loop guard's whole judgement of one message (pure; also used by tests/wild/report.py)."""
    reason = automation_reason(m, own_addresses, patterns)
    if reason is None:
        return Assessment(None)
    if bounce_marks(m, patterns):
        report = read_report(m.raw)
        if report.kind != "none":
            return Assessment(report.evidence, report.kind, report, reason)
        return Assessment(reason, "auto-reply" if auto_reply_marks(m, patterns) else "bounce")
    if auto_reply_marks(m, patterns):
        return Assessment(reason, "auto-reply")
    return Assessment(reason)


class LoopGuard:
    name: ClassVar[str] = "loop_guard"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        found = assess(incoming.mail, incoming.config.own_addresses, incoming.config.automated)
        origin = verdict.origin
        origin.automated, origin.answer = found.reason, found.answer
        origin.report = found.report if found.report.kind != "none" else None
        if found.reason is None:
            return Finding(False, "human")
        detail: dict[str, Any] = {}
        if found.answer:
            detail["answer"] = found.answer
        if found.headers and found.headers != found.reason:
            detail["also"] = found.headers
        return Finding(True, "automated", found.reason, detail)
