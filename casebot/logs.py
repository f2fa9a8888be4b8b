"""Logs: structlog set-up as a plain list of processors (named `logs`, so it never shadows the standard `logging`).

Owns the processor chain (level, UTC timestamp, JSON when not on a terminal or under systemd, readable console
output on a terminal) and the rule that no event carries a mail body or a password: events name messages by
source, key and reference only. Must not decide anything else.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = {"password", "secret", "body", "raw", "text"}


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Belt and braces: even if a caller passes one, a secret or a body never reaches the log."""
    for key in list(event):
        if key in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def configure(level: str = "info", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (
        fmt == "auto" and (not sys.stderr.isatty() or "JOURNAL_STREAM" in os.environ or "INVOCATION_ID" in os.environ)
    )
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    # mail-parser reports parts it skips ("content not handled") through stdlib logging; casebot records parse
    # defects on the message itself, so only errors from libraries reach the log, as structlog-style JSON lines
    # would be mixed with plain text otherwise.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
