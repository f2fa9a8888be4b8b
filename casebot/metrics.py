"""Prometheus metrics and the `/metrics` + `/healthz` listener: the only importer of prometheus_client.

Owns the metric families (names and labels below, README "Monitoring"), one private `CollectorRegistry` per
`Metrics` (tests run many runtimes in one process), the observer methods the composition root wires into the
jobs (`ingested`, `delivered`, `alerts_queued`, `mailbox_ok`/`mailbox_failed`, `idle`), the collector that reads
the database's counts at scrape time through `Store.stats()`, the process-wide board of OAuth token facts that
the OAuth adapter sets (`set_token_expiry`, `set_token_failing`), and a small threaded HTTP server bound to
`metrics.listen`. Label sets are bounded: free-text reasons are mapped to a few classes. Must not decide health
(`health` does), write to the database or log message contents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from casebot import clock
from casebot.health import MailboxFacts, TokenState
from casebot.store import Store, StoreError
from casebot.transport import MailboxUnavailable

log = structlog.get_logger("casebot.metrics")

OUTCOMES = ("opened", "threaded", "duplicate", "automated", "bounced", "quarantined", "own-mail", "failed",
            "other")
ACK_REASONS = ("disabled", "automated", "staff", "no_address", "rate_limit", "failed", "other")
DELIVERY_RESULTS = ("sent", "retry", "failed")
ALERT_COUNTERS = {"reminder": "reminders", "breach": "breaches", "escalation": "escalations"}


def ack_reason(note: str) -> str:
    """A suppression note (free text, with addresses and counts) -> one of ACK_REASONS."""
    text = note.lower()
    for prefix, reason in (("acknowledgements disabled", "disabled"), ("automated", "automated"),
                           ("the sender is staff", "staff"), ("no address", "no_address"),
                           ("reply-to", "no_address"), ("rate limit", "rate_limit"),
                           ("acknowledgement failed", "failed")):
        if text.startswith(prefix):
            return reason
    return "other"


class Ingested(Protocol):
    """An ingest outcome (`jobs.ingest.Outcome`), as far as metrics care."""

    @property
    def status(self) -> str: ...
    @property
    def automated(self) -> bool: ...
    @property
    def ack(self) -> str: ...


# --- the OAuth token board: process-wide, set by the OAuth adapter, read by metrics and health --------------------

_tokens_lock = threading.Lock()
_tokens: dict[str, TokenState] = {}


def _timestamp(value: float | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value is not None and value.tzinfo else value
    return dt.datetime.fromtimestamp(float(value), dt.UTC)


def set_token_expiry(name: str, expires_at: float | dt.datetime | None) -> None:
    """The access token `name` ("mailbox", "outgoing") expires at this moment (a Unix timestamp or an aware
    datetime); None when unknown. Exposed as casebot_oauth_token_expiry_timestamp_seconds{token=name}."""
    with _tokens_lock:
        _tokens[name] = dataclasses.replace(_tokens.get(name, TokenState()), expires_at=_timestamp(expires_at))


def set_token_failing(name: str, error: str | None) -> None:
    """The token `name` cannot be refreshed (`error` says why, never a secret): health turns unhealthy until the
    adapter calls this again with None (or "") after a good refresh."""
    with _tokens_lock:
        _tokens[name] = dataclasses.replace(_tokens.get(name, TokenState()), error=(error or "")[:300])


def tokens() -> dict[str, TokenState]:
    with _tokens_lock:
        return dict(_tokens)


def forget_tokens() -> None:
    """Empty the board (a test's clean slate; a process that stops using OAuth)."""
    with _tokens_lock:
        _tokens.clear()


# --- the metrics of one runtime ------------------------------------------------------------------------------------


def _epoch(value: dt.datetime) -> float:
    return value.timestamp()


class Metrics:
    """The metrics of one runtime, in its own registry; the observer the composition root wires into the jobs."""

    def __init__(self, store: Store | None = None, now: Callable[[], dt.datetime] | None = None,
                 watched: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self._lock = threading.Lock()
        self._box = MailboxFacts(watched=watched)
        self.ingested_total = Counter("casebot_messages_ingested", "Messages ingested, by outcome", ["outcome"],
                                      registry=r)
        self.ingest_seconds = Histogram("casebot_ingest_duration_seconds", "Time to store one message",
                                        registry=r, buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.acks_queued = Counter("casebot_acknowledgements_queued", "Acknowledgements queued for a new case",
                                   registry=r)
        self.acks_suppressed = Counter("casebot_acknowledgements_suppressed",
                                       "New cases without an acknowledgement, by reason", ["reason"], registry=r)
        self.acks_sent = Counter("casebot_acknowledgements_sent", "Acknowledgements accepted by the server",
                                 registry=r)
        self.deliveries = Counter("casebot_deliveries", "Outbox delivery attempts, by result", ["result"],
                                  registry=r)
        self.sla = {kind: Counter(f"casebot_sla_{name}", f"SLA {name} queued", registry=r)
                    for kind, name in ALERT_COUNTERS.items()}
        self.last_pass = Gauge("casebot_mailbox_last_success_timestamp_seconds",
                               "When the last mailbox pass succeeded (Unix time)", registry=r)
        self.connected = Gauge("casebot_mailbox_connected", "1 while the mailbox answers", registry=r)
        self.idling = Gauge("casebot_mailbox_idle_active", "1 while the daemon waits in IMAP IDLE", registry=r)
        self.failed_passes = Gauge("casebot_mailbox_failed_passes", "Mailbox passes failed in a row", registry=r)
        for outcome in OUTCOMES:
            self.ingested_total.labels(outcome)
        for reason in ACK_REASONS:
            self.acks_suppressed.labels(reason)
        for result in DELIVERY_RESULTS:
            self.deliveries.labels(result)
        r.register(_BoardCollector())
        if store is not None:
            r.register(_StoreCollector(store, now or clock.utcnow))
        ProcessCollector(registry=r)

    # -- observers --

    def ingested(self, outcome: Ingested, seconds: float) -> None:
        kept = outcome.status not in ("duplicate", "failed", "quarantined", "own-mail")
        status = "automated" if outcome.automated and kept else outcome.status
        self.ingested_total.labels(status if status in OUTCOMES else "other").inc()
        self.ingest_seconds.observe(max(0.0, seconds))
        if outcome.status == "opened" and outcome.ack:
            if outcome.ack == "queued":
                self.acks_queued.inc()
            else:
                self.acks_suppressed.labels(ack_reason(outcome.ack)).inc()

    def delivered(self, kind: str, result: str) -> None:
        self.deliveries.labels(result if result in DELIVERY_RESULTS else "failed").inc()
        if kind == "ack" and result == "sent":
            self.acks_sent.inc()

    def alerts_queued(self, queued: Mapping[str, int]) -> None:
        for kind, n in queued.items():
            if kind in self.sla and n:
                self.sla[kind].inc(n)

    def watching(self, watched: bool) -> None:
        with self._lock:
            self._box = dataclasses.replace(self._box, watched=watched)

    @contextmanager
    def mailbox_pass(self, now: Callable[[], dt.datetime]) -> Iterator[None]:
        """Around one mailbox pass: MailboxUnavailable counts a failed pass (and goes on up), an end without it
        a good one. Database trouble is neither: health judges the database on its own."""
        try:
            yield
        except MailboxUnavailable as exc:
            self.mailbox_failed(str(exc))
            raise
        self.mailbox_ok(now())

    def mailbox_ok(self, now: dt.datetime) -> None:
        with self._lock:
            self._box = dataclasses.replace(self._box, failures=0, last_success_at=now, last_error="",
                                            connected=True)
        self.last_pass.set(_epoch(now))
        self.connected.set(1)
        self.failed_passes.set(0)

    def mailbox_failed(self, error: str) -> None:
        with self._lock:
            self._box = dataclasses.replace(self._box, failures=self._box.failures + 1, last_error=error[:500],
                                            connected=False)
            failures = self._box.failures
        self.connected.set(0)
        self.idling.set(0)
        self.failed_passes.set(failures)

    def idle(self, active: bool) -> None:
        self.idling.set(1 if active else 0)

    def resume(self, box: MailboxFacts) -> None:
        """Carry the failure count and last good pass over from the previous run's state file."""
        with self._lock:
            self._box = dataclasses.replace(self._box, failures=box.failures, last_success_at=box.last_success_at,
                                            last_error=box.last_error)
        if box.last_success_at is not None:
            self.last_pass.set(_epoch(box.last_success_at))
        self.failed_passes.set(box.failures)

    def mailbox(self) -> MailboxFacts:
        with self._lock:
            return self._box

    def exposition(self) -> bytes:
        """The Prometheus text format of everything above, as a scrape sees it."""
        return generate_latest(self.registry)


class _BoardCollector:
    def collect(self) -> Iterable[Metric]:
        expiry = GaugeMetricFamily("casebot_oauth_token_expiry_timestamp_seconds",
                                   "When the OAuth access token expires (Unix time)", labels=["token"])
        failing = GaugeMetricFamily("casebot_oauth_token_failing", "1 while the OAuth token cannot be refreshed",
                                    labels=["token"])
        for name, token in sorted(tokens().items()):
            if token.expires_at is not None:
                expiry.add_metric([name], _epoch(token.expires_at))
            failing.add_metric([name], 1 if token.error else 0)
        yield expiry
        yield failing


class _StoreCollector:
    """The database's counts, read when Prometheus scrapes (one `Store.stats()` per scrape)."""

    def __init__(self, store: Store, now: Callable[[], dt.datetime]) -> None:
        self.store, self.now = store, now

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("casebot_database_up", "1 when the database answered this scrape")
        try:
            stats = self.store.stats()
        except StoreError as exc:
            log.warning("metrics.database_unavailable", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = self.now()
        depth = GaugeMetricFamily("casebot_outbox_messages", "Outbox mail, by status", labels=["status"])
        age = GaugeMetricFamily("casebot_outbox_oldest_age_seconds", "Age of the oldest outbox mail, by status "
                                "(pending: waiting to be sent)", labels=["status"])
        for status in sorted({"pending", "sent", "failed", *stats.outbox}):
            depth.add_metric([status], stats.outbox.get(status, 0))
        for status in ("pending", "failed"):
            oldest = stats.outbox_oldest.get(status)
            age.add_metric([status], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        cases = GaugeMetricFamily("casebot_cases_open", "Cases not closed, by priority and status",
                                  labels=["priority", "status"])
        for (priority, status), n in sorted(stats.cases.items()):
            cases.add_metric([priority, status], n)
        yield depth
        yield age
        yield cases
        yield GaugeMetricFamily("casebot_quarantine_messages", "Messages in quarantine", value=stats.quarantined)
        yield GaugeMetricFamily("casebot_quarantine_bytes", "Raw bytes in quarantine", value=stats.quarantined_bytes)


# --- the listener ----------------------------------------------------------------------------------------------------

Health = Callable[[], tuple[bool, dict[str, Any]]]


def _handler(metrics: Metrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "casebot"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, metrics.exposition())
            elif path == "/healthz":
                try:
                    healthy, body = health()
                except Exception as exc:  # a broken check is an unhealthy answer, never a dead listener
                    healthy, body = False, {"status": "unhealthy", "healthy": False,
                                            "reasons": [f"health check failed: {type(exc).__name__}: {exc}"]}
                self._send(200 if healthy else 503, "application/json",
                           json.dumps(body, indent=2).encode() + b"\n")
            else:
                self._send(404, "text/plain; charset=utf-8", b"casebot: /metrics or /healthz\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics.request", line=format % args)

    return Handler


class Listener:
    """A thread serving /metrics and /healthz on (host, port); port 0 takes a free one (`port` says which)."""

    def __init__(self, host: str, port: int, metrics: Metrics, health: Health) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        self.server: ThreadingHTTPServer = server_class((host, port), _handler(metrics, health))
        self.host, self.port = host, int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="casebot-metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
