"""Composition root: builds the adapters from settings and runs the jobs, once (`poll`) or as a daemon (`run`).

Owns wiring (which mailbox, which sender, which templates and rules), the daemon's life cycle (APScheduler ticks
for delivery, an IDLE/poll loop for the mailbox, reconnect with backoff, SIGTERM finishing the message in hand,
sd_notify READY/WATCHDOG/STOPPING) and the one-instance-per-mailbox lock on PostgreSQL. The only importer of
apscheduler. Must not contain mail logic or SQL.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from casebot import clock
from casebot import mail as mailmodel
from casebot.config import ConfigError, Settings
from casebot.jobs.deliver import DeliverPolicy, DeliverStats, deliver
from casebot.jobs.ingest import IngestDeps, IngestStats, StoreUnavailable, ingest_mailbox
from casebot.pipeline import PipelineConfig
from casebot.pipeline.priority import RulesError, load_rules
from casebot.store import ArgumentError, Store, StoreError
from casebot.templates import TemplateError, Templates
from casebot.transport import Mailbox, MailboxUnavailable, Sender

log = structlog.get_logger("casebot.service")

TEMPLATES = ["acknowledgement.txt.j2"]


def default_rules_path() -> Path:
    return Path(str(resources.files("casebot._config").joinpath("priority.toml")))


def own_addresses(settings: Settings) -> frozenset[str]:
    found = {mailmodel.first_address(settings.outgoing.from_address).addr}
    found |= {a.lower() for a in settings.cases.own_addresses}
    if "@" in settings.mailbox.username:
        found.add(settings.mailbox.username.lower())
    return frozenset(found - {""})


def build_deps(settings: Settings) -> IngestDeps:
    """Everything the pipeline and the acknowledgement need, validated now: a bad rules file or template is a
    configuration error at start-up, never a surprise in the middle of a client's mail."""
    rules_path = settings.resolve_path(settings.priority.rules_file) if settings.priority.rules_file else None
    try:
        rules = load_rules(rules_path or default_rules_path())
    except RulesError as exc:
        raise ConfigError(f"priority.rules_file: {exc}") from exc
    tdir = settings.resolve_path(settings.templates.dir) if settings.templates.dir else None
    if tdir is not None and not tdir.is_dir():
        raise ConfigError(f"templates.dir: {str(tdir)!r} is not a directory")
    templates = Templates(tdir, settings.sla.timezone)
    try:
        templates.check(TEMPLATES)
    except TemplateError as exc:
        raise ConfigError(f"templates.dir: {exc}") from exc
    ack = settings.acknowledgement
    name = mailmodel.first_address(settings.outgoing.from_address).name
    return IngestDeps(
        pipeline=PipelineConfig(
            reference_format=settings.reference_format,
            own_addresses=own_addresses(settings),
            public_domains=frozenset(d.lower() for d in settings.cases.public_domains),
            rules=rules,
            default_priority=settings.priority.default,
            body_chars=settings.priority.body_chars,
            ack_enabled=ack.enabled,
            ack_rate_limit=ack.rate_limit,
            ack_rate_window=dt.timedelta(minutes=ack.rate_window_minutes),
        ),
        sla=settings.sla_policy(),
        templates=templates,
        from_address=settings.outgoing.from_address,
        team_name=name or "Support",
        max_attempts=settings.mailbox.max_attempts,
    )


def build_mailbox(settings: Settings) -> Mailbox | None:
    s = settings.mailbox
    if s.kind == "imap":
        from casebot.imap import ImapMailbox

        return ImapMailbox(s, settings.secret("mailbox").resolve())
    if s.kind == "maildir":
        from casebot.maildir import MaildirMailbox

        return MaildirMailbox(settings.resolve_path(s.path), s.processed_folder, s.quarantine_folder)
    return None  # kind = "pipe": mail arrives through `casebot ingest`


def build_sender(settings: Settings) -> Sender:
    s = settings.outgoing
    if s.kind == "smtp":
        from casebot.smtp import SmtpSender

        return SmtpSender(s, settings.secret("outgoing").resolve())
    from casebot.maildir import MaildirSender

    return MaildirSender(settings.resolve_path(s.path))


def deliver_policy(settings: Settings) -> DeliverPolicy:
    s = settings.outgoing
    return DeliverPolicy(s.max_attempts, s.retry_base, s.retry_max)


def database_url(settings: Settings) -> str:
    url = settings.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and settings.source is not None:
        # A relative SQLite path is relative to the config file, like every other path in it.
        url = "sqlite:///" + str(settings.resolve_path(url[len("sqlite:///") :]))
    if url.startswith("sqlite:////"):
        try:
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"database.url: cannot create the folder of {url!r}: {exc.strerror}") from exc
    return url


def make_store(settings: Settings) -> Store:
    """The store for `database.url`, not yet connected or upgraded."""
    try:
        return Store(database_url(settings))
    except (ArgumentError, ImportError) as exc:
        # A URL SQLAlchemy cannot read, or a driver that is not installed: the admin's to fix, not a retry.
        hint = " (PostgreSQL needs: pip install 'casebot[postgres]')" if "psycopg" in str(exc) else ""
        raise ConfigError(f"database.url: {exc}{hint}") from exc


