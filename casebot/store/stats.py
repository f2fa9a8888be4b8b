"""Counts for metrics and health, read at scrape time: outbox by status, open cases, quarantine.

Owns `read_stats`: three cheap grouped queries (outbox count and oldest row per status, cases by priority and
status except closed, quarantine count and bytes), whatever the size of the tables' text columns (no row is
loaded). Must not write anything or decide what is healthy (`casebot.health` does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from casebot.store.schema import Case, Outbox, Quarantined


@dataclass(frozen=True)
class StoreStats:
    outbox: dict[str, int] = field(default_factory=dict)  # status -> rows
    outbox_oldest: dict[str, dt.datetime] = field(default_factory=dict)  # status -> oldest created_at
    cases: dict[tuple[str, str], int] = field(default_factory=dict)  # (priority, status) -> open cases
    quarantined: int = 0
    quarantined_bytes: int = 0


def read_stats(session: Session) -> StoreStats:
    outbox: dict[str, int] = {}
    oldest: dict[str, dt.datetime] = {}
    for status, n, first in session.execute(
        select(Outbox.status, func.count(), func.min(Outbox.created_at)).group_by(Outbox.status)
    ):
        outbox[status] = int(n)
        if first is not None:
            oldest[status] = first if first.tzinfo else first.replace(tzinfo=dt.UTC)
    cases = {
        (priority, status): int(n)
        for priority, status, n in session.execute(
            select(Case.priority, Case.status, func.count()).where(Case.status != "closed")
            .group_by(Case.priority, Case.status)
        )
    }
    count, size = session.execute(
        select(func.count(Quarantined.id), func.coalesce(func.sum(func.length(Quarantined.raw)), 0))
    ).one()
    return StoreStats(outbox, oldest, cases, int(count or 0), int(size or 0))
