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

