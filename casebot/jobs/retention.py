"""The retention job: old data goes on the schedule the admin set (`[retention]`, `casebot retention run`).

Owns the cutoffs (`now` minus each `*_days`; 0 keeps forever), the order (closed cases deleted first, then raw
mail, then attachment data, each at most `batch` rows a run), the audit (one `admin_log` row per run with the
counts, and a `retention.purged` event on each case whose mail was emptied) and the dry run (the same writes,
rolled back). A run that hit a bound says `more`, so the daemon runs it again soon. Must not build SQL (the store
does) or schedule anything (the daemon does).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from casebot.store import Store


@dataclass(frozen=True)
class RetentionPolicy:
    raw_days: int = 0
    attachments_days: int = 0
    closed_case_days: int = 0
    batch: int = 500

    @property
    def enabled(self) -> bool:
        return bool(self.raw_days or self.attachments_days or self.closed_case_days)


@dataclass
class Purged:
    dry_run: bool
    raw_messages: int = 0
    raw_outbox: int = 0
    attachments: int = 0
    cases_deleted: list[str] = field(default_factory=list)
    rows_deleted: dict[str, int] = field(default_factory=dict)
    more: bool = False  # a bound was hit: more is due than one run does

    def counts(self) -> dict[str, int]:
        return {"raw_messages": self.raw_messages, "raw_outbox": self.raw_outbox, "attachments": self.attachments,
                "cases_deleted": len(self.cases_deleted)}

    def summary(self) -> str:
        c = self.counts()
        rows = ", ".join(f"{k} {v}" for k, v in sorted(self.rows_deleted.items()) if v and k != "cases")
        return (f"{'would purge' if self.dry_run else 'purged'}: raw mail of {c['raw_messages']} message(s) and "
                f"{c['raw_outbox']} outbox mail(s), {c['attachments']} attachment(s); "
                f"{'would delete' if self.dry_run else 'deleted'} {c['cases_deleted']} closed case(s)"
                + (f" ({rows})" if rows else "") + ("; more is due: the next run goes on" if self.more else ""))


class _Rollback(Exception):
    """Ends a dry run's transaction."""


def run_retention(store: Store, policy: RetentionPolicy, now: dt.datetime, actor: str = "casebot retention",
                  dry_run: bool = False) -> Purged:
    """One bounded run of every rule that is on, in one transaction (rolled back for a dry run)."""
    result = Purged(dry_run)
    if not policy.enabled:
        return result
    try:
        with store.transaction() as tx:
            events: dict[int, Counter[str]] = {}
            if policy.closed_case_days:
                refs, rows, more = tx.delete_closed_cases(now - dt.timedelta(days=policy.closed_case_days),
                                                          policy.batch)
                result.cases_deleted, result.rows_deleted = refs, dict(rows)
                result.more |= more
            if policy.raw_days:
                per_case, total, outbox, more = tx.purge_raw(now - dt.timedelta(days=policy.raw_days), now,
                                                             policy.batch)
                result.raw_messages, result.raw_outbox, result.more = total, outbox, result.more or more
                for case_id, n in per_case.items():
                    events.setdefault(case_id, Counter())["raw"] += n
            if policy.attachments_days:
                per_case, total, more = tx.purge_attachments(now - dt.timedelta(days=policy.attachments_days), now,
                                                             policy.batch)
                result.attachments, result.more = total, result.more or more
                for case_id, n in per_case.items():
                    events.setdefault(case_id, Counter())["attachments"] += n
            for case_id, purged in sorted(events.items()):
                tx.event(case_id, now, "retention.purged", raw_messages=purged["raw"],
                         attachments=purged["attachments"],
                         raw_days=policy.raw_days, attachments_days=policy.attachments_days)
            tx.admin_log(now, actor, "retention.run", "", **result.counts(), rows_deleted=result.rows_deleted,
                         cases=result.cases_deleted[:100], more=result.more, raw_days=policy.raw_days,
                         attachments_days=policy.attachments_days, closed_case_days=policy.closed_case_days,
                         batch=policy.batch)
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return result

