"""Peak memory while ingesting one big mail: `casebot ingest` (the MTA pipe) or `casebot poll` on a Maildir.

    .venv/bin/python bench/bigmail.py [--mb 30] [--via pipe|maildir] [--limit BYTES] [--runs 1] [--json]
                                      [--tracemalloc]

Builds one message of about `--mb` MiB (a short text part, a quoted-printable text attachment of 1 MiB and a
base64 binary attachment making up the rest), writes a config for a fresh SQLite database in a temp folder and
runs `python -m casebot --config X ingest < big.eml` (or `poll` over a Maildir holding the file) as a child
process. Reported: the child's peak RSS (`ru_maxrss` from `wait4`), its wall and CPU time, and what was stored
(checked: one case, the attachments' bytes and sizes as sent). `--limit` sets `mailbox.max_message_bytes`
(default: the config default, 50 MiB), so `--mb 60` shows the size limit's path. `--tracemalloc` runs the same
ingest in this process under `tracemalloc` instead and prints the ten biggest allocation sites at the peak
(numbers then include tracemalloc's own overhead; use it to find where memory goes, not for the figure).
See bench/README.md; figures are in bench/RESULTS.md. Not a test: nothing here is timed against a limit.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import quopri
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from machine import cpu_probe_ms, machine_info  # noqa: E402

CONFIG = """\
# Written by bench/bigmail.py.
[mailbox]
kind = "{kind}"
path = "{inbox}"
{limit_line}

[outgoing]
kind = "maildir"
path = "{sent}"
from_address = "Example Support <support@example.com>"

[database]
url = "sqlite:///{db}"

