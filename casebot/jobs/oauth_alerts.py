"""The OAuth2 alert: a failing token or a client secret near its expiry, logged and mailed once to staff.notify.

Owns the decision to alert from the tokens' `TokenStatus` snapshots: a failing token is mailed once per failure
(key `oauth:token_failed:<token>:<day it began>`), a client secret within `secret_warn_days` of its expiry once
per expiry date (`oauth:secret_expiring:<token>:<date>`), both queued through the outbox like every other mail
and logged as errors (`oauth.token_failed` is logged by `casebot.oauth` when the failure happens,
`oauth.secret_expiring` here). Must not refresh tokens or talk to any server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from casebot.notices import NoticeError, Notices
from casebot.oauth import TokenStatus
from casebot.store import Store, StoreError

log = structlog.get_logger("casebot.jobs.oauth_alerts")


@dataclass
class OAuthAlerts:
    """Remembers what it logged in this process, so a condition that lasts is logged once, not every tick."""

    notices: Notices
    notify: str  # staff.notify; empty: logged only
    timezone: dt.tzinfo = dt.UTC
    _logged: set[str] = field(default_factory=set)

    def run(self, store: Store, statuses: Iterable[TokenStatus], now: dt.datetime) -> list[str]:
        """Queue what is due; returns the idempotency keys queued now."""
        queued: list[str] = []
        today = now.astimezone(self.timezone).date()
        for status in statuses:
            if status.failing:
                since = status.failing_since or now
                day = since.astimezone(self.timezone).date()
                self._queue(store, queued, "token_failed", status, day, now, detail=status.reason, since=since)
            left = status.secret_days_left(today)
            if left is not None and status.secret_expires is not None:
                key = f"secret_expiring:{status.name}:{status.secret_expires}"
                if key not in self._logged:
                    self._logged.add(key)
                    log.error("oauth.secret_expiring", token=status.name, expires=status.secret_expires.isoformat(),
                              days_left=left)
                self._queue(store, queued, "secret_expiring", status, status.secret_expires, now, days_left=left,
                            detail=f"client secret expires {status.secret_expires.isoformat()}")
        return queued

    def _queue(self, store: Store, queued: list[str], problem: str, status: TokenStatus, day: dt.date,
               now: dt.datetime, *, detail: str, days_left: int = 0, since: dt.datetime | None = None) -> None:
        if not self.notify:
            return
        try:
            notice = self.notices.oauth_alert(token=status.name, problem=problem, detail=detail, day=day,
                                              to=(self.notify,), now=now, days_left=days_left, since=since)
        except NoticeError as exc:
            log.error("oauth.alert_unbuildable", token=status.name, problem=problem, error=str(exc))
            return
        try:
            with store.transaction() as tx:
                if not tx.queue(notice, case_id=None, now=now):
                    return  # mailed already: once per failure, once per secret
        except StoreError as exc:
            log.error("oauth.alert_not_queued", token=status.name, problem=problem, error=str(exc))
            return
        queued.append(notice.key)
        log.info("oauth.alert_queued", token=status.name, problem=problem, key=notice.key)
