"""health.judge as a table: facts + now -> healthy or not, with which reasons; the state file's JSON both ways."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from casebot import metrics, monitor
from casebot.config import ConfigError, from_mapping
from casebot.health import (
    MailboxFacts,
    Published,
    Snapshot,
    Thresholds,
    TokenState,
    judge,
    published_from_json,
    published_json,
)

NOW = dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)
LIMITS = Thresholds(mailbox_failed_passes=3, outbox_stuck_seconds=900, stale_seconds=300)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def daemon(**kw: object) -> Published:
    base = Published(mode="daemon", pid=42, running=True, updated_at=ago(5), started_at=ago(3600),
                     mailbox=MailboxFacts(watched=True, failures=0, last_success_at=ago(5), connected=True))
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def box(**kw: object) -> MailboxFacts:
    return dataclasses.replace(daemon().mailbox, **kw)  # type: ignore[arg-type]


CASES: list[tuple[str, Snapshot, list[str]]] = [
    ("nothing published yet, empty database", Snapshot(), []),
    ("a healthy daemon", Snapshot(published=daemon()), []),
    ("database unreachable", Snapshot(database_error="connection refused", published=daemon()),
     ["database unreachable: connection refused"]),
    ("mailbox failed exactly N passes: still healthy",
     Snapshot(published=daemon(mailbox=box(failures=3, connected=False, last_error="refused"))), []),
    ("mailbox failed N+1 passes",
     Snapshot(published=daemon(mailbox=box(failures=4, connected=False, last_error="IMAP refused"))),
     ["mailbox unreachable for 4 passes in a row"]),
    ("a follower does not watch the mailbox: its failures do not count",
     Snapshot(published=daemon(mailbox=box(watched=False, failures=9))), []),
    ("outbox pending for less than the limit", Snapshot(outbox_pending=2, oldest_pending_at=ago(899)), []),
    ("outbox stuck", Snapshot(outbox_pending=2, oldest_pending_at=ago(901)),
     ["outbox stuck: the oldest of 2 pending mail(s) has waited 901 s"]),
    ("a failing token", Snapshot(published=daemon(tokens={"mailbox": TokenState(ago(-60), "invalid_grant")})),
     ["OAuth token mailbox failing: invalid_grant"]),
    ("a working token", Snapshot(published=daemon(tokens={"mailbox": TokenState(ago(-60), "")})), []),
    ("a daemon silent for longer than stale_seconds (read from its state file)",
     Snapshot(published=daemon(updated_at=ago(301))), ["the daemon (pid 42) has not updated its state for 301 s"]),
    ("the same facts, live in the daemon itself: never stale", Snapshot(published=daemon(updated_at=ago(301)),
                                                                        live=True), []),
    ("a daemon that stopped cleanly is not stale", Snapshot(published=daemon(updated_at=ago(9999), running=False)),
     []),
    ("a cron poll long ago is not stale", Snapshot(published=daemon(mode="poll", running=False,
                                                                    updated_at=ago(9999))), []),
    ("everything at once",
     Snapshot(database_error="down", outbox_pending=1, oldest_pending_at=ago(10_000),
              published=daemon(mailbox=box(failures=5), updated_at=ago(600),
                               tokens={"outgoing": TokenState(None, "revoked")})),
     ["database unreachable", "mailbox unreachable", "outbox stuck", "OAuth token outgoing failing",
      "the daemon (pid 42) has not updated its state"]),
]


@pytest.mark.parametrize(("snap", "expected"), [(s, e) for _n, s, e in CASES], ids=[n for n, _s, _e in CASES])
def test_judge(snap: Snapshot, expected: list[str]) -> None:
    verdict = judge(snap, LIMITS, NOW)
    assert verdict.healthy == (not expected)
    assert len(verdict.reasons) == len(expected)
    for reason, start in zip(verdict.reasons, expected, strict=True):
        assert reason.startswith(start), (reason, start)
    body = verdict.as_json()
    assert body["status"] == ("ok" if not expected else "unhealthy")
    assert body["reasons"] == list(verdict.reasons)


def test_zero_failed_passes_means_the_first_failure_counts() -> None:
    snap = Snapshot(published=daemon(mailbox=box(failures=1)))
    assert not judge(snap, dataclasses.replace(LIMITS, mailbox_failed_passes=0), NOW).healthy
    assert judge(snap, LIMITS, NOW).healthy


def test_verdict_json_carries_the_facts() -> None:
    body = judge(Snapshot(outbox_pending=3, oldest_pending_at=ago(20), quarantined=2, published=daemon()),
                 LIMITS, NOW).as_json()
    assert body["outbox"] == {"pending": 3, "oldest_pending_age_seconds": 20.0}
    assert body["quarantine"] == 2
    assert body["mailbox"]["connected"] is True
    assert body["daemon"]["pid"] == 42 and body["daemon"]["seconds_since_update"] == 5.0
    assert body["database"] == "ok"


def test_state_json_round_trip() -> None:
    pub = daemon(mailbox=box(failures=2, last_error="refused", connected=False),
                 tokens={"mailbox": TokenState(ago(-3600), ""), "outgoing": TokenState(None, "revoked")})
    assert published_from_json(published_json(pub)) == pub


@pytest.mark.parametrize("data", [None, [], {}, {"version": 2}, {"version": 1, "mode": "daemon"},
                                  {**published_json(daemon()), "updated_at": "not a time"},
                                  {**published_json(daemon()), "pid": "x"}])
def test_state_json_that_is_not_ours_is_none(data: object) -> None:
    assert published_from_json(data) is None


@pytest.mark.parametrize(("note", "reason"), [
    ("acknowledgements disabled (acknowledgement.enabled = false)", "disabled"),
    ("automated mail: Auto-Submitted: auto-replied", "automated"),
    ("the sender is staff", "staff"),
    ("no address to reply to (Reply-To/From: empty)", "no_address"),
    ("Reply-To noreply@x.example does not take replies", "no_address"),
    ("rate limit: 5 acknowledgements to a@b.example in the window (limit 5)", "rate_limit"),
    ("acknowledgement failed", "failed"),
    ("something new", "other"),
])
def test_ack_reasons_are_a_bounded_set(note: str, reason: str) -> None:
    assert metrics.ack_reason(note) == reason
    assert reason in metrics.ACK_REASONS


def test_token_board() -> None:
    metrics.forget_tokens()
    try:
        metrics.set_token_expiry("mailbox", 1_800_000_000)
        metrics.set_token_failing("mailbox", "invalid_grant")
        assert metrics.tokens()["mailbox"] == TokenState(dt.datetime.fromtimestamp(1_800_000_000, dt.UTC),
                                                         "invalid_grant")
        metrics.set_token_failing("mailbox", None)
        assert metrics.tokens()["mailbox"].error == ""
        text = metrics.Metrics().exposition().decode()
        assert 'casebot_oauth_token_expiry_timestamp_seconds{token="mailbox"} 1.8e+09' in text
        assert 'casebot_oauth_token_failing{token="mailbox"} 0.0' in text
    finally:
        metrics.forget_tokens()


@pytest.mark.parametrize(("listen", "expected"), [
    ("", None), ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9464", ("::1", 9464)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
])
def test_metrics_listen(listen: str, expected: tuple[str, int] | None) -> None:
    settings = from_mapping({"mailbox": {"kind": "pipe"}, "metrics": {"listen": listen}})
    assert settings.metrics.address == expected


@pytest.mark.parametrize(("section", "why"), [
    ({"metrics": {"listen": "9464"}}, "metrics.listen: expected 'HOST:PORT'"),
    ({"metrics": {"listen": "127.0.0.1:99999"}}, "metrics.listen: expected 'HOST:PORT'"),
    ({"metrics": {"listen": ":9464"}}, "metrics.listen: expected 'HOST:PORT'"),
    ({"health": {"outbox_stuck_seconds": 0}}, "health.outbox_stuck_seconds: must be greater than zero"),
    ({"health": {"stale_seconds": -1}}, "health.stale_seconds: must be greater than zero"),
    ({"health": {"mailbox_failed_passes": -1}}, "health.mailbox_failed_passes: must be 0"),
    ({"health": {"mailbox_failed_passes": "3"}}, "health.mailbox_failed_passes"),
])
def test_bad_monitoring_keys_name_the_key(section: dict[str, Any], why: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(why)):
        from_mapping({"mailbox": {"kind": "pipe"}, **section})


def test_state_file_defaults_beside_the_sqlite_database(tmp_path: Path) -> None:
    pipe = {"kind": "pipe"}
    assert monitor.state_path(from_mapping({"mailbox": pipe})) == Path("/var/lib/casebot/health.json")
    db = from_mapping({"mailbox": pipe, "database": {"url": f"sqlite:///{tmp_path}/x/casebot.db"}})
    assert monitor.state_path(db) == tmp_path / "x" / "health.json"
    pg = from_mapping({"mailbox": pipe, "database": {"url": "postgresql+psycopg://u@h/db"}})
    # Beside no database file: /var/lib/casebot/health.json where the installed layout made that folder, else none.
    assert monitor.state_path(pg) == (monitor.DEFAULT_STATE if monitor.DEFAULT_STATE.parent.is_dir() else None)
    given = from_mapping({"mailbox": pipe, "health": {"state_file": "state.json"}}, source=tmp_path / "c.toml")
    assert monitor.state_path(given) == tmp_path / "state.json"


def test_state_file_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "health.json"
    monitor.write_state(path, daemon())
    assert monitor.read_state(path) == daemon()
    assert [p.name for p in path.parent.iterdir()] == ["health.json"]  # no temporary file left behind
    path.write_text("{not json")
    assert monitor.read_state(path) is None
    assert monitor.read_state(tmp_path / "missing.json") is None


def test_reporter_writes_on_change_and_resumes_the_failure_count(tmp_path: Path) -> None:
    settings = from_mapping({"mailbox": {"kind": "pipe"}, "health": {"state_file": str(tmp_path / "h.json")}})
    observed = metrics.Metrics(watched=True)
    reporter = monitor.Reporter(settings, observed, lambda: NOW, "daemon")
    reporter.publish(if_changed=True)
    path = tmp_path / "h.json"
    assert path.exists()
    path.unlink()
    reporter.publish(if_changed=True)  # nothing changed: nothing written
    assert not path.exists()
    observed.mailbox_failed("IMAP refused")
    reporter.publish(if_changed=True)
    state = monitor.read_state(path)
    assert state is not None and state.mailbox.failures == 1 and state.running and state.mode == "daemon"
    # The next run counts on from there.
    again = metrics.Metrics(watched=True)
    monitor.Reporter(settings, again, lambda: NOW, "poll")
    again.mailbox_failed("IMAP refused")
    assert again.mailbox().failures == 2
    again.mailbox_ok(NOW)
    assert again.mailbox() == MailboxFacts(watched=True, failures=0, last_success_at=NOW, connected=True)
