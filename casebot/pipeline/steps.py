"""The steps of the default chain, each one decision about one inbound message.

Owns: recognising casebot's own mail, the RFC 3834 loop guard, threading, keyword priority and the
acknowledgement policy (including the per-sender rate limit). Each step records what it decided and why in the
trace. Must not write anything or send mail: the ingest job applies the decisions in one transaction.
"""

from __future__ import annotations

from casebot import mail as mailmodel
from casebot.pipeline import priority as prio
from casebot.pipeline.base import CaseView, Context, Stop, step

_NO_REPLY_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
_NO_REPLY_LOCALPARTS = {"noreply", "no-reply", "donotreply", "do-not-reply", "no_reply"}
_BOUNCE_LOCALPARTS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "bounce", "bounces"}


@step("own_mail")
def own_mail(ctx: Context) -> None:
    """Mail casebot sent (an acknowledgement that came back, say) never becomes a case."""
    mid = ctx.mail.message_id
    if mid and ctx.lookup.is_own_message_id(mid):
        ctx.own_mail = True
        ctx.record("own_mail", "ignored", why="Message-ID was sent by casebot")
        raise Stop
    if ctx.mail.sender.addr in ctx.config.own_addresses and ctx.mail.header("x-casebot-reference"):
        ctx.own_mail = True
        ctx.record("own_mail", "ignored", why="sent from casebot's own address with casebot's marker header")
        raise Stop
    ctx.record("own_mail", "not own")


def automation_reason(m: mailmodel.InboundMail, own_addresses: frozenset[str]) -> str | None:
    """Why no automatic reply may go to this message's sender (RFC 3834 and common practice), or None."""
    auto = m.header("auto-submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = m.header("precedence").strip().lower()
    if precedence in _NO_REPLY_PRECEDENCE:
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
    if local in _BOUNCE_LOCALPARTS:
        return f"sender {local}@ (bounce)"
    if m.content_type == "multipart/report":
        return "multipart/report (delivery status notification)"
    if m.sender.addr in own_addresses:
        return "sender is casebot's own address"
    if local in _NO_REPLY_LOCALPARTS:
        return f"sender {local}@ does not accept replies"
    return None


@step("loop_guard")
def loop_guard(ctx: Context) -> None:
    reason = automation_reason(ctx.mail, ctx.config.own_addresses)
    ctx.automated = reason
    ctx.record("loop_guard", "automated" if reason else "human", **({"why": reason} if reason else {}))


def _belongs(ctx: Context, participants: frozenset[str], requester: str) -> str | None:
    sender = ctx.mail.sender.addr
    if not sender:
        return None
    if sender in participants:
        return "sender is a participant"
    domain = sender.rpartition("@")[2]
    if domain and domain == requester.rpartition("@")[2] and domain not in ctx.config.public_domains:
        return f"sender is from the requester's domain {domain}"
    return None


@step("threading")
def threading(ctx: Context) -> None:
    m = ctx.mail
    ids = m.thread_ids
    if ids:
        case = ctx.lookup.case_for_message_ids(ids)
        if case is not None and case.status != "closed":
            _attach(ctx, case, "In-Reply-To/References matches a stored message")
            return
        if case is not None:
            ctx.linked_to = case.reference
            ctx.record("threading", "new case linked", reference=case.reference, why="case is closed")
            return
    for reference in ctx.config.reference_format.find(m.subject):
        case = ctx.lookup.case_by_reference(reference)
        if case is None:
            ctx.record("threading", "unknown reference", reference=reference)
            continue
        why = _belongs(ctx, case.participants, case.requester)
        if why and case.status != "closed":
            _attach(ctx, case, f"reference in subject; {why}")
            return
        # A guessed or forwarded reference never reads or writes someone else's case; a closed case stays closed.
        ctx.linked_to = case.reference
        ctx.record(
            "threading",
            "new case linked",
            reference=case.reference,
            why="case is closed" if why else "sender is not a participant of the referenced case",
        )
        return
    ctx.record("threading", "new case")


def _attach(ctx: Context, case: CaseView, why: str) -> None:
    ctx.case = case
    ctx.record("threading", "attach", reference=case.reference, why=why)
    if case.status in ("resolved", "waiting") and ctx.automated is None:
        # The client answered: a resolved case is reopened, a case waiting on the client is back with us.
        ctx.reopen = True
        ctx.record("status", "reopen", previous=case.status, why="client replied")


@step("priority")
def priority(ctx: Context) -> None:
    if ctx.case is not None:
        ctx.record("priority", "unchanged", why="reply to an existing case")
        return
    body = mailmodel.visible_body(ctx.mail, ctx.config.body_chars)
    found = prio.match(ctx.config.rules, ctx.mail.subject, body)
    if found is None:
        ctx.priority, ctx.priority_rule = ctx.config.default_priority, None
        ctx.record("priority", ctx.priority, why="no rule matched: default")
        return
    ctx.priority, ctx.priority_rule = found.rule.priority, found.rule.name
    ctx.record("priority", found.rule.priority, rule=found.rule.name, where=found.where, keyword=found.keyword)


@step("acknowledgement")
def acknowledgement(ctx: Context) -> None:
    def suppress(why: str) -> None:
        ctx.acknowledge, ctx.ack_reason = False, why
        ctx.record("acknowledgement", "suppressed", why=why)

    if ctx.case is not None:
        return suppress("reply to an existing case")
    if not ctx.config.ack_enabled:
        return suppress("acknowledgements disabled (acknowledgement.enabled = false)")
    if ctx.automated:
        return suppress(f"automated mail: {ctx.automated}")
    m = ctx.mail
    ctx.ack_to = m.reply_to.addr if m.reply_to and m.reply_to.addr else m.sender.addr
    if not ctx.ack_to or ctx.ack_to in ctx.config.own_addresses:
        return suppress(f"no address to reply to (Reply-To/From: {ctx.ack_to or 'empty'})")
    local = ctx.ack_to.split("@", 1)[0]
    if local in _BOUNCE_LOCALPARTS or local in _NO_REPLY_LOCALPARTS:
        return suppress(f"Reply-To {ctx.ack_to} does not take replies")
    limit = ctx.config.ack_rate_limit
    if limit:
        # Counted per destination: a forged Reply-To cannot turn casebot into a mail cannon aimed at a victim.
        since = ctx.now - ctx.config.ack_rate_window
        sent = ctx.lookup.acks_to(ctx.ack_to, since)
        if sent >= limit:
            return suppress(f"rate limit: {sent} acknowledgements to {ctx.ack_to} in the window (limit {limit})")
        # And per sender: varying Reply-To must not buy one sender more acknowledgements.
        caused = ctx.lookup.acks_for_sender(m.sender.addr, since)
        if caused >= limit:
            return suppress(f"rate limit: {caused} acknowledgements for mail from {m.sender.addr} in the window "
                            f"(limit {limit})")
    ctx.acknowledge, ctx.ack_reason = True, "new case"
    ctx.record("acknowledgement", "send")
    return None
