"""`Tx`: one transaction's worth of store operations, grouped by aggregate (the mixins it is made of).

Owns nothing but the composition: each aggregate module owns its operations. Must not add behaviour of its own.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from casebot.store.cases import CaseOps
from casebot.store.clocks import ClockOps
from casebot.store.intake import IntakeOps
from casebot.store.kept import KeptOps
from casebot.store.outbox import OutboxOps
from casebot.store.privacy import PrivacyOps
from casebot.store.reports import ReportOps
from casebot.store.retention import RetentionOps


class Tx(CaseOps, ClockOps, IntakeOps, KeptOps, OutboxOps, PrivacyOps, ReportOps, RetentionOps):
    """One transaction's worth of operations. Everything the ingest job writes for one message goes through a
    single `Tx`, so a message, its case, its events and its acknowledgement commit together or not at all. It also
    answers the pipeline's `Lookup` questions, inside that same transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
