"""The settings schema: every key, its type and its default, as frozen dataclasses.

Owns the shape of `casebot.toml` (one dataclass per table; `casebot.toml.example` is tested against it), the
`Settings` helpers that turn keys into domain objects (paths relative to the config file, the reference format,
the SLA policy, the default priority) and where secrets come from (`password`, `password_file`, `password_env`,
systemd credentials). Must not open connections or log secrets: a secret is resolved only when an adapter asks
for it, and `repr()` of settings never shows it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casebot import refs
from casebot import sla as slamod
from casebot.case import Priority
from casebot.config.housekeeping import PrivacySettings, RetentionSettings
from casebot.config.monitoring import HealthSettings, MetricsSettings
from casebot.config.oauth2 import OAuth2Settings

DEFAULT_PATH = Path("/etc/casebot/casebot.toml")
ENV_VAR = "CASEBOT_CONFIG"


class ConfigError(Exception):
    """Raised for a missing or unreadable file, bad TOML, an unknown key, a wrong type or an unusable value.

    The message names the key path (`outgoing.port`); the CLI maps it to exit status 78 (EX_CONFIG).
    """


def _secret_field() -> Any:
    return field(default=None, repr=False)


@dataclass(frozen=True)
class SecretSource:
    """Where a password comes from. Exactly one of the three, or none for servers without authentication."""

    section: str
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    password_env: str | None = None
    base_dir: Path | None = None  # the config file's folder: a relative password_file is relative to it
    names: tuple[str, str] = ("password_file", "password_env")  # the keys' names, for error messages

    def resolve(self) -> str | None:
        """The secret, read now (files and environment can change between restarts); never logged."""
        given = [k for k in ("password", "password_file", "password_env") if getattr(self, k)]
        if len(given) > 1:
            raise ConfigError(f"{self.section}: set only one of password, password_file, password_env ({given})")
        if self.password:
            return self.password
        if self.password_file:
            path = Path(self.password_file).expanduser()
            creds = os.environ.get("CREDENTIALS_DIRECTORY")
            if not path.is_absolute():
                # systemd LoadCredential=imap-password:/etc/... gives $CREDENTIALS_DIRECTORY/imap-password;
                # outside systemd, a relative name is relative to the config file, like every other path.
                if creds and (Path(creds) / path).exists():
                    path = Path(creds) / path
                elif self.base_dir is not None:
                    path = self.base_dir / path
            try:
                return path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(
                    f"{self.section}.{self.names[0]}: cannot read {str(path)!r}: {exc.strerror}"
                ) from exc
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"{self.section}.{self.names[1]}: environment variable {self.password_env} is not set"
                )
            return value
        return None


@dataclass(frozen=True)
class ServerSettings:
    """What a mailbox and an outgoing server have in common: where, how securely, as whom."""

    kind: str = ""
    host: str = "localhost"
    port: int = 0
    security: str = "tls"
    username: str = ""
    password: str | None = _secret_field()
    password_file: str | None = None
    password_env: str | None = None
    ca_file: str = ""
    path: str = ""
    timeout: float = 30.0
    auth: str = "password"  # "password" or "oauth2"


@dataclass(frozen=True)
class MailboxSettings(ServerSettings):
    kind: str = "imap"
    port: int = 993
    path: str = "/var/lib/casebot/inbox"
    folder: str = "INBOX"
    processed_keyword: str = "$CasebotProcessed"
    processed_folder: str = ""
    quarantine_folder: str = "Quarantine"
    idle: bool = True
    poll_interval: float = 60.0
    batch_size: int = 50
    max_attempts: int = 3
    reconnect_max_delay: float = 300.0
    max_message_bytes: int = 52428800  # 50 MiB; 0 = no limit. Larger mail is stored unparsed
    oauth2: OAuth2Settings = field(default_factory=OAuth2Settings)


@dataclass(frozen=True)
class OutgoingSettings(ServerSettings):
    kind: str = "smtp"
    port: int = 587
    security: str = "starttls"
    path: str = "/var/lib/casebot/sent"
    from_address: str = "Support <support@example.com>"
    max_attempts: int = 10
    retry_base: float = 30.0
    retry_max: float = 3600.0
    pipelining: bool = True  # RFC 2920, when the server offers it
    oauth2: OAuth2Settings | str = ""  # a table like [mailbox.oauth2], or "mailbox" to share its token


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:////var/lib/casebot/casebot.db"
    auto_upgrade: bool = True


PUBLIC_DOMAINS = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "live.co.uk",
    "msn.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com",
    "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com",
    "yandex.com", "yandex.ru", "btinternet.com", "sky.com", "virginmedia.com", "talktalk.net", "fastmail.com",
)


@dataclass(frozen=True)
class CasesSettings:
    reference_format: str = refs.DEFAULT_FORMAT
    public_domains: tuple[str, ...] = PUBLIC_DOMAINS
    own_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrioritySettings:
    rules_file: str = ""
    default: str = "low"
    body_chars: int = 4000


@dataclass(frozen=True)
class AcknowledgementSettings:
    enabled: bool = True
    rate_limit: int = 5
    rate_window_minutes: int = 60


@dataclass(frozen=True)
class TemplatesSettings:
    dir: str = ""


@dataclass(frozen=True)
class TargetSettings:
    # Either may be left out: the other keeps its default (or, in a plan, the [sla.targets] value).
    first_response: str = ""
    resolution: str = ""


_DEFAULT_TARGETS = {k: TargetSettings(a, b) for k, (a, b) in slamod.DEFAULT_TARGETS.items()}


@dataclass(frozen=True)
class RemindersSettings:
    at: tuple[float, ...] = (0.75,)  # shares of a target at which the team is reminded
    quiet: tuple[str, ...] = ("medium", "low")  # these wait for business hours
    scan_interval: float = 60.0  # seconds between reminder scans in the daemon


@dataclass(frozen=True)
class SlaSettings:
    timezone: str = "Europe/London"
    business_hours: str = "09:00-17:30"
    workdays: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    holidays: str = "GB"
    holidays_subdivision: str = "ENG"
    extra_holidays: tuple[str, ...] = ()
    targets: dict[str, TargetSettings] = field(default_factory=lambda: dict(_DEFAULT_TARGETS))
    reminders: RemindersSettings = field(default_factory=RemindersSettings)


@dataclass(frozen=True)
class PlanSettings:
    clients: tuple[str, ...] = ()  # requester addresses or "@domain"
    out_of_hours: tuple[str, ...] = ()  # priorities that count 24x7 for this plan's clients
    oncall: str = ""  # paged at once for an out-of-hours case of those priorities
    targets: dict[str, TargetSettings] = field(default_factory=dict)


@dataclass(frozen=True)
class StaffSettings:
    addresses: tuple[str, ...] = ()  # staff addresses, or "@domain" for a whole domain
    notify: str = ""  # new-case notices, reminders, breach alerts and the daily digest go here
    authserv_id: str = ""  # trust Authentication-Results from this server only
    note_address: str = ""  # staff mail to this address (To/Cc) is an internal note, e.g. "support+note@..."
    notice_attachments_max_bytes: int = 5_000_000  # attach a client's files to the new-case notice up to this


@dataclass(frozen=True)
class EscalationSettings:
    manager: str = ""  # told of a breach of a case of the priorities below, and of a client's escalation
    on_breach: tuple[str, ...] = ("critical", "high")
    words: tuple[str, ...] = ("escalate", "escalation")  # in a client's subject or first line: an escalation
    address: str = ""  # mail to this address (To/Cc) is an escalation too, e.g. "support+escalate@example.com"
    raise_priority: bool = True  # an escalation raises the case's priority one step
    window_hours: float = 24.0  # repeated escalations of one case within this notify once


@dataclass(frozen=True)
class StatusNoticesSettings:
    waiting: bool = True  # the client is told when the case waits on them
    resolved: bool = True  # ... when it is resolved (with how to reopen)
    closed: bool = True
    reopened: bool = True
    autoclose_business_days: int = 5  # a resolved case with no client reply is closed after this; 0 = never


@dataclass(frozen=True)
class DigestSettings:
    enabled: bool = True
    time: str = ""  # local "HH:MM" on each business day; empty: the opening of business hours


@dataclass(frozen=True)
class LoopGuardSettings:
    patterns_file: str = ""  # automated-mail patterns (senders, subjects per language); "" = the shipped file


@dataclass(frozen=True)
class PipelineSettings:
    # Built-in step names, or `package.module:Class` for a step defined elsewhere (README, "How it is built").
    steps: tuple[str, ...] = ("own_mail", "loop_guard", "sender_role", "threading", "automated_answer", "escalation",
                              "priority", "acknowledgement")


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True)
class DaemonSettings:
    deliver_interval: float = 5.0


@dataclass(frozen=True)
class Settings:
    mailbox: MailboxSettings = field(default_factory=MailboxSettings)
    outgoing: OutgoingSettings = field(default_factory=OutgoingSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    cases: CasesSettings = field(default_factory=CasesSettings)
    priority: PrioritySettings = field(default_factory=PrioritySettings)
    acknowledgement: AcknowledgementSettings = field(default_factory=AcknowledgementSettings)
    templates: TemplatesSettings = field(default_factory=TemplatesSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    loop_guard: LoopGuardSettings = field(default_factory=LoopGuardSettings)
    plans: dict[str, PlanSettings] = field(default_factory=dict)
    staff: StaffSettings = field(default_factory=StaffSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    status_notices: StatusNoticesSettings = field(default_factory=StatusNoticesSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    source: Path | None = None  # the file these came from; relative paths in it are resolved against its folder

    def secret(self, section: str) -> SecretSource:
        """Where the password of `mailbox` or `outgoing` comes from; `.resolve()` reads it."""
        s: ServerSettings = self.mailbox if section == "mailbox" else self.outgoing
        base = self.source.parent if self.source is not None else None
        return SecretSource(section, s.password, s.password_file, s.password_env, base)

    def oauth2_for(self, section: str) -> tuple[str, OAuth2Settings] | None:
        """The OAuth2 settings `mailbox` or `outgoing` logs in with, and whose they are (`outgoing.oauth2 =
        "mailbox"` shares the mailbox's token): None when that section's `auth` is "password"."""
        s: MailboxSettings | OutgoingSettings = self.mailbox if section == "mailbox" else self.outgoing
        if s.auth != "oauth2":
            return None
        if isinstance(s.oauth2, str):
            return ("mailbox", self.mailbox.oauth2) if s.oauth2 == "mailbox" else None
        return section, s.oauth2

    def resolve_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        if not p.is_absolute() and self.source is not None:
            p = self.source.parent / p
        return p

    @property
    def default_priority(self) -> Priority:
        return Priority(self.priority.default)

    @property
    def reference_format(self) -> refs.ReferenceFormat:
        return refs.ReferenceFormat(self.cases.reference_format)

    def sla_policy(self) -> slamod.SlaPolicy:
        start, end = _parse_hours(self.sla.business_hours)
        calendar = slamod.BusinessCalendar(
            timezone=self.sla.timezone,
            start=start,
            end=end,
            workdays=tuple(_WEEKDAYS.index(d) for d in self.sla.workdays),
            holiday_country=self.sla.holidays,
            holiday_subdivision=self.sla.holidays_subdivision or None,
            extra_holidays=tuple(dt.date.fromisoformat(d) for d in self.sla.extra_holidays),
        )
        base = {name: (t.first_response, t.resolution) for name, t in self.sla.targets.items()}
        plans = [
            slamod.Plan(
                name=name, clients=plan.clients, out_of_hours=frozenset(Priority(p) for p in plan.out_of_hours),
                oncall=plan.oncall or None,
                targets={
                    Priority(prio): slamod.PriorityTargets(
                        slamod.parse_duration(t.first_response or base[prio][0], calendar),
                        slamod.parse_duration(t.resolution or base[prio][1], calendar),
                    )
                    for prio, t in plan.targets.items()
                },
            )
            for name, plan in self.plans.items()
        ]
        return slamod.build_policy(calendar, [(name, a, b) for name, (a, b) in base.items()], plans)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def _parse_hours(text: str) -> tuple[dt.time, dt.time]:
    m = _HOURS.match(text.strip())
    if not m:
        raise ConfigError(f"sla.business_hours: expected 'HH:MM-HH:MM', got {text!r}")
    try:
        return dt.time(int(m[1]), int(m[2])), dt.time(int(m[3]), int(m[4]))
    except ValueError as exc:
        raise ConfigError(f"sla.business_hours: {exc}") from exc

