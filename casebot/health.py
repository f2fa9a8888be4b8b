"""Health, decided: a snapshot of facts and `now` in, a verdict with its reasons out (pure).

Owns what "healthy" means for `/healthz` and `casebot status`: the database answered; the mailbox did not fail
more than `health.mailbox_failed_passes` passes in a row; the oldest pending outbox mail is not older than
`health.outbox_stuck_seconds`; no OAuth token is failing; a daemon that says it is running updated its state
within `health.stale_seconds`. Also the JSON shape of the facts a daemon (or `casebot poll`) publishes in its
state file, both ways. Must not do I/O, read the clock or import an adapter: the caller gathers the facts
(`casebot.monitor`) and passes `now`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    mailbox_failed_passes: int = 3
    outbox_stuck_seconds: float = 900.0
    stale_seconds: float = 300.0


@dataclass(frozen=True)
class TokenState:
    """One OAuth token as its adapter last reported it: when it expires, and why it fails ("" = it works)."""

    expires_at: dt.datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class MailboxFacts:
    watched: bool = False  # this process passes over a mailbox (not the MTA pipe, not a follower instance)
    failures: int = 0  # failed passes in a row, 0 after a good one
    last_success_at: dt.datetime | None = None
    last_error: str = ""
    connected: bool = False


@dataclass(frozen=True)
class Published:
    """What `casebot run` (every few seconds) and `casebot poll` (after its pass) write to the state file."""

    mode: str  # "daemon" or "poll"
    pid: int
    running: bool  # a daemon between its start and its clean stop
    updated_at: dt.datetime
    started_at: dt.datetime
    mailbox: MailboxFacts = field(default_factory=MailboxFacts)
    tokens: Mapping[str, TokenState] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Everything the verdict rests on, gathered at one moment."""

    database_error: str | None = None  # None: the database answered
    outbox_pending: int = 0
    oldest_pending_at: dt.datetime | None = None
    quarantined: int = 0
    published: Published | None = None  # None: no daemon or poll has published anything yet
    live: bool = False  # gathered by the running daemon itself (its own facts cannot be stale)


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reasons: tuple[str, ...]
    facts: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.healthy else "unhealthy", "healthy": self.healthy,
                "reasons": list(self.reasons), **self.facts}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _age(now: dt.datetime, then: dt.datetime | None) -> float | None:
    return round((now - then).total_seconds(), 3) if then is not None else None


def judge(snap: Snapshot, limits: Thresholds, now: dt.datetime) -> Verdict:
    """The verdict as of `now`: healthy only when no rule below has a reason."""
    reasons: list[str] = []
    if snap.database_error is not None:
        reasons.append(f"database unreachable: {snap.database_error}")
    pub = snap.published
    box = pub.mailbox if pub is not None else MailboxFacts()
    if box.watched and box.failures > limits.mailbox_failed_passes:
        since = f", last good pass {box.last_success_at.isoformat()}" if box.last_success_at else ""
        reasons.append(f"mailbox unreachable for {box.failures} passes in a row (more than "
                       f"{limits.mailbox_failed_passes}{since}): {box.last_error}")
    pending_age = _age(now, snap.oldest_pending_at)
    if pending_age is not None and pending_age > limits.outbox_stuck_seconds:
        reasons.append(f"outbox stuck: the oldest of {snap.outbox_pending} pending mail(s) has waited "
                       f"{pending_age:.0f} s (more than {limits.outbox_stuck_seconds:g} s)")
    tokens = pub.tokens if pub is not None else {}
    for name, token in sorted(tokens.items()):
        if token.error:
            reasons.append(f"OAuth token {name} failing: {token.error}")
    daemon: dict[str, Any] = {}
    if pub is not None:
        silent = _age(now, pub.updated_at) or 0.0
        daemon = {"mode": pub.mode, "pid": pub.pid, "running": pub.running, "started_at": _iso(pub.started_at),
                  "updated_at": _iso(pub.updated_at), "seconds_since_update": silent}
        if not snap.live and pub.mode == "daemon" and pub.running and silent > limits.stale_seconds:
            reasons.append(f"the daemon (pid {pub.pid}) has not updated its state for {silent:.0f} s (more than "
                           f"{limits.stale_seconds:g} s): hung or killed")
    facts: dict[str, Any] = {
        "at": now.isoformat(),
        "database": "ok" if snap.database_error is None else snap.database_error,
        "mailbox": {"watched": box.watched, "connected": box.connected, "failed_passes": box.failures,
                    "last_success_at": _iso(box.last_success_at), "last_error": box.last_error},
        "outbox": {"pending": snap.outbox_pending, "oldest_pending_age_seconds": pending_age},
        "quarantine": snap.quarantined,
        "tokens": {n: {"expires_at": _iso(t.expires_at), "error": t.error} for n, t in sorted(tokens.items())},
        "daemon": daemon or None,
    }
    return Verdict(not reasons, tuple(reasons), facts)


# --- the state file's JSON, both ways ----------------------------------------------------------------------------


def published_json(pub: Published) -> dict[str, Any]:
    box = pub.mailbox
    return {
        "version": 1, "mode": pub.mode, "pid": pub.pid, "running": pub.running,
        "updated_at": pub.updated_at.isoformat(), "started_at": pub.started_at.isoformat(),
        "mailbox": {"watched": box.watched, "failures": box.failures, "connected": box.connected,
                    "last_success_at": _iso(box.last_success_at), "last_error": box.last_error},
        "tokens": {n: {"expires_at": _iso(t.expires_at), "error": t.error} for n, t in sorted(pub.tokens.items())},
    }


def _when(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def published_from_json(data: object) -> Published | None:
    """The facts a state file holds, or None when it is not one casebot wrote (never an exception)."""
    try:
        if not isinstance(data, dict) or data.get("version") != 1:
            return None
        box = data.get("mailbox") or {}
        updated, started = _when(data["updated_at"]), _when(data["started_at"])
        if updated is None or started is None:
            return None
        return Published(
            mode=str(data["mode"]), pid=int(data["pid"]), running=bool(data["running"]), updated_at=updated,
            started_at=started,
            mailbox=MailboxFacts(watched=bool(box.get("watched")), failures=int(box.get("failures", 0)),
                                 last_success_at=_when(box.get("last_success_at")),
                                 last_error=str(box.get("last_error", "")), connected=bool(box.get("connected"))),
            tokens={str(n): TokenState(_when(t.get("expires_at")), str(t.get("error", "")))
                    for n, t in (data.get("tokens") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
