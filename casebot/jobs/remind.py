"""The reminder scan and the daily digest: due deadlines -> reminders, breach alerts, escalations, digests.

Owns one scan as of `now`: the cases whose stored next alert moment has come (an indexed column; no job per case,
APScheduler is only the ticker), the latest alert state of each (`alerts.alerts_due`: a case that breached while
casebot was down gets the breach alert, not the reminder before it), each queued once under its idempotency key
(`remind:<ref>:<target>:<share>`, `breach:<ref>:<target>`, `escalate:<ref>:<target>`), then the case's next
moment. On PostgreSQL the due rows are claimed `FOR UPDATE SKIP LOCKED`, so several instances share the scan.
The digest goes to `staff.notify` once per business day (`digest:<date>`). Must not send mail (deliver does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import structlog

from casebot.alerts import Alert, alerts_due, time_left
from casebot.case import PRIORITIES, Status
from casebot.jobs.clocks import ClockPolicy, case_facts
from casebot.notices import DigestFacts, NoticeError, Notices, alert_key, digest_key
from casebot.store import ClockRecord, Store, StoreError, Tx

log = structlog.get_logger("casebot.remind")

BATCH = 500


@dataclass
class RemindStats:
    scanned: int = 0
    queued: dict[str, int] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)  # with dry_run: what would be queued, one line each


def _recipient(clocks: ClockPolicy, alert: Alert) -> str:
    return clocks.manager if alert.kind == "escalation" else clocks.notify


def _key(rec: ClockRecord, alert: Alert) -> str:
    return alert_key(rec.reference, alert.kind, alert.target, alert.threshold)


def _alert(tx: Tx, clocks: ClockPolicy, notices: Notices, rec: ClockRecord, alert: Alert, now: dt.datetime,
           stats: RemindStats, dry_run: bool) -> None:
    """One alert that is not queued yet (the caller checked its key)."""
    to = _recipient(clocks, alert)
    what = f"{alert.kind} {rec.reference} {alert.target} (due {alert.due.isoformat()}, share {alert.threshold:g})"
    if dry_run:
        stats.planned.append(f"{what} to {to or '(nobody: set ' + _missing(alert) + ')'}")
        return
    if not to:
        # Nobody to tell is the admin's choice to fix; the case still records that the moment passed.
        tx.event(rec.id, now, f"{alert.kind}.skipped", target=alert.target, why=f"{_missing(alert)} is not set")
        return
    view = clocks.view(rec)
    pauses = view.pauses if alert.target == "resolution" else ()
    left = time_left(clocks.sla, rec.priority, alert.due, now, view.plan, pauses)
    try:
        notice = notices.alert(alert, case_facts(rec), (to,), now, left)
    except NoticeError as exc:
        tx.event(rec.id, now, f"{alert.kind}.failed", target=alert.target, why=str(exc))
        log.error(f"{alert.kind}.render_failed", reference=rec.reference, error=str(exc))
        return
    if tx.queue(notice, case_id=rec.id, now=now, known_new=True):
        tx.event(rec.id, now, f"{notice.kind}.queued", key=notice.key, to=to, target=alert.target,
                 threshold=alert.threshold, due=alert.due.isoformat(), reached_at=alert.at.isoformat())
        stats.queued[alert.kind] = stats.queued.get(alert.kind, 0) + 1
        log.info(f"{alert.kind}.queued", reference=rec.reference, target=alert.target, threshold=alert.threshold)


def _missing(alert: Alert) -> str:
    return "escalation.manager" if alert.kind == "escalation" else "staff.notify"


def remind(store: Store, clocks: ClockPolicy, notices: Notices, now: dt.datetime,
           dry_run: bool = False) -> RemindStats:
    """One scan as of `now`. With `dry_run`, nothing is written: `planned` says what would be queued."""
    stats = RemindStats()
    for _ in range(10_000):  # bounded: each round moves every claimed case's next moment past `now`
        with store.transaction() as tx:
            # A dry run writes nothing, so it must see every due case in one read.
            recs = tx.claim_due(now, 10**9 if dry_run else BATCH, skip_locked=not store.is_sqlite)
            due = [(rec, alert) for rec in recs for alert in
                   alerts_due(clocks.sla, clocks.view(rec), now, clocks.shares, clocks.quiet, clocks.escalate)]
            # What earlier scans queued already, in one query: only the rest is rendered and queued.
            sent = tx.outbox_keys([_key(rec, alert) for rec, alert in due])
            for rec, alert in due:
                if _key(rec, alert) not in sent:
                    _alert(tx, clocks, notices, rec, alert, now, stats, dry_run)
            stats.scanned += len(recs)
            if dry_run:
                break
            tx.set_next_alerts({rec.id: clocks.next_alert(rec, now) for rec in recs})
        if len(recs) < BATCH:
            break
    return stats


# --- the daily digest ----------------------------------------------------------------------------------------------


def digest_moment(clocks: ClockPolicy, day: dt.date, at: str) -> dt.datetime | None:
    """When the digest of `day` is due (local `at`, or the opening), or None on a day that is not a business day."""
    cal = clocks.sla.calendar
    if not cal.is_business_day(day):
        return None
    hours = cal.hours_on(day)
    if not at:
        return hours[0] if hours else None
    hh, mm = (int(x) for x in at.split(":"))
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=cal.zone).astimezone(dt.UTC)


def digest(store: Store, clocks: ClockPolicy, notices: Notices, now: dt.datetime, at: str = "") -> str | None:
    """Queue today's digest once it is due; returns its key when queued now, else None."""
    if not clocks.notify:
        return None
    cal = clocks.sla.calendar
    day = cal.local_date(now)
    moment = digest_moment(clocks, day, at)
    if moment is None or now < moment:
        return None
    key = digest_key(day)
    try:
        with store.transaction() as tx:
            if tx.outbox_has(key):
                return None
            recs = tx.open_clocks()
            counts = tx.open_counts()
            summary = DigestFacts(
                open_by_priority={p.value: counts.get(p.value, 0) for p in PRIORITIES},
                due_today=tuple(case_facts(r) for r in recs if _due_on(clocks, r, day)),
                breached=tuple((case_facts(r), b) for r in recs if (b := _breached(clocks, r, now))),
                waiting_oldest=tuple(case_facts(r) for r in sorted(
                    (r for r in recs if r.status is Status.WAITING), key=lambda r: r.paused_since or r.opened_at)),
            )
            try:
                notice = notices.digest(day, summary, (clocks.notify,), now)
            except NoticeError as exc:
                log.error("digest.render_failed", error=str(exc))
                return None
            if not tx.queue(notice, case_id=None, now=now):
                return None
    except StoreError:
        # Another instance queued today's digest between our look and our insert: its unique key held.
        if _queued(store, key):
            return None
        raise
    log.info("digest.queued", key=key, open=sum(counts.values()))
    return key


def _queued(store: Store, key: str) -> bool:
    with store.transaction() as tx:
        return tx.outbox_has(key)


def _due_on(clocks: ClockPolicy, rec: ClockRecord, day: dt.date) -> bool:
    view = clocks.view(rec)
    dues = (view.first_response_due, view.resolution_due)
    return any(d is not None and clocks.sla.calendar.local_date(d) == day for d in dues)


def _breached(clocks: ClockPolicy, rec: ClockRecord, now: dt.datetime) -> tuple[str, ...]:
    view = clocks.view(rec)
    return tuple(name for name, due in (("first_response", view.first_response_due),
                                        ("resolution", view.resolution_due)) if due is not None and due <= now)
