"""The facts behind health, gathered and published: the state file, the snapshot, and `casebot status`.

Owns where a process's facts go (`health.state_file`, else `health.json` beside the SQLite database file, else
/var/lib/casebot/health.json when that folder exists, else nowhere), writing them atomically (a temporary file
renamed over the old one, so a reader never sees half a file), reading them back, gathering a `health.Snapshot`
(the store's counts, one cheap `Store.stats()`; a database that does not answer is a fact, not an exception) and
the three ways to a verdict: live in the daemon (`/healthz`), from the daemon's `/healthz` over HTTP, or from the
database and the state file alone when no daemon answers.
Must not decide what is healthy (`health` does) or build adapters (the caller
passes the store).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import structlog

from casebot import health, metrics
from casebot.config import Settings
from casebot.store import Store, StoreError

log = structlog.get_logger("casebot.monitor")

DEFAULT_STATE = Path("/var/lib/casebot/health.json")


def state_path(settings: Settings) -> Path | None:
    """Where the state file is; None when there is none (another database and no /var/lib/casebot)."""
    if settings.health.state_file:
        return settings.resolve_path(settings.health.state_file)
    url = settings.database.url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):].split("?", 1)[0]
        if path and path != ":memory:":
            return settings.resolve_path(path).parent / "health.json"
    return DEFAULT_STATE if DEFAULT_STATE.parent.is_dir() else None


def thresholds(settings: Settings) -> health.Thresholds:
    h = settings.health
    return health.Thresholds(h.mailbox_failed_passes, h.outbox_stuck_seconds, h.stale_seconds)


def write_state(path: Path, pub: health.Published) -> None:
    """Atomically: write a temporary file in the same folder, flush it, rename it over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".health-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(health.published_json(pub), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_state(path: Path | None) -> health.Published | None:
    if path is None:
        return None
    try:
        return health.published_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


class Reporter:
    """One process's facts (its `Metrics`, the token board), published to the state file."""

    def __init__(self, settings: Settings, observed: metrics.Metrics, now: Callable[[], dt.datetime],
                 mode: str, resume: bool = True) -> None:
        self.path, self.metrics, self.now, self.mode = state_path(settings), observed, now, mode
        self.started_at = now()
        self.running = mode == "daemon"
        self._warned = False
        self._last: tuple[bool, int, bool, bool] | None = None
        previous = read_state(self.path) if resume else None
        if previous is not None:
            # Count on from the previous run: a mailbox failing across `casebot poll` runs is still failing.
            self.metrics.resume(previous.mailbox)

    def published(self) -> health.Published:
        return health.Published(mode=self.mode, pid=os.getpid(), running=self.running, updated_at=self.now(),
                                started_at=self.started_at, mailbox=self.metrics.mailbox(),
                                tokens=metrics.tokens())

    def publish(self, running: bool | None = None, if_changed: bool = False) -> None:
        """Write the state file; with `if_changed`, only when the mailbox facts changed since the last write (a
        busy mailbox loop must not write a file per pass: the daemon's health job writes every few seconds)."""
        if running is not None:
            self.running = running
        if self.path is None:
            return
        box = self.metrics.mailbox()
        key = (box.watched, box.failures, box.connected, self.running)
        if if_changed and key == self._last:
            return
        self._last = key
        try:
            write_state(self.path, self.published())
        except OSError as exc:
            if not self._warned:  # once: a read-only state folder must not flood the journal
                log.warning("health.state_unwritable", path=str(self.path), error=exc.strerror or str(exc))
                self._warned = True


class TokenReport(Protocol):
    """One OAuth token's status (`oauth.TokenStatus`), as far as health and metrics care."""

    @property
    def name(self) -> str: ...
    @property
    def expires_at(self) -> dt.datetime | None: ...
    @property
    def failing(self) -> bool: ...
    @property
    def reason(self) -> str: ...


def sync_tokens(statuses: Iterable[TokenReport]) -> None:
    """Copy the OAuth tokens' statuses onto the token board (metrics and health read it from there)."""
    for status in statuses:
        metrics.set_token_expiry(status.name, status.expires_at)
        metrics.set_token_failing(status.name, (status.reason or "refresh failed") if status.failing else None)


def snapshot(store: Store, published: health.Published | None, live: bool) -> health.Snapshot:
    try:
        stats = store.stats()
    except StoreError as exc:
        return health.Snapshot(database_error=" ".join(str(exc).split())[:500], published=published, live=live)
    return health.Snapshot(outbox_pending=stats.outbox.get("pending", 0),
                           oldest_pending_at=stats.outbox_oldest.get("pending"), quarantined=stats.quarantined,
                           published=published, live=live)


def live(store: Store, reporter: Reporter, limits: health.Thresholds) -> health.Verdict:
    """The daemon's own verdict, for /healthz."""
    return health.judge(snapshot(store, reporter.published(), live=True), limits, reporter.now())


def local(settings: Settings, store: Store | None, now: dt.datetime, why_no_store: str = "") -> health.Verdict:
    """The verdict from the database and the state file, with no daemon to ask (`store` None: `why_no_store`)."""
    published = read_state(state_path(settings))
    snap = (snapshot(store, published, live=False) if store is not None
            else health.Snapshot(database_error=why_no_store, published=published))
    return health.judge(snap, thresholds(settings), now)


def remote(settings: Settings, timeout: float = 5.0) -> tuple[bool, dict[str, Any]] | None:
    """The running daemon's /healthz, or None when `metrics.listen` is off or nothing answers there."""
    address = settings.metrics.address
    if address is None:
        return None
    host, port = address
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1" if host != "::" else "::1"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status == 200, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code == 200, json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
