"""Composition root: builds everything from settings and ONE clock, and runs any job once.

Owns wiring: which mailbox, which sender, the priority rules (read here, the only file I/O for them), the
templates, the pipeline chain from `[pipeline] steps`, `notices`, the store; and the one-shot runs: `poll` (ingest
everything waiting, then deliver), `ingest_one` (the MTA pipe), `check`. Every job gets the same `now` callable,
so a test passes a fixed time instead of sleeping. Must not contain mail logic, SQL or the daemon's loop
(`daemon` owns signals, sd_notify, IDLE and the scheduler).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import structlog

from casebot import clock, notices
from casebot.alerts import explain, format_local
from casebot.automated import Patterns, PatternsError, parse_patterns
from casebot.case import Priority
from casebot.config import ConfigError, Settings
from casebot.courier import Courier
from casebot.jobs.clocks import ClockPolicy
from casebot.jobs.deliver import DeliverPolicy, DeliverStats, deliver
from casebot.jobs.escalate import EscalationPolicy
from casebot.jobs.ingest import IngestDeps, IngestStats, ingest_mailbox
from casebot.jobs.oauth_alerts import OAuthAlerts
from casebot.jobs.remind import RemindStats, digest, remind
from casebot.jobs.status import StatusNotifier, autoclose
from casebot.metrics import Metrics
from casebot.oauth import OAuthToken, TokenStatus
from casebot.oauth_setup import build_tokens, token_statuses
from casebot.pipeline import PipelineConfig, UnknownStep, build_chain
from casebot.rules import PriorityRule, RulesError, parse_rules
from casebot.sla import SlaPolicy
from casebot.store import BadDatabaseUrl, Store
from casebot.templates import TemplateError, Templates
from casebot.transport import Mailbox, Sender

log = structlog.get_logger("casebot.service")

Clock = Callable[[], dt.datetime]


def default_rules_path() -> Path:
    return Path(str(resources.files("casebot._config").joinpath("priority.toml")))


def load_rules(path: Path) -> tuple[PriorityRule, ...]:
    """Read and validate a priority rules file; RulesError names the file and the rule."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc
    return parse_rules(data, str(path))


