"""Metrics and health over real HTTP: a Runtime fed by the harness (Dovecot, the SMTP sink, SQLite/PostgreSQL),
scraped on 127.0.0.1; the shipped Prometheus rules and Grafana dashboard checked against a real scrape.

The daemon end to end (its listener, /healthz turning 503 when Dovecot stops, `casebot status` exit codes) is in
test_health_daemon.py.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cbtest import Harness, make_mail, quiet_logs
from prometheus_client.parser import text_string_to_metric_families
from servers import ImapAccount, SmtpSink

from casebot import metrics, monitor
from casebot.service import Runtime
from casebot.transport import MailboxUnavailable

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _labels), v in samples.items() if n == name)


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Served:
    """A Runtime with its listener on an ephemeral port, /healthz judged as the daemon judges it."""

    def __init__(self, harness: Harness) -> None:
        self.runtime = Runtime.build(harness.settings(), now=harness.now)
        self.reporter = monitor.Reporter(self.runtime.settings, self.runtime.metrics, harness.now, "daemon",
                                         resume=False)
        self.listener = metrics.Listener("127.0.0.1", 0, self.runtime.metrics, self._health)
        self.port = self.listener.port
        self.stop = threading.Event()

    def _health(self) -> tuple[bool, dict[str, Any]]:
        verdict = monitor.live(self.runtime.store, self.reporter, monitor.thresholds(self.runtime.settings))
        return verdict.healthy, verdict.as_json()

    def close(self) -> None:
        self.listener.close()
        self.runtime.close()


@pytest.fixture
def served(imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str) -> Iterator[tuple[Harness, Served]]:
    harness = Harness(imap_account, smtp_sink, db_url, overrides={
        "health": {"outbox_stuck_seconds": 600.0}, "acknowledgement": {"rate_limit": 0},
        "outgoing": {"retry_base": 1.0},
    })
    metrics.forget_tokens()
    with quiet_logs():
        s = Served(harness)
        try:
            yield harness, s
        finally:
            s.close()
            harness.close()
            metrics.forget_tokens()


def test_scrape_follows_ingest_and_delivery(served: tuple[Harness, Served], smtp_sink: SmtpSink) -> None:
    h, s = served
    before = scrape(s.port)
    assert total(before, "casebot_messages_ingested_total") == 0
    assert value(before, "casebot_database_up") == 1
    assert value(before, "casebot_outbox_messages", status="pending") == 0
    assert value(before, "casebot_mailbox_connected") == 0  # no pass yet
    assert healthz(s.port)[0] == 200

    human = make_mail("Alice <alice@client.example>", "Printer broken")
    h.append(human, make_mail("Bob <bob@client.example>", "Out of office",
                              headers=[("Auto-Submitted", "auto-replied")]),
             make_mail("Carol <carol@client.example>", "Invoice", headers=[("Reply-To", "noreply@client.example")]))
    s.runtime.ingest_once(s.stop)
    after = scrape(s.port)
    assert value(after, "casebot_messages_ingested_total", outcome="opened") == 2
    assert value(after, "casebot_messages_ingested_total", outcome="automated") == 1
    assert value(after, "casebot_acknowledgements_queued_total") == 1
    assert value(after, "casebot_acknowledgements_suppressed_total", reason="no_address") == 1
    assert value(after, "casebot_ingest_duration_seconds_count") == 3
    assert value(after, "casebot_outbox_messages", status="pending") == 1
    assert value(after, "casebot_mailbox_connected") == 1
    assert value(after, "casebot_mailbox_last_success_timestamp_seconds") == pytest.approx(h.now().timestamp(), abs=5)
    assert total(after, "casebot_cases_open") == len([c for c in h.cases() if c.status != "closed"]) >= 1
    assert value(after, "casebot_quarantine_messages") == 0

    h.append(human)  # the same message again
    assert s.runtime.mailbox is not None
    s.runtime.mailbox.close()  # a new session sees the APPEND at once (the daemon learns of it through IDLE)
    s.runtime.ingest_once(s.stop)
    assert value(scrape(s.port), "casebot_messages_ingested_total", outcome="duplicate") == 1

    # The acknowledgement waits: /healthz says the outbox is stuck once it is older than the limit.
    h.advance(601)
    code, body = healthz(s.port)
    assert code == 503
    assert body["status"] == "unhealthy" and body["reasons"][0].startswith("outbox stuck")
    assert value(scrape(s.port), "casebot_outbox_oldest_age_seconds", status="pending") >= 601

    smtp_sink.fail_next(1)  # a 451 first: one retry, then sent
    s.runtime.deliver_once(s.stop)
    assert value(scrape(s.port), "casebot_deliveries_total", result="retry") == 1
    h.advance(5)
    s.runtime.deliver_once(s.stop)
    done = scrape(s.port)
    assert value(done, "casebot_deliveries_total", result="sent") == 1
    assert value(done, "casebot_acknowledgements_sent_total") == 1
    assert value(done, "casebot_outbox_messages", status="pending") == 0
    assert value(done, "casebot_outbox_messages", status="sent") == 1
    code, body = healthz(s.port)
    assert code == 200 and body["status"] == "ok" and body["reasons"] == []
    assert body["outbox"]["pending"] == 0


def test_healthz_turns_503_for_a_failing_mailbox_and_a_failing_token(
    imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    harness = Harness(imap_account, smtp_sink, sqlite_url, overrides={
        "mailbox": {"port": 1, "timeout": 2.0}, "health": {"mailbox_failed_passes": 1}})
    metrics.forget_tokens()
    with quiet_logs():
        s = Served(harness)
        try:
            for attempt in (1, 2):
                with pytest.raises(MailboxUnavailable):
                    s.runtime.ingest_once(s.stop)
                code, body = healthz(s.port)
                assert body["mailbox"]["failed_passes"] == attempt
                assert code == (200 if attempt == 1 else 503)
            assert body["reasons"][0].startswith("mailbox unreachable for 2 passes in a row")
            samples = scrape(s.port)
            assert value(samples, "casebot_mailbox_failed_passes") == 2
            assert value(samples, "casebot_mailbox_connected") == 0

            metrics.set_token_expiry("mailbox", harness.now().timestamp() + 3600)
            metrics.set_token_failing("mailbox", "invalid_grant: the refresh token was revoked")
            code, body = healthz(s.port)
            assert code == 503
            assert "OAuth token mailbox failing: invalid_grant: the refresh token was revoked" in body["reasons"]
            samples = scrape(s.port)
            assert value(samples, "casebot_oauth_token_failing", token="mailbox") == 1
            assert value(samples, "casebot_oauth_token_expiry_timestamp_seconds", token="mailbox") == \
                pytest.approx(harness.now().timestamp() + 3600, abs=5)
        finally:
            s.close()
            harness.close()
            metrics.forget_tokens()


def test_healthz_says_when_the_database_is_gone(
    imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    harness = Harness(imap_account, smtp_sink, sqlite_url)
    with quiet_logs():
        s = Served(harness)
        try:
            assert healthz(s.port)[0] == 200
            s.runtime.store.close()  # its connections go; the next scrape opens a new one
            path = Path(sqlite_url[len("sqlite:///"):])
            for leftover in path.parent.glob(path.name + "*"):
                leftover.unlink()
            path.mkdir()  # a folder where the database was: SQLite cannot open it
            code, body = healthz(s.port)
            assert code == 503
            assert body["reasons"][0].startswith("database unreachable")
            assert value(scrape(s.port), "casebot_database_up") == 0
        finally:
            s.close()
            harness.close()


def test_unknown_paths_are_404(served: tuple[Harness, Served]) -> None:
    _h, s = served
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{s.port}/", timeout=10)
    assert info.value.code == 404


# --- the shipped alert rules and dashboard -------------------------------------------------------------------------

CONTRIB = [ROOT / "contrib" / "prometheus" / "casebot-alerts.yml",
           ROOT / "contrib" / "grafana" / "casebot-dashboard.json"]


def _names_used(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        exprs = [t["expr"] for p in json.loads(text)["panels"] for t in p["targets"]]
    else:
        exprs = re.findall(r"expr:(.*?)\n\s+(?:for|labels):", text, re.S)  # one-line or folded (>)
    assert exprs, f"no expressions found in {path.name}"
    return {name for e in exprs for name in re.findall(r"\bcasebot_[a-z_]+\b", e)}


def test_alert_rules_cover_what_the_issue_names() -> None:
    text = CONTRIB[0].read_text(encoding="utf-8")
    alerts = re.findall(r"- alert: (\w+)", text)
    assert {"CasebotDown", "CasebotMailboxStuck", "CasebotOutboxStuck", "CasebotQuarantineGrowing",
            "CasebotSlaBreaches", "CasebotOAuthTokenExpiring"} <= set(alerts)
    # Every rule has an expression, labels and a summary.
    assert len(re.findall(r"^\s+expr:", text, re.M)) == len(alerts) == len(re.findall(r"summary:", text))


@pytest.mark.parametrize("path", CONTRIB, ids=[p.name for p in CONTRIB])
def test_every_metric_the_contrib_files_use_exists_in_a_real_scrape(
    path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    harness = Harness(imap_account, smtp_sink, sqlite_url)
    metrics.forget_tokens()
    with quiet_logs():
        s = Served(harness)
        try:
            harness.append(make_mail("Alice <alice@client.example>", "Printer broken"))
            s.runtime.ingest_once(s.stop)
            metrics.set_token_expiry("mailbox", harness.now().timestamp() + 3600)
            scraped = {name for name, _labels in scrape(s.port)}
        finally:
            s.close()
            harness.close()
            metrics.forget_tokens()
    used = _names_used(path)
    assert len(used) >= 8, used
    missing = sorted(used - scraped)
    assert not missing, f"{path.name} uses metrics casebot does not export: {missing}"
