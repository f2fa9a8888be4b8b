"""The long run, `casebot run`: signals, sd_notify, the mailbox leader lock, the IDLE loop and the scheduler.

Owns the daemon's life cycle: the mailbox loop in the main thread (IDLE or poll, look again after a pass that
stored mail, reconnect with backoff), delivery on the courier's thread (`casebot.courier`: kicked by each ingest
commit, so acknowledgements leave while the next batch is ingested, and every `daemon.deliver_interval`), the
scheduled jobs on APScheduler's thread pool (the reminder scan, the daily digest, health; each a `Runtime` method
given the same clock), SIGTERM finishing the message in hand,
sd_notify READY/WATCHDOG/STOPPING, on PostgreSQL the advisory lock that lets one instance hold the mailbox, and
the daemon's health: the `/metrics` and `/healthz` listener (`metrics.listen`) up from start to stop, its facts
published to the state file every few seconds for `casebot status`.
The only importer of apscheduler. Must not contain mail logic or SQL, or build adapters (the composition root,
`service`, does).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from casebot import clock, housekeeping, memory, metrics, monitor
from casebot.config import ConfigError, Settings
from casebot.service import Clock, Runtime
from casebot.store import StoreError, StoreUnavailable
from casebot.transport import MailboxUnavailable

log = structlog.get_logger("casebot.daemon")


def sd_notify(message: str) -> None:
    """systemd's notify protocol in a few lines (no extra dependency): READY=1, WATCHDOG=1, STOPPING=1."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError:
        pass


