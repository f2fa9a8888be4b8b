"""Step `sender_role`: is the sender one of the support staff, and is that proven?

Hit when the From address is in `staff.addresses` (an address, or "@domain" for a whole domain). Proven only by
an `Authentication-Results` header of our own receiving server (`staff.authserv_id`, the top-most ones) showing
aligned DKIM or DMARC pass (`casebot.mail.authres`); without `authserv_id`, staff identity rests on the From header
alone and the finding says so. A staff mail that is not proven is stored on its case, flagged, and neither acted on
nor relayed. Must not write anything or trust a header the sender could have written.
"""

from __future__ import annotations

from typing import ClassVar

from casebot.mail import authres
from casebot.pipeline.base import Finding, Incoming, Verdict


def is_staff(address: str, staff: frozenset[str]) -> bool:
    addr = address.lower()
    return bool(addr) and (addr in staff or "@" + addr.rpartition("@")[2] in staff)


class SenderRole:
    name: ClassVar[str] = "sender_role"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        m, config, role = incoming.mail, incoming.config, verdict.role
        if not is_staff(m.sender.addr, config.staff_addresses):
            return Finding(False, "client")
        role.staff = True
        if not config.authserv_id:
            role.verified, role.evidence = True, authres.NOT_CONFIGURED
            return Finding(True, "staff", role.evidence)
        result = authres.check(m.header_items, config.authserv_id, m.sender.domain)
        role.verified, role.evidence = result.verified, result.evidence
        return Finding(True, "staff" if result.verified else "staff, unverified", result.evidence)
