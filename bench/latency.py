"""Intake latency: from a mail's APPEND to its acknowledgement accepted by the SMTP server, split in two parts.

    .venv/bin/python bench/latency.py [--count 40] [--database sqlite|postgresql] [--json]

Starts a private Dovecot and an SMTP sink (tests/servers.py) and a real `casebot run` (debug logs as JSON). Then,
one at a time, it APPENDs a new client's mail and waits for its acknowledgement and for the daemon to be back in
IDLE before the next. For each mail:

* **server part**: APPEND returned -> casebot's `mailbox.idle_notice` log event (the moment IDLE told casebot
  about the mail): Dovecot's own notification delay, not casebot's.
* **casebot part**: `mailbox.idle_notice` -> the sink accepted the acknowledgement's DATA (fetch, parse, the
  case committed, the mail marked processed, the deliver job woken, SMTP). The target is a median under 100 ms.

Both clocks are this host's `time.time()` (the log's ISO timestamps are UTC with microseconds). The first mail
is reported but left out of the figures: it pays for the first SMTP connection and warm caches.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from machine import machine_info  # noqa: E402
from servers import DovecotServer, PostgresDatabase, SmtpSink  # noqa: E402

CONFIG = """\
[mailbox]
kind = "imap"
host = "{host}"
port = {port}
security = "none"
username = "{user}"
password = "{password}"
poll_interval = 60.0

[outgoing]
kind = "smtp"
host = "{smtp_host}"
port = {smtp_port}
security = "none"
from_address = "Example Support <support@example.com>"

[database]
url = "{db_url}"

[logging]
level = "debug"
format = "json"
"""


def log(message: str) -> None:
    print(f"[latency] {message}", file=sys.stderr, flush=True)


def events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def stamp(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.002)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def mail(i: int) -> bytes:
    return (
        f"From: Client {i} <client{i}@customer{i}.example>\r\nTo: support@example.com\r\n"
        f"Subject: Latency probe {i}\r\nMessage-ID: <latency-{i}-{time.time_ns()}@customer.example>\r\n"
        f"Date: {email_date()}\r\n\r\nHello, the export fails. {i}\r\n"
    ).encode()


def email_date() -> str:
    import email.utils

    return email.utils.format_datetime(dt.datetime.now(dt.UTC))


def measure(args: argparse.Namespace, workdir: Path, db_url: str) -> dict[str, Any]:
    dovecot, sink = DovecotServer.start(), SmtpSink().start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        user = dovecot.new_user()
        config = workdir / "casebot.toml"
        config.write_text(CONFIG.format(host=dovecot.host, port=dovecot.port, user=user, password=dovecot.password,
                                        smtp_host=sink.host, smtp_port=sink.port, db_url=db_url))
        logfile = workdir / "daemon.log"
        with open(logfile, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "casebot", "--config", str(config), "run"],
                                    stdout=out, stderr=out, start_new_session=True)

        def idles() -> int:
            return sum(1 for e in events(logfile) if e.get("event") == "mailbox.idle")

        wait(lambda: idles() >= 1, 60, "the daemon to enter IDLE")
        rows: list[dict[str, float]] = []
        for i in range(args.count):
            before = idles()
            appended_at = time.time()
            dovecot.append(user, mail(i), "INBOX")
            append_done = time.time()
            wait(lambda n=i + 1: len(sink.messages) >= n, 30, f"acknowledgement {i}")
            accepted = sink.messages[i].received_at
            wait(lambda b=before: idles() > b, 30, "the daemon back in IDLE")
            notices = [stamp(e) for e in events(logfile)
                       if e.get("event") == "mailbox.idle_notice" and stamp(e) >= appended_at]
            if not notices:
                raise RuntimeError(f"no mailbox.idle_notice after APPEND {i}")
            rows.append({"server_ms": (notices[0] - append_done) * 1000, "casebot_ms": (accepted - notices[0]) * 1000,
                         "total_ms": (accepted - appended_at) * 1000})
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        sink.stop()
        dovecot.stop()
    measured = rows[1:] if len(rows) > 1 else rows

    def summary(key: str) -> dict[str, float]:
        values = sorted(r[key] for r in measured)
        return {"median": round(statistics.median(values), 1), "p90": round(values[int(0.9 * (len(values) - 1))], 1),
                "max": round(values[-1], 1)}

    return {"count": len(measured), "first_mail": {k: round(v, 1) for k, v in rows[0].items()},
            "server_ms": summary("server_ms"), "casebot_ms": summary("casebot_ms"), "total_ms": summary("total_ms")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--count", type=int, default=40, help="mails to send one after another (default 40)")
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.count < 2:
        p.error("--count must be at least 2")
    machine = machine_info(dovecot=True)
    with tempfile.TemporaryDirectory(prefix="casebot-latency-") as tmp:
        workdir = Path(tmp)
        if args.database == "sqlite":
            result = measure(args, workdir, f"sqlite:///{workdir / 'casebot.db'}")
        else:
            db = PostgresDatabase(os.environ.get("CASEBOT_TEST_POSTGRES_URL",
                                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test")).create()
            try:
                result = measure(args, workdir, db.url)
            finally:
                db.drop()
    report = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "database": args.database,
              "machine": machine, **result}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"intake latency, {args.database}, {result['count']} mails (first left out: {result['first_mail']})")
        for key, label in (("server_ms", "APPEND -> IDLE notice (Dovecot)"),
                           ("casebot_ms", "IDLE notice -> ack accepted (casebot)"),
                           ("total_ms", "APPEND -> ack accepted")):
            s = result[key]
            print(f"  {label:40} median {s['median']:7.1f} ms  p90 {s['p90']:7.1f}  max {s['max']:7.1f}")
        verdict = "PASS" if result["casebot_ms"]["median"] < 100 else "FAIL"
        print(f"casebot's part median {result['casebot_ms']['median']} ms: {verdict} (target under 100 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