class Daemon:
    """`casebot run`: the mailbox loop in the main thread, delivery on the courier's, scheduled jobs on
    APScheduler's thread pool."""

    def __init__(self, settings: Settings, now: Clock = clock.utcnow) -> None:
        self.settings = settings
        self.now = now
        self.runtime = Runtime.build(settings, now)
        self.stop = threading.Event()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.reporter = monitor.Reporter(settings, self.runtime.metrics, now, "daemon")
        self.listener: metrics.Listener | None = None
        # Delivery on its own thread, kicked by every ingest commit and every job that queues mail.
        self.courier = self.runtime.courier(settings.daemon.deliver_interval)

    def _job(self, name: str, run: Callable[[], None]) -> Callable[[], None]:
        def tick() -> None:
            structlog.contextvars.clear_contextvars()  # contextvars do not cross into scheduler threads cleanly
            try:
                run()
            except StoreError as exc:
                log.error(f"{name}.store_error", error=str(exc))
            except Exception:
                # A tick must never kill the scheduler thread.
                log.exception(f"{name}.crashed")

        return tick

    def _remind(self) -> None:
        if self.runtime.autoclose_once():
            self.courier.kick()
        stats = self.runtime.remind_once()
        if stats.queued:
            log.info("remind.tick", scanned=stats.scanned, **stats.queued)
            self.courier.kick()

    def _digest(self) -> None:
        if self.runtime.digest_once():
            self.courier.kick()

    def _publish(self) -> None:
        monitor.sync_tokens(self.runtime.token_statuses())
        self.reporter.publish()

    def _health(self) -> tuple[bool, dict[str, Any]]:
        """/healthz: the verdict on this daemon's own facts and the database, as of now."""
        monitor.sync_tokens(self.runtime.token_statuses())
        verdict = monitor.live(self.runtime.store, self.reporter, monitor.thresholds(self.settings))
        return verdict.healthy, verdict.as_json()

    def _listen(self) -> None:
        address = self.settings.metrics.address
        if address is None:
            return
        try:
            self.listener = metrics.Listener(*address, self.runtime.metrics, self._health)
        except OSError as exc:
            self.runtime.close()
            raise ConfigError(f"metrics.listen: cannot listen on {self.settings.metrics.listen!r}: "
                              f"{exc.strerror or exc}") from exc
        log.info("metrics.listening", host=address[0], port=self.listener.port)

    def jobs(self) -> dict[str, tuple[Callable[[], None], float]]:
        """Scheduled jobs: name -> (run, interval in seconds). A new periodic job is one entry here. The database
        holds every deadline; these are only tickers, so a tick missed during downtime is caught up by the next."""
        return {
            "remind": (self._remind, self.settings.sla.reminders.scan_interval),
            "digest": (self._digest, 60.0),
            "health": (self._publish, min(15.0, self.settings.health.stale_seconds / 3)),
            **({"retention": (self._retention, 86400.0)} if self.settings.retention.enabled else {}),
        }

    def _retention(self) -> None:
        """The daily purge ([retention]); a run that hit `retention.batch` goes on a minute later."""
        done = housekeeping.retention_once(self.runtime.store, self.settings, self.now())
        log.info("retention.run", **done.counts(), more=done.more)
        if done.more:
            self.scheduler.modify_job("retention", next_run_time=clock.utcnow() + dt.timedelta(minutes=1))

    def _signal(self, signum: int, _frame: Any) -> None:
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        sd_notify("STOPPING=1")
        self.stop.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        s = self.settings
        lock = f"casebot-mailbox:{s.mailbox.kind}:{s.mailbox.host}:{s.mailbox.username}:{s.mailbox.folder}"
        leader = self.runtime.store.acquire_leader(lock) if self.runtime.mailbox else True
        self.runtime.metrics.watching(leader and self.runtime.mailbox is not None)
        self._listen()
        for name, (run, seconds) in self.jobs().items():
            self.scheduler.add_job(self._job(name, run), "interval", seconds=seconds, id=name, max_instances=1,
                                   coalesce=True, next_run_time=clock.utcnow(), misfire_grace_time=None)
        memory.settle()  # what start-up built lives as long as the process: out of the collector's way
        self.scheduler.start()
        self.courier.start()
        sd_notify("READY=1")
        log.info("daemon.started", mailbox=s.mailbox.kind, outgoing=s.outgoing.kind, leader=leader)
        if s.staff.addresses and not s.staff.authserv_id:
            log.warning("staff.unauthenticated", why="staff.authserv_id is not set: staff identity rests on the "
                                                     "From header alone")
        try:
            self._mailbox_loop(lock, leader)
        finally:
            self.courier.finish()  # a delivery in flight finishes its message
            self.scheduler.shutdown(wait=True)
            if self.listener is not None:
                self.listener.close()
            self.reporter.publish(running=False)
            self.runtime.close()
            log.info("daemon.stopped")
        return 0

    def _mailbox_loop(self, lock: str, leader: bool) -> None:
        s, mailbox = self.settings, self.runtime.mailbox
        delay = 1.0
        while not self.stop.is_set():
            sd_notify("WATCHDOG=1")  # from the mailbox loop itself: a hung socket stops the heartbeat
            if mailbox is None or not leader:
                # A follower asks again soon: the leader may have died (its lock goes with its connection).
                self.stop.wait(s.mailbox.poll_interval if mailbox is None else 5.0)
                if not leader and mailbox is not None:
                    try:
                        leader = self.runtime.store.acquire_leader(lock)
                    except (StoreUnavailable, StoreError) as exc:  # the database is away: ask again later
                        log.warning("database.unavailable", error=str(exc))
                    if leader:
                        log.info("mailbox.leader_acquired", lock=lock)
                        self.runtime.metrics.watching(True)
                continue
            try:
                if not self.runtime.store.holds_leader():
                    # The lock went with its connection (database restart or failover): another instance may
                    # hold the mailbox now. Follow, and try to take it again; the dedupe key keeps a message
                    # that two instances both fetched in one case either way.
                    log.warning("mailbox.leader_lost", lock=lock)
                    leader = False
                    self.runtime.metrics.watching(False)
                    continue
                stats = self.runtime.ingest_once(self.stop, self.courier.kick)
                self.reporter.publish(if_changed=True)
                if stats.seen:
                    log.info("ingest.tick", seen=stats.seen, **stats.counts)
                delay = 1.0
                if stats.seen > stats.counts.get("failed", 0):
                    # Mail that arrived during the pass was announced before IDLE began: look again now, and
                    # wait only after a pass that found nothing new (failures retry on the next round).
                    continue
                if not self.stop.is_set():
                    self.runtime.metrics.idle(s.mailbox.kind == "imap" and s.mailbox.idle)
                    try:
                        mailbox.wait(s.mailbox.poll_interval, self.stop)
                    finally:
                        self.runtime.metrics.idle(False)
            except (MailboxUnavailable, StoreUnavailable, StoreError) as exc:
                log.warning("mailbox.unavailable", error=str(exc), retry_in=round(delay, 1))
                self.reporter.publish(if_changed=True)
                mailbox.close()
                self.stop.wait(delay)
                delay = min(delay * 2, s.mailbox.reconnect_max_delay)
