"""Step `own_mail`: casebot's own mail coming back (an acknowledgement bounced or copied into the mailbox).

Hit when the Message-ID is one casebot sent (all of them start `casebot.`, so other ids need no look-up), or the
mail is from casebot's own address and carries its `X-Casebot-Reference` marker; then the chain stops and the
message is stored without a case. Must not write anything or look at anything but the sender and the ids.
"""

from __future__ import annotations

from typing import ClassVar

from casebot.pipeline.base import Finding, Incoming, Stop, Verdict


class OwnMail:
    name: ClassVar[str] = "own_mail"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        m = incoming.mail
        if m.message_id and m.message_id.startswith("casebot.") and incoming.lookup.is_own_message_id(m.message_id):
            verdict.origin.own_mail = True
            raise Stop(Finding(True, "ignored", "Message-ID was sent by casebot"))
        if m.sender.addr in incoming.config.own_addresses and m.header("x-casebot-reference"):
            verdict.origin.own_mail = True
            raise Stop(Finding(True, "ignored", "sent from casebot's own address with casebot's marker header"))
        return Finding(False, "not own")