def open_store(settings: Settings, upgrade: bool | None = None) -> Store:
    """The store, its schema upgraded (or checked, with `database.auto_upgrade = false`)."""
    store = make_store(settings)
    if settings.database.auto_upgrade if upgrade is None else upgrade:
        store.upgrade()
    elif store.revision() != store.head():
        raise ConfigError(
            f"database.url: schema is at {store.revision()}, casebot needs {store.head()}: run 'casebot db upgrade'"
        )
    return store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    deps: IngestDeps
    mailbox: Mailbox | None
    sender: Sender
    now: Callable[[], dt.datetime]

    @classmethod
    def build(cls, settings: Settings, now: Callable[[], dt.datetime] = clock.utcnow) -> Runtime:
        deps = build_deps(settings)
        mailbox = build_mailbox(settings)
        sender = build_sender(settings)
        store = open_store(settings)
        if store.is_sqlite:
            store.outbox_release_all()  # SQLite serves one instance: leases left by a crashed run are ours
        return cls(settings, store, deps, mailbox, sender, now)

    def ingest_once(self, stop: threading.Event) -> IngestStats:
        if self.mailbox is None:
            return IngestStats()
        self.mailbox.open()
        return ingest_mailbox(self.mailbox, self.store, self.deps, self.now, stop, self.settings.mailbox.batch_size)

    def deliver_once(self, stop: threading.Event) -> DeliverStats:
        return deliver(self.store, self.sender, deliver_policy(self.settings), self.now, stop)

    def close(self) -> None:
        if self.mailbox is not None:
            self.mailbox.close()
        self.sender.close()
        self.store.close()


@dataclass
class PollResult:
    ingest: IngestStats
    deliver: DeliverStats
    errors: list[str]


def poll(settings: Settings) -> PollResult:
    """One full pass: ingest everything waiting, then deliver the outbox. Transport errors are reported, not
    raised, so `casebot poll` from cron says what went wrong and exits non-zero."""
    runtime = Runtime.build(settings)
    stop = threading.Event()
    errors: list[str] = []
    ingest = IngestStats()
    sent = DeliverStats()
    try:
        try:
            ingest = runtime.ingest_once(stop)
        except (MailboxUnavailable, StoreUnavailable) as exc:
            errors.append(str(exc))
            log.error("mailbox.unavailable", error=str(exc))
        sent = runtime.deliver_once(stop)
        if sent.connection_error:
            errors.append(sent.connection_error)
    finally:
        runtime.close()
    return PollResult(ingest, sent, errors)


# --- the daemon ----------------------------------------------------------------------------------------------


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
    """`casebot run`: the mailbox loop in the main thread, delivery ticks on APScheduler's thread pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime.build(settings)
        self.stop = threading.Event()
        self.wake_deliver = threading.Event()
        self.scheduler = BackgroundScheduler(timezone="UTC")

    def _deliver_tick(self) -> None:
        structlog.contextvars.clear_contextvars()  # contextvars do not cross into scheduler threads cleanly
        try:
            stats = self.runtime.deliver_once(self.stop)
            if stats.connection_error:
                log.warning("outgoing.unavailable", error=stats.connection_error)
        except StoreError as exc:
            log.error("deliver.store_error", error=str(exc))
        except Exception:
            # A tick must never kill the scheduler thread.
            log.exception("deliver.crashed")

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
        self.scheduler.add_job(
            self._deliver_tick, "interval", seconds=s.daemon.deliver_interval, id="deliver",
            max_instances=1, coalesce=True, next_run_time=clock.utcnow(),
            misfire_grace_time=None,
        )
        self.scheduler.start()
        sd_notify("READY=1")
        log.info("daemon.started", mailbox=s.mailbox.kind, outgoing=s.outgoing.kind, leader=leader)
        delay = 1.0
        try:
            while not self.stop.is_set():
                sd_notify("WATCHDOG=1")  # from the mailbox loop itself: a hung socket stops the heartbeat
                if self.runtime.mailbox is None or not leader:
                    # A follower asks again soon: the leader may have died (its lock goes with its connection).
                    self.stop.wait(s.mailbox.poll_interval if self.runtime.mailbox is None else 5.0)
                    if not leader and self.runtime.mailbox is not None:
                        leader = self.runtime.store.acquire_leader(lock)
                    continue
                try:
                    stats = self.runtime.ingest_once(self.stop)
                    if stats.seen:
                        log.info("ingest.tick", seen=stats.seen, **stats.counts)
                        self.scheduler.modify_job("deliver", next_run_time=clock.utcnow())
                    delay = 1.0
                    if stats.seen > stats.counts.get("failed", 0):
                        # Mail that arrived during the pass was announced before IDLE began: look again now,
                        # and wait only after a pass that found nothing new (failures retry on the next round).
                        continue
                    if not self.stop.is_set():
                        self.runtime.mailbox.wait(s.mailbox.poll_interval, self.stop)
                except (MailboxUnavailable, StoreUnavailable, StoreError) as exc:
                    log.warning("mailbox.unavailable", error=str(exc), retry_in=round(delay, 1))
                    self.runtime.mailbox.close()
                    self.stop.wait(delay)
                    delay = min(delay * 2, s.mailbox.reconnect_max_delay)
        finally:
            self.scheduler.shutdown(wait=True)  # waits for a delivery in flight to finish its message
            self.runtime.close()
            log.info("daemon.stopped")
        return 0