[logging]
level = "warning"
format = "json"
"""


def build_message(mib: float, seed: int = 1) -> tuple[bytes, dict[str, bytes]]:
    """One realistic big mail: returns the raw bytes and the attachments' decoded bytes by file name."""
    rng = random.Random(seed)
    text_att = b"".join(b"line %d of the log, temperature %d\n" % (i, rng.randrange(100)) for i in range(30_000))
    text_att = text_att[: 1 << 20]
    target = int(mib * (1 << 20))
    qp_len = len(quopri.encodestring(text_att)) + text_att.count(b"\n")  # CRLF line ends
    binary_len = max(0, (target - qp_len - 1024) * 3 * 76 // (4 * 78))  # base64 in 76-character CRLF lines
    binary = rng.randbytes(binary_len)
    boundary = "=_bigmail_boundary_1"
    b64 = base64.encodebytes(binary).replace(b"\n", b"\r\n")
    parts = [
        b"From: Big Sender <big@client.example>\r\nTo: support@example.com\r\nSubject: The scans you asked for\r\n"
        b"Date: Tue, 03 Mar 2026 10:15:00 +0000\r\nMessage-ID: <bigmail-1@client.example>\r\n"
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode(),
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode(),
        b"Hello, the scans and the printer log are attached.\r\n",
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        f'\r\nContent-Disposition: attachment; filename="printer.log"\r\n\r\n'.encode(),
        quopri.encodestring(text_att).replace(b"\n", b"\r\n"),
        f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="scans.pdf"\r\n\r\n'.encode(),
        b64,
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), {"printer.log": text_att.replace(b"\n", b"\r\n"), "scans.pdf": binary}


def _run_child(args: list[str], stdin_path: Path | None, cwd: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        assert proc.stdout is not None and proc.stderr is not None
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "stdout": out.strip(), "stderr": err.strip()[-2000:],
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def _stored(db: Path) -> dict[str, Any]:
    con = sqlite3.connect(db)
    try:
        messages = con.execute("SELECT id, length(raw), defects FROM messages").fetchall()
        atts = {name: (size, sha) for name, size, sha in
                con.execute("SELECT filename, size, sha256 FROM attachments").fetchall()}
        cases = con.execute("SELECT count(*) FROM cases").fetchone()[0]
        acks = con.execute("SELECT count(*) FROM outbox WHERE kind = 'ack'").fetchone()[0]
    finally:
        con.close()
    return {"messages": len(messages), "raw_bytes": [m[1] for m in messages],
            "defects": [json.loads(m[2]) for m in messages], "cases": cases, "acks": acks, "attachments": atts}


def write_message(mib: float, path: Path) -> None:
    """`--write`: the message into `path`, its attachments' sizes and sha256 into `path`.json."""
    raw, expected = build_message(mib)
    path.write_bytes(raw)
    Path(f"{path}.json").write_text(json.dumps({n: [len(d), hashlib.sha256(d).hexdigest()] for n, d in
                                                expected.items()}))


def one_run(mib: float, via: str, limit: int | None, workdir: Path) -> dict[str, Any]:
    # The message is built by a child of its own: a child's ru_maxrss starts from its parent's peak at fork,
    # so this process must never have held the message.
    eml = workdir / "big.eml"
    subprocess.run([sys.executable, __file__, "--mb", str(mib), "--write", str(eml)], check=True)
    expected = {name: tuple(v) for name, v in json.loads(Path(f"{eml}.json").read_text()).items()}
    size = eml.stat().st_size
    inbox, sent, db = workdir / "inbox", workdir / "sent", workdir / "casebot.db"
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    limit_line = f"max_message_bytes = {limit}" if limit is not None else ""
    config = workdir / "casebot.toml"
    config.write_text(CONFIG.format(kind="pipe" if via == "pipe" else "maildir", inbox=inbox, sent=sent, db=db,
                                    limit_line=limit_line))
    base = [sys.executable, "-m", "casebot", "--config", str(config)]
    # The schema is created by a first, empty command, so the measured child does only the ingest.
    prep = _run_child([*base, "db", "upgrade"], None, REPO)
    if prep["exit"] != 0:
        raise SystemExit(f"bigmail: db upgrade failed: {prep['stderr']}")
    if via == "pipe":
        result = _run_child([*base, "ingest"], eml, REPO)
    else:
        os.link(eml, inbox / "new" / "big.eml")
        result = _run_child([*base, "poll"], None, REPO)
    result["message_bytes"] = size
    result["stored"] = _stored(db)
    problems = []
    if result["exit"] != 0:
        problems.append(f"exit status {result['exit']}: {result['stderr']}")
    if result["stored"]["messages"] != 1:
        problems.append(f"{result['stored']['messages']} messages stored, expected 1")
    over = size > (52428800 if limit is None else limit or size)
    if not over:
        for name, want in expected.items():
            got = result["stored"]["attachments"].get(name)
            if got != want:
                problems.append(f"attachment {name}: stored {got!r}, sent {want!r}")
    elif result["stored"]["acks"] or result["stored"]["raw_bytes"][0] not in (size, 262144):
        problems.append("an oversize mail was acknowledged or stored neither whole nor as its first 256 KiB")
    result["problems"] = problems
    return result


def traced(mib: float) -> None:
    import tracemalloc

    from casebot import mail

    raw, _ = build_message(mib)
    tracemalloc.start(12)
    parsed = mail.parse(raw)
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    print(f"parse(): message {len(raw) / 2**20:.1f} MiB, traced now {current / 2**20:.1f} MiB, "
          f"peak {peak / 2**20:.1f} MiB, {len(parsed.attachments)} attachment(s)")
    for stat in snapshot.statistics("traceback")[:10]:
        frame = next((f for f in stat.traceback if "casebot" in f.filename), stat.traceback[0])
        print(f"  {stat.size / 2**20:7.1f} MiB  {frame.filename}:{frame.lineno}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=30.0, help="message size in MiB (default 30)")
    p.add_argument("--via", choices=("pipe", "maildir"), default="pipe")
    p.add_argument("--limit", type=int, default=None, help="mailbox.max_message_bytes (default: config default)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--tracemalloc", action="store_true", help="in-process allocation sites of parse()")
    p.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # internal: build the message into this file
    args = p.parse_args(argv)
    if args.write:
        write_message(args.mb, args.write)
        return 0
    if args.tracemalloc:
        traced(args.mb)
        return 0
    machine = machine_info()
    machine["cpu_probe_ms_before"] = cpu_probe_ms()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="casebot-bigmail-") as tmp:
            runs.append(one_run(args.mb, args.via, args.limit, Path(tmp)))
    machine["cpu_probe_ms_after"] = cpu_probe_ms()
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine, "mib": args.mb,
              "via": args.via, "limit": args.limit, "runs": runs}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in runs:
            print(f"{args.via}: message {r['message_bytes'] / 2**20:.1f} MiB -> exit {r['exit']} ({r['stdout']}), "
                  f"peak RSS {r['peak_rss_mib']} MiB, wall {r['wall_s']} s, cpu {r['cpu_s']} s; stored "
                  f"{r['stored']['messages']} message(s), raw {r['stored']['raw_bytes']}, "
                  f"{r['stored']['cases']} case(s), {r['stored']['acks']} ack(s)")
            for problem in r["problems"]:
                print(f"  PROBLEM: {problem}")
    return 1 if any(r["problems"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
