"""Health end to end: the real `casebot run` serving /metrics and /healthz on 127.0.0.1, its private Dovecot
stopped under it, and `casebot status` (exit 0 healthy, 1 unhealthy) with and without the daemon running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemons import (
    CASEBOT,
    env,
    no_daemon_outlives_its_test,  # noqa: F401  (autouse fixture: every daemon a test starts is stopped)
    start_daemon,
    stop,
    wait_until,
    write_config,
)
from servers import DovecotServer, ImapAccount, SmtpSink, dovecot_available, free_port
from test_metrics import healthz, scrape, total, value

from casebot.cli_parser import EX_FAIL, EX_OK

pytestmark = pytest.mark.skipif(not dovecot_available(), reason="needs Dovecot")


@pytest.fixture
def own_dovecot() -> Iterator[tuple[DovecotServer, ImapAccount]]:
    """A Dovecot of this test's own, which the test may stop (the session's is shared)."""
    server = DovecotServer.start()
    try:
        yield server, ImapAccount(server.host, server.port, server.new_user(), server.password, server)
    finally:
        server.stop()


def message(n: int) -> bytes:
    return (f"From: Alice <alice@client.example>\r\nTo: support@example.com\r\nSubject: Printer on fire {n}\r\n"
            f"Message-ID: <health-{n}-{os.getpid()}@client.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            f"\r\nIt does not print.\r\n").encode()


def configure(tmp: Path, account: ImapAccount, sink: SmtpSink, db_url: str, port: int, **health: object) -> Path:
    config = write_config(tmp, account, sink, db_url, mailbox="reconnect_max_delay = 1.0\n")
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in health.items())
    with config.open("a") as out:
        out.write(f'[metrics]\nlisten = "127.0.0.1:{port}"\n\n[health]\n{lines}')
    return config


def status(config: Path, *extra: str) -> tuple[int, str]:
    done = subprocess.run([*CASEBOT, "--config", str(config), "status", *extra], env=env(), capture_output=True,
                          timeout=60, text=True)
    return done.returncode, done.stdout + done.stderr


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def test_healthz_and_status_follow_the_mailbox_server(
    tmp_path: Path, own_dovecot: tuple[DovecotServer, ImapAccount], smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    server, account = own_dovecot
    port = free_port()
    config = configure(tmp_path, account, smtp_sink, sqlite_url, port, mailbox_failed_passes=1)
    proc = start_daemon(config, tmp_path / "daemon.log")
    try:
        wait_until(lambda: answers(port), 30, "the daemon's listener")
        wait_until(lambda: value(scrape(port), "casebot_mailbox_connected") == 1, 30, "a first mailbox pass")
        assert healthz(port)[0] == 200
        assert value(scrape(port), "casebot_mailbox_idle_active") in (0, 1)

        account.append(message(1))
        assert smtp_sink.wait_for(1, timeout=30), "the acknowledgement did not leave"
        wait_until(lambda: value(scrape(port), "casebot_acknowledgements_sent_total") == 1, 15, "ack counted")
        samples = scrape(port)
        assert value(samples, "casebot_messages_ingested_total", outcome="opened") == 1
        assert value(samples, "casebot_deliveries_total", result="sent") == 1
        assert total(samples, "casebot_cases_open") == 1

        rc, out = status(config)
        assert rc == EX_OK, out
        assert "healthy (from the daemon's /healthz" in out

        server.stop()  # the mailbox server goes away under the running daemon
        wait_until(lambda: healthz(port)[0] == 503, 60, "/healthz to turn 503")
        body: dict[str, Any] = healthz(port)[1]
        assert any(r.startswith("mailbox unreachable") for r in body["reasons"]), body
        assert value(scrape(port), "casebot_mailbox_connected") == 0

        rc, out = status(config)
        assert rc == EX_FAIL, out
        assert "UNHEALTHY" in out and "mailbox unreachable" in out
        # The state file says the same without asking the daemon.
        wait_until(lambda: status(config, "--local")[0] == EX_FAIL, 30, "the state file to record the failures")
        rc, out = status(config, "--local", "--json")
        local = json.loads(out)
        assert local["healthy"] is False and local["daemon"]["running"] is True
    finally:
        assert stop(proc) == 0
    assert not answers(port), "the listener outlived the daemon"
    # No daemon now: `casebot status` judges from the database and the state file the daemon left.
    rc, out = status(config)
    assert rc == EX_FAIL, out
    assert "no daemon answered" in out and "mailbox unreachable" in out and "stopped" in out


def test_status_without_a_daemon_healthy_then_stuck_outbox_then_killed_daemon(
    tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink, sqlite_url: str
) -> None:
    # Before casebot ever ran: no database yet.
    config = configure(tmp_path, imap_account, smtp_sink, sqlite_url, free_port(), outbox_stuck_seconds=0.5,
                       stale_seconds=1.5)
    rc, out = status(config)
    assert rc == EX_FAIL and "does not exist" in out, out

    # One `casebot poll`: the message is stored and acknowledged; healthy.
    imap_account.append(message(2))
    subprocess.run([*CASEBOT, "--config", str(config), "poll"], env=env(), check=True, capture_output=True,
                   timeout=60)
    rc, out = status(config)
    assert rc == EX_OK, out
    assert "poll pid" in out

    # The SMTP server answers 451 from now on: the next acknowledgement stays pending, the outbox turns stuck.
    smtp_sink.mode = "tempfail"
    imap_account.append(message(3))
    subprocess.run([*CASEBOT, "--config", str(config), "poll"], env=env(), capture_output=True, timeout=60)
    wait_until(lambda: status(config)[0] == EX_FAIL, 20, "the pending acknowledgement to count as stuck")
    rc, out = status(config, "--json")
    assert json.loads(out)["reasons"][0].startswith("outbox stuck"), out

    # A daemon killed with SIGKILL leaves a state file that says "running" and then goes stale.
    proc = start_daemon(config, tmp_path / "daemon.log")
    state = tmp_path / "health.json"
    wait_until(lambda: state.exists() and json.loads(state.read_text())["mode"] == "daemon", 30, "daemon state")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_until(lambda: "has not updated its state" in status(config, "--local")[1], 20, "the state to go stale")
