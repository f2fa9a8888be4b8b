"""Settings: one TOML file -> frozen, typed, validated settings.

Owns where the file is found (`--config`, `$CASEBOT_CONFIG`, `/etc/casebot/casebot.toml`), reading it, and the
merge of SLA targets over the defaults; the schema, the generic loader and the validation rules sit in the modules
beside this one. Must not open connections or log secrets.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

from casebot.config.oauth2 import OAuth2Settings
from casebot.config.schema import (
    _DEFAULT_TARGETS,
    DEFAULT_PATH,
    ENV_VAR,
    PUBLIC_DOMAINS,
    AcknowledgementSettings,
    CasesSettings,
    ConfigError,
    DaemonSettings,
    DatabaseSettings,
    DigestSettings,
    EscalationSettings,
    LoggingSettings,
    MailboxSettings,
    OutgoingSettings,
    PipelineSettings,
    PlanSettings,
    PrioritySettings,
    RemindersSettings,
    SecretSource,
    ServerSettings,
    Settings,
    SlaSettings,
    StaffSettings,
    TargetSettings,
    TemplatesSettings,
)
from casebot.config.typed import build
from casebot.config.validate import validate

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "PUBLIC_DOMAINS",
    "AcknowledgementSettings",
    "CasesSettings",
    "ConfigError",
    "DaemonSettings",
    "DatabaseSettings",
    "DigestSettings",
    "EscalationSettings",
    "LoggingSettings",
    "MailboxSettings",
    "OAuth2Settings",
    "OutgoingSettings",
    "PipelineSettings",
    "PlanSettings",
    "PrioritySettings",
    "RemindersSettings",
    "SecretSource",
    "ServerSettings",
    "Settings",
    "SlaSettings",
    "StaffSettings",
    "TargetSettings",
    "TemplatesSettings",
    "from_mapping",
    "load",
    "locate",
    "validate",
]


def from_mapping(data: dict[str, object], source: Path | None = None) -> Settings:
    settings: Settings = build("", Settings, data)
    # Targets merge over the defaults, so an admin can change one priority without restating all four.
    # A partial override keeps the other default: `[sla.targets.high] first_response = "2h"` alone is enough.
    targets = dict(_DEFAULT_TARGETS)
    for name, given in settings.sla.targets.items():
        default = _DEFAULT_TARGETS.get(name, TargetSettings())
        targets[name] = TargetSettings(given.first_response or default.first_response,
                                       given.resolution or default.resolution)
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

