"""Settings of the monitoring keys: `[metrics]` (the /metrics and /healthz listener) and `[health]` (thresholds).

Owns these two tables' shape and defaults (part of the one schema: `schema.Settings` holds them, and
`casebot.toml.example` documents them) and parsing `metrics.listen`. Must not open sockets or decide health:
`daemon` listens, `health` judges, `validate` checks the ranges.
"""

from __future__ import annotations

from dataclasses import dataclass


class ListenError(ValueError):
    """`metrics.listen` is not "HOST:PORT"; `validate` turns it into a ConfigError naming the key."""


@dataclass(frozen=True)
class MetricsSettings:
    listen: str = ""  # "127.0.0.1:9464": serve Prometheus /metrics and /healthz there; "" = off

    @property
    def address(self) -> tuple[str, int] | None:
        """`listen` as (host, port), None when off; ListenError for anything but "HOST:PORT" or "[V6]:PORT"."""
        text = self.listen.strip()
        if not text:
            return None
        host, sep, port = text.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ListenError(f"expected 'HOST:PORT' such as '127.0.0.1:9464', got {text!r}")
        return host, int(port)


@dataclass(frozen=True)
class HealthSettings:
    mailbox_failed_passes: int = 3  # unhealthy when more mailbox passes than this failed in a row
    outbox_stuck_seconds: float = 900.0  # unhealthy when the oldest pending outbox mail is older than this
    stale_seconds: float = 300.0  # unhealthy when a running daemon has not written its state file for this long
    state_file: str = ""  # the daemon's published facts; "" = beside the SQLite database (else /var/lib/casebot)
