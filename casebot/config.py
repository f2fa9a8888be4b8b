"""Settings: one TOML file -> frozen, typed settings.

Owns the settings schema (every key, its type and default), validation with errors that name the key path
(`mailbox.port: expected an integer, got "x"`), where the file is found (`--config`, `$CASEBOT_CONFIG`,
`/etc/casebot/casebot.toml`), and how secrets are read (`password`, `password_file`, `password_env`, systemd
credentials). Must not open connections or log secrets: a secret is resolved only when an adapter asks for it,
and `repr()` of settings never shows it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casebot import refs
from casebot import sla as slamod

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
                    f"{self.section}.password_file: cannot read {str(path)!r}: {exc.strerror}"
                ) from exc
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"{self.section}.password_env: environment variable {self.password_env} is not set")
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
    first_response: str
    resolution: str


_DEFAULT_TARGETS = {k: TargetSettings(a, b) for k, (a, b) in slamod.DEFAULT_TARGETS.items()}


@dataclass(frozen=True)
class SlaSettings:
    timezone: str = "Europe/London"
    business_hours: str = "09:00-17:30"
    workdays: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    holidays: str = "GB"
    holidays_subdivision: str = "ENG"
    extra_holidays: tuple[str, ...] = ()
    targets: dict[str, TargetSettings] = field(default_factory=lambda: dict(_DEFAULT_TARGETS))


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
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    source: Path | None = None  # the file these came from; relative paths in it are resolved against its folder

    def secret(self, section: str) -> SecretSource:
        """Where the password of `mailbox` or `outgoing` comes from; `.resolve()` reads it."""
        s: ServerSettings = self.mailbox if section == "mailbox" else self.outgoing
        base = self.source.parent if self.source is not None else None
        return SecretSource(section, s.password, s.password_file, s.password_env, base)

    def resolve_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        if not p.is_absolute() and self.source is not None:
            p = self.source.parent / p
        return p

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
        return slamod.build_policy(
            calendar, [(name, t.first_response, t.resolution) for name, t in self.sla.targets.items()]
        )


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


# --- generic, schema-driven loading -------------------------------------------------------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _convert(path: str, hint: Any, value: object) -> object:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(path, args[0], value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {_describe(value)}")
        return _build(path, typing.cast(type, hint), value)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected an array, got {_describe(value)}")
        return tuple(_convert(f"{path}[{i}]", item, v) for i, v in enumerate(value))
    if origin is dict:
        _key, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {_describe(value)}")
        return {k: _convert(f"{path}.{k}", item, v) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _TYPE_NAMES:
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: expected {_TYPE_NAMES[hint]}, got {_describe(value)}")
        return value
    raise ConfigError(f"{path}: unsupported setting type {hint!r}")  # a schema bug, not the admin's


def _build(prefix: str, cls: type, data: dict[str, object]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"{where}: unknown key (known keys: {', '.join(sorted(names))})")
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            where = f"{prefix}.{f.name}" if prefix else f.name
            kwargs[f.name] = _convert(where, hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}.{f.name}: missing required key")
    return cls(**kwargs)


def _choice(path: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{path}: must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def _positive(path: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{path}: must be greater than zero, got {value}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate(s: Settings) -> None:
    """Checks that need more than a type: choices, ranges, and combinations of keys."""
    _choice("mailbox.kind", s.mailbox.kind, ("imap", "maildir", "pipe"))
    _choice("mailbox.security", s.mailbox.security, ("tls", "starttls", "none"))
    _choice("outgoing.kind", s.outgoing.kind, ("smtp", "maildir"))
    _choice("outgoing.security", s.outgoing.security, ("tls", "starttls", "none"))
    if s.mailbox.kind == "imap":
        if s.mailbox.security == "none" and not _is_loopback(s.mailbox.host):
            raise ConfigError(
                f"mailbox.security: 'none' is refused for the non-loopback host {s.mailbox.host!r} "
                "(passwords would cross the network in clear text); use 'tls' or 'starttls'"
            )
        if not s.mailbox.username:
            raise ConfigError("mailbox.username: required when mailbox.kind = 'imap'")
    if (
        s.outgoing.kind == "smtp"
        and s.outgoing.security == "none"
        and not _is_loopback(s.outgoing.host)
        and s.outgoing.username
    ):
        raise ConfigError(
            f"outgoing.security: 'none' with a username is refused for the non-loopback host {s.outgoing.host!r}"
        )
    for key in ("port",):
        for section in ("mailbox", "outgoing"):
            port = getattr(getattr(s, section), key)
            if not 0 < port < 65536:
                raise ConfigError(f"{section}.{key}: must be between 1 and 65535, got {port}")
    for path, value in (
        ("mailbox.timeout", s.mailbox.timeout),
        ("mailbox.poll_interval", s.mailbox.poll_interval),
        ("mailbox.batch_size", s.mailbox.batch_size),
        ("mailbox.max_attempts", s.mailbox.max_attempts),
        ("mailbox.reconnect_max_delay", s.mailbox.reconnect_max_delay),
        ("outgoing.timeout", s.outgoing.timeout),
        ("outgoing.max_attempts", s.outgoing.max_attempts),
        ("outgoing.retry_base", s.outgoing.retry_base),
        ("outgoing.retry_max", s.outgoing.retry_max),
        ("acknowledgement.rate_window_minutes", s.acknowledgement.rate_window_minutes),
        ("priority.body_chars", s.priority.body_chars),
        ("daemon.deliver_interval", s.daemon.deliver_interval),
    ):
        _positive(path, value)
    if s.mailbox.poll_interval > 600:
        # The IDLE loop feeds systemd's watchdog once per round; a round never waits longer than this.
        raise ConfigError(f"mailbox.poll_interval: at most 600 seconds, got {s.mailbox.poll_interval}")
    if s.acknowledgement.rate_limit < 0:
        raise ConfigError("acknowledgement.rate_limit: must be 0 (no limit) or more")
    if "@" not in s.outgoing.from_address:
        raise ConfigError(f"outgoing.from_address: not an email address: {s.outgoing.from_address!r}")
    if not re.fullmatch(r"[A-Za-z0-9$_.-]+", s.mailbox.processed_keyword):
        raise ConfigError(f"mailbox.processed_keyword: not a valid IMAP keyword: {s.mailbox.processed_keyword!r}")
    if not s.database.url.strip():
        raise ConfigError("database.url: must not be empty")
    try:
        s.reference_format  # noqa: B018 - constructing validates
    except ValueError as exc:
        raise ConfigError(f"cases.reference_format: {exc}") from exc
    _choice("priority.default", s.priority.default, slamod.PRIORITIES)
    for name in s.sla.targets:
        _choice(f"sla.targets.{name}", name, slamod.PRIORITIES)
    for i, day in enumerate(s.sla.workdays):
        _choice(f"sla.workdays[{i}]", day, _WEEKDAYS)
    for i, day in enumerate(s.sla.extra_holidays):
        try:
            dt.date.fromisoformat(day)
        except ValueError as exc:
            raise ConfigError(f"sla.extra_holidays[{i}]: expected a date like 2026-12-24, got {day!r}") from exc
    _choice("logging.level", s.logging.level, ("debug", "info", "warning", "error"))
    _choice("logging.format", s.logging.format, ("auto", "json", "console"))
    calendar_only = dataclasses.replace(s, sla=dataclasses.replace(s.sla, targets={}))
    try:
        calendar = calendar_only.sla_policy().calendar
    except slamod.CalendarError as exc:
        raise ConfigError(f"sla: {exc}") from exc
    for name, target in s.sla.targets.items():
        for which in ("first_response", "resolution"):
            try:
                slamod.parse_duration(getattr(target, which), calendar)
            except slamod.CalendarError as exc:
                raise ConfigError(f"sla.targets.{name}.{which}: {exc}") from exc
    policy = s.sla_policy()
    missing = [p for p in slamod.PRIORITIES if p not in policy.targets]
    if missing:
        raise ConfigError(f"sla.targets: no targets for {', '.join(missing)}")


def from_mapping(data: dict[str, object], source: Path | None = None) -> Settings:
    settings: Settings = _build("", Settings, data)
    # Targets merge over the defaults, so an admin can change one priority without restating all four.
    targets = {**_DEFAULT_TARGETS, **settings.sla.targets}
    settings = dataclasses.replace(
        settings, source=source, sla=dataclasses.replace(settings.sla, targets=targets)
    )
    validate(settings)
    return settings


def locate(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_PATH


def load(explicit: str | None = None) -> Settings:
    path = locate(explicit)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return from_mapping(data, source=path.resolve())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