def load_patterns(settings: Settings) -> Patterns:
    """The automated-mail patterns: `loop_guard.patterns_file`, else the shipped config/automated.toml."""
    given = settings.loop_guard.patterns_file
    path = settings.resolve_path(given) if given else Path(str(resources.files("casebot._config")
                                                               .joinpath("automated.toml")))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return parse_patterns(data, str(path))
    except OSError as exc:
        raise ConfigError(f"loop_guard.patterns_file: cannot read {str(path)!r}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"loop_guard.patterns_file: {path}: not valid TOML: {exc}") from exc
    except PatternsError as exc:
        raise ConfigError(f"loop_guard.patterns_file: {exc}") from exc


def own_addresses(settings: Settings) -> frozenset[str]:
    found = {notices.Identity.parse(settings.outgoing.from_address).envelope_from}
    found |= {a.lower() for a in settings.cases.own_addresses}
    if "@" in settings.mailbox.username:
        found.add(settings.mailbox.username.lower())
    return frozenset(found - {""})


def build_deps(settings: Settings) -> IngestDeps:
    """Everything the pipeline and the notices need, validated now: a bad rules file, template or step name is a
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
        templates.check(notices.templates_used())
    except TemplateError as exc:
        raise ConfigError(f"templates.dir: {exc}") from exc
    try:
        steps = build_chain(settings.pipeline.steps)
    except UnknownStep as exc:
        raise ConfigError(f"pipeline.steps[{exc.index}]: {exc}") from exc
    ack = settings.acknowledgement
    sla = settings.sla_policy()
    notifier = notices.Notices(templates, notices.Identity.parse(settings.outgoing.from_address), sla)
    return IngestDeps(
        pipeline=PipelineConfig(
            reference_format=settings.reference_format,
            own_addresses=own_addresses(settings),
            public_domains=frozenset(d.lower() for d in settings.cases.public_domains),
            rules=rules,
            default_priority=settings.default_priority,
            body_chars=settings.priority.body_chars,
            ack_enabled=ack.enabled,
            ack_rate_limit=ack.rate_limit,
            ack_rate_window=dt.timedelta(minutes=ack.rate_window_minutes),
            automated=load_patterns(settings),
            escalation_words=settings.escalation.words,
            escalation_address=settings.escalation.address,
            staff_addresses=frozenset(a.strip().lower() for a in settings.staff.addresses),
            authserv_id=settings.staff.authserv_id,
            note_address=settings.staff.note_address.lower(),
        ),
        steps=steps,
        clocks=dataclasses.replace(clock_policy(settings, sla),
                                   status=StatusNotifier(notifier, _status_kinds(settings))),
        notices=notifier,
        max_attempts=settings.mailbox.max_attempts,
        staff_notify=settings.staff.notify,
        notice_attach_max=settings.staff.notice_attachments_max_bytes,
        escalation=EscalationPolicy(settings.escalation.raise_priority,
                                    dt.timedelta(hours=settings.escalation.window_hours)),
        max_message_bytes=settings.mailbox.max_message_bytes,
    )


def _status_kinds(settings: Settings) -> frozenset[str]:
    n = settings.status_notices
    return frozenset(k for k, on in (("waiting", n.waiting), ("resolved", n.resolved), ("closed", n.closed),
                                     ("reopened", n.reopened)) if on)


def clock_policy(settings: Settings, sla: SlaPolicy | None = None) -> ClockPolicy:
    r = settings.sla.reminders
    return ClockPolicy(
        sla=sla or settings.sla_policy(), shares=tuple(r.at), quiet=frozenset(Priority(p) for p in r.quiet),
        escalate=frozenset(Priority(p) for p in settings.escalation.on_breach),
        notify=settings.staff.notify, manager=settings.escalation.manager,
    )


def build_mailbox(settings: Settings, tokens: dict[str, OAuthToken] | None = None) -> Mailbox | None:
    """`tokens`: `build_tokens(settings)` (built here when not given), for `mailbox.auth = "oauth2"`."""
    s = settings.mailbox
    if s.kind == "imap":
        from casebot.imap import ImapMailbox

        token = (tokens if tokens is not None else build_tokens(settings)).get("mailbox")
        return ImapMailbox(s, None if token else settings.secret("mailbox").resolve(), token)
    if s.kind == "maildir":
        from casebot.maildir import MaildirMailbox

        return MaildirMailbox(settings.resolve_path(s.path), s.processed_folder, s.quarantine_folder,
                              s.max_message_bytes)
    return None  # kind = "pipe": mail arrives through `casebot ingest`


def build_sender(settings: Settings, tokens: dict[str, OAuthToken] | None = None) -> Sender:
    s = settings.outgoing
    if s.kind == "smtp":
        from casebot.smtp import SmtpSender

        token = (tokens if tokens is not None else build_tokens(settings)).get("outgoing")
        return SmtpSender(s, None if token else settings.secret("outgoing").resolve(), token)
    from casebot.maildir import MaildirSender

    return MaildirSender(settings.resolve_path(s.path))


def deliver_policy(settings: Settings) -> DeliverPolicy:
    s = settings.outgoing
    return DeliverPolicy(s.max_attempts, s.retry_base, s.retry_max)


def database_url(settings: Settings, create: bool = True) -> str:
    url = settings.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and settings.source is not None:
        # A relative SQLite path is relative to the config file, like every other path in it.
        url = "sqlite:///" + str(settings.resolve_path(url[len("sqlite:///") :]))
    if url.startswith("sqlite:////") and create:
        try:
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"database.url: cannot create the folder of {url!r}: {exc.strerror}") from exc
    return url


def make_store(settings: Settings) -> Store:
    """The store for `database.url`, not yet connected or upgraded."""
    try:
        return Store(database_url(settings))
    except BadDatabaseUrl as exc:
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
    """Everything built, ready to run any job; `now` is the one clock every job reads."""

    settings: Settings
    store: Store
    deps: IngestDeps
    mailbox: Mailbox | None
    sender: Sender
    now: Clock
    tokens: dict[str, OAuthToken] = field(default_factory=dict)  # "mailbox"/"outgoing" -> its OAuth2 token
    oauth_alerts: OAuthAlerts | None = None
    metrics: Metrics = field(default_factory=Metrics)  # this runtime's own registry, fed by the jobs' observers

    @classmethod
    def build(cls, settings: Settings, now: Clock = clock.utcnow) -> Runtime:
        deps = build_deps(settings)
        tokens = build_tokens(settings, now)
        mailbox = build_mailbox(settings, tokens)
        sender = build_sender(settings, tokens)
        store = open_store(settings)
        if store.is_sqlite:
            store.outbox_release_all()  # SQLite serves one instance: leases left by a crashed run are ours
        alerts = OAuthAlerts(deps.notices, settings.staff.notify, deps.clocks.sla.calendar.zone) if tokens else None
        return cls(settings, store, deps, mailbox, sender, now, tokens, alerts,
                   Metrics(store, now, watched=mailbox is not None))

    def token_statuses(self) -> list[TokenStatus]:
        """One snapshot per distinct OAuth2 token (for health, metrics and the alert); empty with passwords."""
        return token_statuses(self.tokens)

    def oauth_alerts_once(self) -> list[str]:
        """Mail staff.notify once about a failing token or a client secret near its expiry (keys queued now)."""
        return self.oauth_alerts.run(self.store, self.token_statuses(), self.now()) if self.oauth_alerts else []

    def ingest_once(self, stop: threading.Event, committed: Callable[[], None] | None = None) -> IngestStats:
        if self.mailbox is None:
            return IngestStats()
        with self.metrics.mailbox_pass(self.now):  # connected, failed passes in a row, the last good pass
            self.mailbox.open()
            return ingest_mailbox(self.mailbox, self.store, self.deps, self.now, stop,
                                  self.settings.mailbox.batch_size, self.metrics.ingested, committed)

    def remind_once(self, at: dt.datetime | None = None, dry_run: bool = False) -> RemindStats:
        stats = remind(self.store, self.deps.clocks, self.deps.notices, at or self.now(), dry_run)
        self.metrics.alerts_queued({} if dry_run else stats.queued)
        return stats

    def autoclose_once(self) -> list[str]:
        days = self.settings.status_notices.autoclose_business_days
        with self.store.transaction() as tx:
            return autoclose(tx, self.deps.clocks, days, self.now())

    def digest_once(self) -> str | None:
        d = self.settings.digest
        return digest(self.store, self.deps.clocks, self.deps.notices, self.now(), d.time) if d.enabled else None

    def deliver_once(self, stop: threading.Event, keep_open: bool = False) -> DeliverStats:
        self.oauth_alerts_once()  # before delivering, so the alert goes out in the same pass
        return deliver(self.store, self.sender, deliver_policy(self.settings), self.now, stop, self.metrics.delivered,
                       keep_open)

    def courier(self, interval: float | None) -> Courier:
        """Delivery on its own thread (`casebot.courier`), kicked by each ingest commit."""
        return Courier(lambda halt: self.deliver_once(halt, keep_open=True), self.sender.close, interval)

    def close(self) -> None:
        if self.mailbox is not None:
            self.mailbox.close()
        self.sender.close()
        self.store.close()


@dataclass
class Admin:
    """What `casebot cases update`, `remind` and `sla explain` need: the store and the policies, nothing else."""

    settings: Settings
    store: Store
    deps: IngestDeps

    @classmethod
    def open(cls, settings: Settings) -> Admin:
        return cls(settings, open_store(settings), build_deps(settings))

    def close(self) -> None:
        self.store.close()

    def explain(self, reference: str, now: dt.datetime) -> list[str] | None:
        """`casebot sla explain`: the clocks in plain words, then every deadline change and alert on the case."""
        clocks = self.deps.clocks
        with self.store.transaction() as tx:
            case_id = tx.case_id(reference)
            if case_id is None:
                return None
            rec = tx.clock_record(case_id)
            detail = tx.case_detail(reference)
        assert detail is not None
        lines = [f"{rec.reference} ({rec.status.value}): {rec.subject}"]
        lines += explain(clocks.sla, rec.priority, rec.opened_at, clocks.plan(rec.plan), clocks.pauses(rec), now)
        if rec.first_response_at:
            lines.append(f"First response given {format_local(rec.first_response_at, clocks.sla.calendar)}: "
                         f"the first-response clock stopped.")
        if rec.paused_since:
            lines.append(f"Waiting on the client since {format_local(rec.paused_since, clocks.sla.calendar)}: the "
                         f"resolution clock is paused, no reminder is sent.")
        shown = ("deadline.changed", "status.changed", "priority.changed", "first_response.stamped",
                 "clock.paused", "clock.resumed")
        for e in detail["events"]:
            kind = str(e["kind"])
            if kind in shown or kind.split(".")[0] in ("remind", "breach", "escalate", "page", "reminder",
                                                       "escalation"):
                extra = {k: v for k, v in e.items() if k not in ("at", "kind", "trace")}
                at = dt.datetime.fromisoformat(str(e["at"]).replace("Z", "+00:00"))
                lines.append(f"{format_local(at, clocks.sla.calendar)}: {kind} "
                             + ", ".join(f"{k} {v}" for k, v in extra.items()))
        return lines
