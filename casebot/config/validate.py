"""Validation of settings beyond their types: choices, ranges, and combinations of keys.

Owns every rule that needs more than a type (`mailbox.security = "none"` only on loopback, a poll interval the
watchdog can live with, a usable SLA calendar and targets), each error naming its key path. Must not read files,
open connections or change the settings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re

from casebot import sla as slamod
from casebot.case import PRIORITIES
from casebot.config.oauth2 import OAuth2Settings
from casebot.config.schema import _WEEKDAYS, ConfigError, Settings


def _choice(path: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{path}: must be one of {', '.join(repr(str(c)) for c in choices)}, got {value!r}")


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
        ("health.outbox_stuck_seconds", s.health.outbox_stuck_seconds),
        ("health.stale_seconds", s.health.stale_seconds),
    ):
        _positive(path, value)
    try:
        s.metrics.address  # noqa: B018 - parsing validates metrics.listen
    except ValueError as exc:
        raise ConfigError(f"metrics.listen: {exc}") from exc
    if s.health.mailbox_failed_passes < 0:
        raise ConfigError("health.mailbox_failed_passes: must be 0 (any failed pass) or more")
    if s.mailbox.poll_interval > 600:
        # The IDLE loop feeds systemd's watchdog once per round; a round never waits longer than this.
        raise ConfigError(f"mailbox.poll_interval: at most 600 seconds, got {s.mailbox.poll_interval}")
    if s.mailbox.max_message_bytes < 0:
        raise ConfigError("mailbox.max_message_bytes: must be 0 (no limit) or more")
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
    _choice("priority.default", s.priority.default, PRIORITIES)
    for name in s.sla.targets:
        _choice(f"sla.targets.{name}", name, PRIORITIES)
    for i, day in enumerate(s.sla.workdays):
        _choice(f"sla.workdays[{i}]", day, _WEEKDAYS)
    for i, day in enumerate(s.sla.extra_holidays):
        try:
            dt.date.fromisoformat(day)
        except ValueError as exc:
            raise ConfigError(f"sla.extra_holidays[{i}]: expected a date like 2026-12-24, got {day!r}") from exc
    _choice("logging.level", s.logging.level, ("debug", "info", "warning", "error"))
    _choice("logging.format", s.logging.format, ("auto", "json", "console"))
    for key in ("raw_days", "attachments_days", "closed_case_days"):
        if getattr(s.retention, key) < 0:
            raise ConfigError(f"retention.{key}: must be 0 (keep forever) or a number of days, got "
                              f"{getattr(s.retention, key)}")
    _positive("retention.batch", s.retention.batch)
    calendar_only = dataclasses.replace(s, sla=dataclasses.replace(s.sla, targets={}), plans={})
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
    _validate_sla_extras(s, calendar)
    _validate_oauth2(s)
    try:
        s.sla_policy()
    except slamod.CalendarError as exc:  # PlanError among them: it names the plan
        raise ConfigError(f"plans: {exc}") from exc


def _address_or_domain(path: str, value: str) -> None:
    local, at, domain = value.strip().rpartition("@")
    if not at or not domain or "@" in local or " " in value.strip():
        raise ConfigError(f"{path}: not an address or '@domain': {value!r}")


def _validate_sla_extras(s: Settings, calendar: slamod.BusinessCalendar) -> None:
    """Reminders, plans, staff, escalation and digest keys."""
    for i, share in enumerate(s.sla.reminders.at):
        if not 0 < share < 1:
            raise ConfigError(f"sla.reminders.at[{i}]: a share of the target between 0 and 1, got {share}")
    for i, prio in enumerate(s.sla.reminders.quiet):
        _choice(f"sla.reminders.quiet[{i}]", prio, PRIORITIES)
    _positive("sla.reminders.scan_interval", s.sla.reminders.scan_interval)
    for i, prio in enumerate(s.escalation.on_breach):
        _choice(f"escalation.on_breach[{i}]", prio, PRIORITIES)
    if s.status_notices.autoclose_business_days < 0:
        raise ConfigError("status_notices.autoclose_business_days: must be 0 (never) or more")
    if s.staff.notice_attachments_max_bytes < 0:
        raise ConfigError("staff.notice_attachments_max_bytes: must be 0 (list only) or more")
    for i, staff in enumerate(s.staff.addresses):
        _address_or_domain(f"staff.addresses[{i}]", staff)
    _positive("escalation.window_hours", s.escalation.window_hours)
    for i, word in enumerate(s.escalation.words):
        if not word.strip():
            raise ConfigError(f"escalation.words[{i}]: must not be empty")
    for path, value in (("staff.notify", s.staff.notify), ("escalation.manager", s.escalation.manager),
                        ("escalation.address", s.escalation.address), ("staff.note_address", s.staff.note_address)):
        if value and "@" not in value:
            raise ConfigError(f"{path}: not an email address: {value!r}")
    if s.digest.time and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", s.digest.time):
        raise ConfigError(f"digest.time: expected 'HH:MM' (or empty for the opening time), got {s.digest.time!r}")
    for name, plan in s.plans.items():
        where = f"plans.{name}"
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ConfigError(f"{where}: a plan name is letters, digits, '_' or '-' (at most 64)")
        if not plan.clients:
            raise ConfigError(f"{where}.clients: list the plan's clients (addresses or '@domain')")
        for i, client in enumerate(plan.clients):
            _address_or_domain(f"{where}.clients[{i}]", client)
        for i, prio in enumerate(plan.out_of_hours):
            _choice(f"{where}.out_of_hours[{i}]", prio, PRIORITIES)
        if plan.oncall and "@" not in plan.oncall:
            raise ConfigError(f"{where}.oncall: not an email address: {plan.oncall!r}")
        for prio, target in plan.targets.items():
            _choice(f"{where}.targets.{prio}", prio, PRIORITIES)
            for which in ("first_response", "resolution"):
                text = getattr(target, which)
                if text:
                    try:
                        slamod.parse_duration(text, calendar)
                    except slamod.CalendarError as exc:
                        raise ConfigError(f"{where}.targets.{prio}.{which}: {exc}") from exc



def _validate_oauth2_table(where: str, o: OAuth2Settings) -> None:
    _choice(f"{where}.provider", o.provider, ("microsoft", "google", "generic"))
    if not o.client_id:
        raise ConfigError(f"{where}.client_id: required (the app registration's client/application ID)")
    if not o.token_file:
        raise ConfigError(f"{where}.token_file: required (where `casebot oauth login` keeps the refresh token)")
    if o.client_secret_file and o.client_secret_env:
        raise ConfigError(f"{where}: set only one of client_secret_file, client_secret_env")
    if o.provider == "microsoft" and not (o.tenant or o.authority):
        raise ConfigError(f"{where}.tenant: required for provider microsoft (e.g. 'contoso.onmicrosoft.com')")
    for key in ("tenant", "authority"):
        if getattr(o, key) and o.provider != "microsoft":
            raise ConfigError(f"{where}.{key}: only for provider microsoft")
    if o.authority and not o.authority.startswith("https://"):
        raise ConfigError(f"{where}.authority: must be an https:// URL, got {o.authority!r}")
    if o.provider == "generic" and not o.token_url:
        raise ConfigError(f"{where}.token_url: required for provider generic")
    for key in ("token_url", "auth_url"):
        url = getattr(o, key)
        if url and not url.startswith(("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")):
            raise ConfigError(f"{where}.{key}: must be an https:// URL (http only on loopback), got {url!r}")
    if o.client_secret_expires:
        try:
            dt.date.fromisoformat(o.client_secret_expires)
        except ValueError as exc:
            raise ConfigError(f"{where}.client_secret_expires: expected a date like 2027-06-30, "
                              f"got {o.client_secret_expires!r}") from exc
    if o.secret_warn_days < 0:
        raise ConfigError(f"{where}.secret_warn_days: must be 0 (no warning) or more")
    if o.refresh_margin < 0:
        raise ConfigError(f"{where}.refresh_margin: must be 0 or more seconds")
    if not 0 <= o.redirect_port < 65536:
        raise ConfigError(f"{where}.redirect_port: must be between 0 (any) and 65535, got {o.redirect_port}")
    for i, scope in enumerate(o.scopes):
        if not scope.strip() or " " in scope:
            raise ConfigError(f"{where}.scopes[{i}]: one scope per entry, without spaces: {scope!r}")


def _validate_oauth2(s: Settings) -> None:
    """`auth`, `[mailbox.oauth2]`, `[outgoing.oauth2]` or `outgoing.oauth2 = "mailbox"`."""
    _choice("mailbox.auth", s.mailbox.auth, ("password", "oauth2"))
    _choice("outgoing.auth", s.outgoing.auth, ("password", "oauth2"))
    if s.mailbox.auth == "oauth2":
        if s.mailbox.kind != "imap":
            raise ConfigError("mailbox.auth: 'oauth2' needs mailbox.kind = 'imap'")
        if s.mailbox.password or s.mailbox.password_file or s.mailbox.password_env:
            raise ConfigError("mailbox.auth: 'oauth2' logs in with a token: remove mailbox.password*")
        _validate_oauth2_table("mailbox.oauth2", s.mailbox.oauth2)
    o = s.outgoing.oauth2
    if isinstance(o, str) and o not in ("", "mailbox"):
        raise ConfigError(f"outgoing.oauth2: a table, or \"mailbox\" to share the mailbox's token, got {o!r}")
    if s.outgoing.auth != "oauth2":
        return
    if s.outgoing.kind != "smtp":
        raise ConfigError("outgoing.auth: 'oauth2' needs outgoing.kind = 'smtp'")
    if s.outgoing.password or s.outgoing.password_file or s.outgoing.password_env:
        raise ConfigError("outgoing.auth: 'oauth2' logs in with a token: remove outgoing.password*")
    if not s.outgoing.username:
        raise ConfigError("outgoing.username: required when outgoing.auth = 'oauth2' (the mailbox to send as)")
    if o == "":
        raise ConfigError("outgoing.oauth2: required when outgoing.auth = 'oauth2': an [outgoing.oauth2] table, "
                          "or \"mailbox\" to share the mailbox's token")
    if o == "mailbox":
        if s.mailbox.auth != "oauth2":
            raise ConfigError("outgoing.oauth2: \"mailbox\" shares the mailbox's token, but mailbox.auth is not "
                              "'oauth2'")
    elif isinstance(o, OAuth2Settings):
        _validate_oauth2_table("outgoing.oauth2", o)
