"""Running the real `casebot` command as a daemon in tests: its config, start and stop by PID, its JSON log.

Shared by the end-to-end tests (tests/integration/test_daemon.py, test_failover.py). A test module that starts
daemons imports `no_daemon_outlives_its_test` so that pytest uses it as an autouse fixture there. Must not kill
anything by name: every daemon is stopped by its own PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import ImapAccount, SmtpSink

from casebot.store import Store

CASEBOT = [sys.executable, "-m", "casebot"]


def write_config(tmp: Path, account: ImapAccount, sink: SmtpSink, db_url: str, **extra: str) -> Path:
    sections = {
        "mailbox": (
            f'kind = "imap"\nhost = "{account.host}"\nport = {account.port}\nsecurity = "none"\n'
            f'username = "{account.user}"\npassword_env = "CASEBOT_TEST_IMAP_PASSWORD"\n'
            f"poll_interval = 30.0\ntimeout = 5.0\n" + extra.get("mailbox", "")
        ),
        "outgoing": (
            f'kind = "smtp"\nhost = "{sink.host}"\nport = {sink.port}\nsecurity = "none"\n'
            f'from_address = "Example Support <support@example.com>"\nretry_base = 0.2\n' + extra.get("outgoing", "")
        ),
        "database": f'url = "{db_url}"\n',
        "acknowledgement": "rate_limit = 0\n",
        "logging": 'level = "debug"\nformat = "json"\n',
        "daemon": extra.get("daemon", "deliver_interval = 0.3\n"),
    }
    path = tmp / "casebot.toml"
    path.write_text("".join(f"[{name}]\n{body}\n" for name, body in sections.items()))
    return path


def env() -> dict[str, str]:
    return {**os.environ, "CASEBOT_TEST_IMAP_PASSWORD": "secret"}


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_daemon_outlives_its_test() -> Iterator[None]:
    """Whatever a test asserts, every daemon it started is gone afterwards (by PID, never by name)."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([*CASEBOT, "--config", str(config), "run"], stdout=out, stderr=out, env=env())
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def events(log: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if not log.exists():
        return out
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def idles(log: Path) -> int:
    return sum(1 for e in events(log) if e.get("event") == "mailbox.idle")


def wait_until(predicate: object, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def cases_json(config: Path) -> list[dict[str, object]]:
    out = subprocess.run([*CASEBOT, "--config", str(config), "cases", "list", "--json"], env=env(),
                         capture_output=True, check=True, timeout=60)
    result: list[dict[str, object]] = json.loads(out.stdout)
    return result


def drained(account: ImapAccount, store: Store) -> bool:
    """Nothing left unprocessed in the INBOX and nothing pending in the outbox (and something was queued)."""
    c = account.connect()
    try:
        c.select_folder("INBOX", readonly=True)
        left = c.search(["UNKEYWORD", "$CasebotProcessed"])
    finally:
        c.logout()
    counts = store.outbox_counts()
    return not left and counts.get("pending", 0) == 0 and bool(counts)
