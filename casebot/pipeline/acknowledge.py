"""Step `acknowledgement`: does the client get an acknowledgement of a new case, and at which address?

Hit (send) for a new case from a human with a usable reply address under the rate limit, counted per destination
(a forged Reply-To cannot aim casebot at a victim) and per sender (varying Reply-To buys nothing). Suppressed, with
the reason, for replies to existing cases, automated mail, `acknowledgement.enabled = false`, unusable addresses
and the rate limit (counted by the mail server's arrival time of the messages, `Incoming.arrived_at`, so a
drained backlog is judged as it arrived). Mail stored unparsed (over `mailbox.max_message_bytes`) gets none.
Must not build or queue the mail: `notices` builds it, the ingest job queues it.
"""

from __future__ import annotations

from typing import ClassVar

from casebot.mail import Address, InboundMail
from casebot.pipeline.base import Finding, Incoming, Verdict
from casebot.pipeline.loop_guard import BOUNCE_LOCALPARTS, NO_REPLY_LOCALPARTS


def reply_address(m: InboundMail) -> Address:
    """Where an acknowledgement of `m` goes: its Reply-To when it has one, else its sender."""
    return m.reply_to if m.reply_to and m.reply_to.addr else m.sender


class AcknowledgeStep:
    name: ClassVar[str] = "acknowledgement"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        why = self._suppressed(incoming, verdict)
        ack = verdict.ack
        if why:
            ack.send, ack.why = False, why
            return Finding(False, "suppressed", why)
        ack.send, ack.why = True, "new case"
        return Finding(True, "send", f"new case; acknowledgement to {ack.to}")

    @staticmethod
    def _suppressed(incoming: Incoming, verdict: Verdict) -> str | None:
        config, m = incoming.config, incoming.mail
        if verdict.placement.case is not None:
            return "reply to an existing case"
        if not config.ack_enabled:
            return "acknowledgements disabled (acknowledgement.enabled = false)"
        if verdict.origin.automated:
            return f"automated mail: {verdict.origin.automated}"
        if verdict.role.staff:
            return "the sender is staff"
        if m.unparsed_size:
            # Only the header block was read: too little to be sure it is not a bounce or an auto-reply.
            return (f"message not parsed ({m.unparsed_size} bytes, over mailbox.max_message_bytes): no "
                    "acknowledgement to mail casebot has not read")
        reply = reply_address(m)
        to = reply.addr
        verdict.ack.to = to
        if not to or to in config.own_addresses:
            return f"no address to reply to (Reply-To/From: {to or 'empty'})"
        problem = reply.problem
        if problem:  # cannot be written as a header or an envelope address (mail.address.address_problem)
            return f"requester address not deliverable: {problem} ({to})"
        local = to.split("@", 1)[0]
        if local in BOUNCE_LOCALPARTS or local in NO_REPLY_LOCALPARTS:
            return f"Reply-To {to} does not take replies"
        limit = config.ack_rate_limit
        if limit:
            # By the server's arrival time: a backlog drained in seconds is judged as it arrived (over days),
            # while an auto-replier's burst arrives within seconds and is still stopped.
            until = incoming.arrived_at
            since = until - config.ack_rate_window
            window = f"the window before its arrival at {until.isoformat()}"
            sent = incoming.lookup.acks_to(to, since, until)
            if sent >= limit:
                return f"rate limit: {sent} acknowledgements to {to} for mail arrived in {window} (limit {limit})"
            caused = incoming.lookup.acks_for_sender(m.sender.addr, since, until)
            if caused >= limit:
                return (f"rate limit: {caused} acknowledgements for mail from {m.sender.addr} arrived in {window} "
                        f"(limit {limit})")
        return None
