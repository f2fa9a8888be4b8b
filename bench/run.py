"""Throughput benchmark: drain N generated messages from a real IMAP server with `casebot poll`.

    .venv/bin/python bench/run.py [--n 2000] [--seed 1] [--database sqlite|postgresql] [--runs 1] [--json]
                                  [--profile FILE] [--keep]

Starts a private Dovecot and an SMTP sink (``tests/servers.py``), loads N varied messages from
``tests/corpus.py`` into a fresh user's INBOX (not timed), writes a casebot config into a temp folder and
runs ``python -m casebot --config X poll`` as a child process. Measured: wall time of that child (start of
the interpreter to exit, so start-up, imports and schema creation are included) and its peak RSS (``ru_maxrss``
from ``wait4``). Then it checks the result: cases and stored messages (``casebot cases list --json``),
acknowledgements received by the sink (one per Message-ID), nothing left unprocessed in INBOX, and that a
second ``casebot poll`` creates nothing new. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import corpus  # noqa: E402
from machine import cpu_probe_ms, machine_info  # noqa: E402
from servers import DovecotServer, PostgresDatabase, SmtpSink  # noqa: E402

POSTGRES_URL_ENV = "CASEBOT_TEST_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROCESSED_KEYWORD = "$CasebotProcessed"
QUARANTINE_FOLDER = "Quarantine"
APPEND_CHUNK = 100

CONFIG_TEMPLATE = """\
# Written by bench/run.py for one benchmark run.
[mailbox]
kind = "imap"
host = "{imap_host}"
port = {imap_port}
security = "none"
username = "{user}"
password = "{password}"
folder = "INBOX"
processed_keyword = "{keyword}"
quarantine_folder = "{quarantine}"

[outgoing]
kind = "smtp"
host = "{smtp_host}"
port = {smtp_port}
security = "none"
from_address = "Example Support <support@example.com>"

[database]
url = "{db_url}"

[acknowledgement]
rate_limit = 0  # the generated corpus reuses a small pool of senders

[logging]
level = "{log_level}"
format = "json"
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- which casebot -------------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def use_snapshot(ref: str, into: Path, patches: Sequence[str] = ()) -> str:
    """Export casebot/, config/ and templates/ at a git ref into `into`, laid out the way pyproject.toml installs
    them (config -> casebot._config, templates -> casebot._templates), and make the children import that copy
    (PYTHONPATH comes before the editable install's finder). Returns the full commit id."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "casebot", "config", "templates"],
        capture_output=True, check=True, timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, timeout=60)
    for patch in patches:  # what-if experiments: applied to this temporary copy only, never to the work tree
        applied = subprocess.run(
            ["git", "apply", "--verbose", str(Path(patch).resolve())], cwd=into, capture_output=True, text=True,
            check=False, timeout=60, env={**os.environ, "GIT_CEILING_DIRECTORIES": str(into.parent)},
        )
        if applied.returncode != 0:
            raise SystemExit(f"bench: patch {patch} does not apply to {ref}: {applied.stderr.strip()}")
    (into / "config").rename(into / "casebot" / "_config")
    (into / "templates").rename(into / "casebot" / "_templates")
    # Byte-compile like a wheel install does, so start-up does not pay for compiling casebot every time.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(into / "casebot")], check=True, timeout=120)
    CHILD_ENV["PYTHONPATH"] = os.pathsep.join(p for p in (str(into), os.environ.get("PYTHONPATH", "")) if p)
    return commit


def tree_digest(root: Path) -> str:
    """SHA-256 over the paths and contents of the casebot sources the children import (work-tree mode)."""
    h = hashlib.sha256()
    for top in ("casebot", "config", "templates"):
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def casebot_source() -> dict[str, Any]:
    """Where the children import casebot from, and which commit that is (with uncommitted changes listed)."""
    found = subprocess.run(
        [sys.executable, "-c", "import casebot; print(casebot.__file__); print(casebot.__version__)"],
        capture_output=True, text=True, env=CHILD_ENV, check=True, timeout=60, cwd=tempfile.gettempdir(),
    ).stdout.split("\n")
    info: dict[str, Any] = {"imported_from": str(Path(found[0]).parent), "version": found[1]}
    with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
        info["head"] = _git("rev-parse", "HEAD").strip()
        info["uncommitted"] = [
            line[3:] for line in _git("status", "--porcelain", "--", "casebot", "config", "templates").splitlines()
        ]
    return info


# --- child processes --------------------------------------------------------------------------------------------


@dataclass
class Child:
    started_at: float  # time.time() just before the spawn, to line up with the child's log timestamps
    argv: list[str]
    returncode: int
    wall_s: float
    maxrss_mib: float
    user_s: float
    sys_s: float
    stdout: str
    stderr: str


CHILD_ENV: dict[str, str] = dict(os.environ)  # replaced by use_snapshot() for --git-ref


def run_child(argv: list[str], workdir: Path, name: str, timeout: float) -> Child:
    """Run argv, wait with wait4() so the rusage is this child's own (peak RSS, CPU), kill it on timeout."""
    out_path, err_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started_at, started = time.time(), time.perf_counter()
        # Own process group: on timeout or Ctrl-C the child and anything it started (py-spy's target) are
        # killed together, by that group's id only.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=workdir, env=CHILD_ENV,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        def expire() -> None:
            timed_out.set()
            kill()

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    if timed_out.is_set():
        raise RuntimeError(f"{name}: killed after {timeout:g} s\n{stderr[-2000:]}")
    # Linux reports ru_maxrss in KiB.
    return Child(
        started_at, argv, proc.returncode, wall, usage.ru_maxrss / 1024, usage.ru_utime, usage.ru_stime, stdout, stderr
    )


def casebot(
    config: Path, *args: str, wrapper: Sequence[str] = (), prefix: Sequence[str] = (), counts: Path | None = None
) -> list[str]:
    """`python -m casebot --config X ARGS`, optionally under a wrapper command (py-spy) or interpreter options,
    or through bench/sqlcount.py (which counts SQL statements, commits and mail-parser passes into `counts`)."""
    if counts is not None:
        entry = [str(Path(__file__).resolve().parent / "sqlcount.py"), str(counts), "--"]
        return [*wrapper, sys.executable, *prefix, *entry, "--config", str(config), *args]
    return [*wrapper, sys.executable, *prefix, "-m", "casebot", "--config", str(config), *args]


@dataclass
class Work:
    """Database and parsing work of the first poll, per message (bench/sqlcount.py's counts)."""

    ingest_statements_per_msg: float
    ingest_commits_per_msg: float
    deliver_statements_per_mail: float
    parses_per_msg: float
    totals: dict[str, dict[str, int]]


def read_work(path: Path, n: int, delivered: int) -> Work | None:
    try:
        counts: dict[str, dict[str, int]] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    st, cm = counts.get("statements", {}), counts.get("commits", {})
    return Work(
        ingest_statements_per_msg=round(st.get("ingest", 0) / n, 2),
        ingest_commits_per_msg=round(cm.get("ingest", 0) / n, 3),
        deliver_statements_per_mail=round(st.get("deliver", 0) / delivered, 2) if delivered else 0.0,
        parses_per_msg=round(sum(counts.get("parses", {}).values()) / n, 2),
        totals=counts,
    )


def profiler_argv(args: argparse.Namespace) -> tuple[list[str], list[str], str]:
    """(wrapper, interpreter prefix, description) for the first poll."""
    if args.profile:
        return [], ["-m", "cProfile", "-o", str(Path(args.profile).resolve())], "under cProfile"
    if args.py_spy:
        exe = shutil.which("py-spy") or os.environ.get("PY_SPY")
        if not exe:
            raise SystemExit("bench: py-spy not found on PATH (or set PY_SPY=/path/to/py-spy)")
        out = str(Path(args.py_spy).resolve())
        # --idle: wall-clock samples, waiting on sockets and the database included; raw = collapsed stacks.
        return [exe, "record", "--idle", "--rate", "200", "--format", "raw", "--output", out, "--"], [], "under py-spy"
    return [], [], ""


_INGESTED = re.compile(r"^ingested (\d+) message\(s\): (.*)$", re.M)
_DELIVERED = re.compile(r"^delivered (\d+), retrying (\d+), failed (\d+)$", re.M)


@dataclass
class PollSummary:
    seen: int
    outcomes: dict[str, int]
    delivered: int
    retrying: int
    failed: int


def parse_poll(stdout: str) -> PollSummary:
    ingested, delivered = _INGESTED.search(stdout), _DELIVERED.search(stdout)
    if ingested is None or delivered is None:
        raise RuntimeError(f"cannot read the output of casebot poll:\n{stdout}")
    outcomes: dict[str, int] = {}
    if ingested[2] != "nothing new":
        for part in ingested[2].split(", "):
            status, _, count = part.rpartition(" ")
            outcomes[status] = int(count)
    return PollSummary(int(ingested[1]), outcomes, int(delivered[1]), int(delivered[2]), int(delivered[3]))


@dataclass
class Phases:
    """Where the first poll's wall time went, from the child's own JSON log (needs logging level info)."""

    startup_s: float  # spawn -> first message stored (imports, config, schema, IMAP login, SEARCH, first FETCH)
    ingest_s: float  # first -> last message stored
    deliver_s: float  # last message stored -> last acknowledgement sent
    shutdown_s: float  # last acknowledgement sent -> exit
    ingest_ms_per_msg_first_decile: float
    ingest_ms_per_msg_last_decile: float
    deliver_ms_per_ack_first_decile: float
    deliver_ms_per_ack_last_decile: float


def _decile_rates(stamps: list[float]) -> tuple[float, float]:
    """Milliseconds per event over the first and the last tenth of a series of timestamps."""
    k = max(1, len(stamps) // 10)
    if len(stamps) < k + 1:
        return 0.0, 0.0
    return (stamps[k] - stamps[0]) / k * 1000, (stamps[-1] - stamps[-1 - k]) / k * 1000


def parse_phases(child: Child) -> Phases | None:
    ingest: list[float] = []
    sent: list[float] = []
    for line in child.stderr.splitlines():
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            event = json.loads(line)
            ts = dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            if event["event"] in ("case.opened", "case.threaded", "message.own_mail_ignored"):
                ingest.append(ts)
            elif event["event"] == "mail.sent":
                sent.append(ts)
    if not ingest:
        return None
    end = child.started_at + child.wall_s
    last = sent[-1] if sent else ingest[-1]
    i_first, i_last = _decile_rates(ingest)
    d_first, d_last = _decile_rates(sent)
    return Phases(
        startup_s=round(ingest[0] - child.started_at, 2), ingest_s=round(ingest[-1] - ingest[0], 2),
        deliver_s=round(last - ingest[-1], 2), shutdown_s=round(end - last, 2),
        ingest_ms_per_msg_first_decile=round(i_first, 2), ingest_ms_per_msg_last_decile=round(i_last, 2),
        deliver_ms_per_ack_first_decile=round(d_first, 2), deliver_ms_per_ack_last_decile=round(d_last, 2),
    )


# --- mailbox --------------------------------------------------------------------------------------------------


def load_inbox(server: DovecotServer, user: str, messages: Sequence[bytes]) -> float:
    """APPEND every message over one IMAP connection (MULTIAPPEND in chunks when offered); returns seconds."""
    started = time.perf_counter()
    client = server.imap(user, timeout=60)
    try:
        multi = client.has_capability("MULTIAPPEND")
        for i in range(0, len(messages), APPEND_CHUNK):
            chunk = list(messages[i : i + APPEND_CHUNK])
            if multi:
                client.multiappend("INBOX", chunk)
            else:
                for raw in chunk:
                    client.append("INBOX", raw)
        exists = int(client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"])
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    if exists != len(messages):
        raise RuntimeError(f"loaded {exists} message(s) into INBOX, expected {len(messages)}")
    return time.perf_counter() - started


@dataclass
class InboxState:
    total: int
    unprocessed: int
    quarantined: int


def unflag_inbox(server: DovecotServer, user: str) -> None:
    """Clear the processed keyword on every message: the mailbox as if delivered again (a restore, a move)."""
    client = server.imap(user, timeout=60)
    try:
        client.select_folder("INBOX")
        client.remove_flags(client.search(["ALL"]), [PROCESSED_KEYWORD.encode()], silent=True)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def inbox_state(server: DovecotServer, user: str) -> InboxState:
    client = server.imap(user, timeout=60)
    try:
        quarantined = 0
        if client.folder_exists(QUARANTINE_FOLDER):
            quarantined = int(client.folder_status(QUARANTINE_FOLDER, [b"MESSAGES"])[b"MESSAGES"])
        client.select_folder("INBOX", readonly=True)
        total = len(client.search(["ALL"]))
        unprocessed = len(client.search(["UNKEYWORD", PROCESSED_KEYWORD]))
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    return InboxState(total, unprocessed, quarantined)


# --- database -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'casebot.db'}"
        return
    db = PostgresDatabase(os.environ.get(POSTGRES_URL_ENV, POSTGRES_DEFAULT)).create()
    try:
        yield db.url
    finally:
        db.drop()


# --- one run --------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    n: int
    seed: int
    database: str
    load_s: float
    wall_s: float
    msgs_per_s: float
    stored_messages: int
    stored_per_s: float
    cases: int
    acks_received: int
    acks_per_s: float
    peak_rss_mib: float
    cpu_user_s: float
    cpu_sys_s: float
    msgs_per_cpu_s: float
    loadavg_1min_before: float
    cpu_probe_ms_before: float
    cpu_probe_ms_after: float
    outcomes: dict[str, int]
    delivered: int
    delivery_retrying: int
    delivery_failed: int
    inbox_unprocessed: int
    quarantined: int
    duplicate_acks: int
    second_poll_wall_s: float
    second_poll_new_cases: int
    second_poll_new_acks: int
    second_poll_seen: int
    phases: Phases | None = None
    work: Work | None = None
    redelivery_wall_s: float | None = None  # the same mailbox again, processed flags cleared: every one a duplicate
    redelivery_speedup: float | None = None  # first poll's wall / the re-delivery's
    profile: str | None = None
    problems: list[str] = field(default_factory=list)


def cases_list(config: Path, workdir: Path, name: str, timeout: float) -> list[dict[str, Any]]:
    child = run_child(casebot(config, "cases", "list", "--json"), workdir, name, timeout)
    if child.returncode != 0:
        raise RuntimeError(f"casebot cases list failed ({child.returncode}):\n{child.stderr[-2000:]}")
    data: list[dict[str, Any]] = json.loads(child.stdout)
    return data


def ack_message_ids(sink: SmtpSink) -> list[str]:
    parser = BytesHeaderParser()
    return [str(parser.parsebytes(m.content).get("Message-ID", "")).strip() for m in sink.messages]


def one_run(
    args: argparse.Namespace, dovecot: DovecotServer, sink: SmtpSink, raws: list[bytes], workdir: Path
) -> RunResult:
    sink.clear()
    user = dovecot.new_user()
    log(f"loading {len(raws)} messages into {user}'s INBOX on {dovecot.host}:{dovecot.port} ...")
    load_s = load_inbox(dovecot, user, raws)
    log(f"loaded in {load_s:.1f} s (not part of the measurement)")
    with database(args.database, workdir) as db_url:
        config = workdir / "casebot.toml"
        config.write_text(
            CONFIG_TEMPLATE.format(
                imap_host=dovecot.host, imap_port=dovecot.port, user=user, password=dovecot.password,
                keyword=PROCESSED_KEYWORD, quarantine=QUARANTINE_FOLDER, smtp_host=sink.host, smtp_port=sink.port,
                db_url=db_url, log_level="info" if args.phases else "warning",
            ),
            encoding="utf-8",
        )
        wrapper, prefix, how = profiler_argv(args)
        probe_before = cpu_probe_ms()
        load_before = os.getloadavg()[0]
        log(f"running casebot poll ({args.database}{', ' + how if how else ''}; load average {load_before:.2f}) ...")
        counts = None if args.no_count else workdir / "work.json"
        first = run_child(casebot(config, "poll", wrapper=wrapper, prefix=prefix, counts=counts), workdir, "poll1",
                          args.timeout)
        log(f"casebot poll: exit {first.returncode} in {first.wall_s:.2f} s, peak RSS {first.maxrss_mib:.0f} MiB")
        probe_after = cpu_probe_ms()
        problems: list[str] = []
        if first.returncode != 0:
            problems.append(f"first poll exited {first.returncode}: {first.stderr.strip()[-1500:]}")
        poll1 = parse_poll(first.stdout)
        cases = cases_list(config, workdir, "cases1", args.timeout)
        acks = ack_message_ids(sink)
        state = inbox_state(dovecot, user)

        log("running casebot poll again (must create nothing new) ...")
        second = run_child(casebot(config, "poll"), workdir, "poll2", args.timeout)
        if second.returncode != 0:
            problems.append(f"second poll exited {second.returncode}: {second.stderr.strip()[-1500:]}")
        poll2 = parse_poll(second.stdout)
        cases2 = cases_list(config, workdir, "cases2", args.timeout)
        acks2 = ack_message_ids(sink)

        log("clearing the processed flags and polling again (re-delivery: every message a duplicate) ...")
        unflag_inbox(dovecot, user)
        third = run_child(casebot(config, "poll"), workdir, "poll3", args.timeout)
        log(f"re-delivery poll: exit {third.returncode} in {third.wall_s:.2f} s")
        if third.returncode != 0:
            problems.append(f"re-delivery poll exited {third.returncode}: {third.stderr.strip()[-1500:]}")
        poll3 = parse_poll(third.stdout)
        cases3 = cases_list(config, workdir, "cases3", args.timeout)
        acks3 = ack_message_ids(sink)

    stored = sum(int(c["message_count"]) for c in cases)
    duplicate_acks = sum(n - 1 for n in Counter(acks).values() if n > 1)
    n = len(raws)
    if poll1.seen != n:
        problems.append(f"first poll saw {poll1.seen} of {n} messages")
    if state.unprocessed:
        problems.append(f"{state.unprocessed} message(s) left unprocessed in INBOX")
    if len(acks) != poll1.delivered:
        problems.append(f"casebot reported {poll1.delivered} delivered, the sink received {len(acks)}")
    if duplicate_acks:
        problems.append(f"{duplicate_acks} acknowledgement(s) received more than once")
    if poll1.retrying or poll1.failed:
        problems.append(f"delivery: {poll1.retrying} retrying, {poll1.failed} failed")
    if len(cases2) != len(cases) or len(acks2) != len(acks) or poll2.seen:
        problems.append(
            f"second poll was not a no-op: saw {poll2.seen}, cases {len(cases)} -> {len(cases2)}, "
            f"acks {len(acks)} -> {len(acks2)}"
        )
    if poll3.outcomes != {"duplicate": n} or len(cases3) != len(cases) or len(acks3) != len(acks):
        problems.append(f"re-delivery was not all duplicates: {poll3.outcomes}, cases {len(cases)} -> {len(cases3)}, "
                        f"acks {len(acks)} -> {len(acks3)}")
    wall = first.wall_s
    return RunResult(
        n=n, seed=args.seed, database=args.database, load_s=round(load_s, 2), wall_s=round(wall, 3),
        msgs_per_s=round(n / wall, 1), stored_messages=stored, stored_per_s=round(stored / wall, 1),
        cases=len(cases), acks_received=len(acks), acks_per_s=round(len(acks) / wall, 1),
        peak_rss_mib=round(first.maxrss_mib, 1), cpu_user_s=round(first.user_s, 2), cpu_sys_s=round(first.sys_s, 2),
        msgs_per_cpu_s=round(n / (first.user_s + first.sys_s), 1), loadavg_1min_before=round(load_before, 2),
        cpu_probe_ms_before=probe_before, cpu_probe_ms_after=probe_after,
        outcomes=poll1.outcomes, delivered=poll1.delivered, delivery_retrying=poll1.retrying,
        delivery_failed=poll1.failed, inbox_unprocessed=state.unprocessed, quarantined=state.quarantined,
        duplicate_acks=duplicate_acks, second_poll_wall_s=round(second.wall_s, 3),
        second_poll_new_cases=len(cases2) - len(cases), second_poll_new_acks=len(acks2) - len(acks),
        second_poll_seen=poll2.seen, profile=str(Path(args.profile or args.py_spy).resolve())
        if (args.profile or args.py_spy) else None,
        phases=parse_phases(first) if args.phases else None, problems=problems,
        work=read_work(counts, n, poll1.delivered) if counts is not None else None,
        redelivery_wall_s=round(third.wall_s, 3), redelivery_speedup=round(wall / third.wall_s, 1),
    )


# --- report ---------------------------------------------------------------------------------------------------


ROWS: tuple[tuple[str, str], ...] = (
    ("messages (N)", "n"),
    ("wall seconds (casebot poll)", "wall_s"),
    ("messages/s (N / wall)", "msgs_per_s"),
    ("stored messages", "stored_messages"),
    ("stored/s", "stored_per_s"),
    ("cases", "cases"),
    ("acks received by the sink", "acks_received"),
    ("acks/s", "acks_per_s"),
    ("peak RSS MiB", "peak_rss_mib"),
    ("CPU user s / sys s", "cpu"),
    ("messages per CPU second", "msgs_per_cpu_s"),
    ("load average before (1 min)", "loadavg_1min_before"),
    ("CPU probe ms before / after", "probe"),
    ("SQL statements per message (ingest)", "w_st"),
    ("commits per message (ingest)", "w_cm"),
    ("SQL statements per delivered mail", "w_dl"),
    ("mail-parser passes per message", "w_pa"),
    ("second poll: wall s (fixed cost)", "second_poll_wall_s"),
    ("re-delivery: wall s / first poll's wall over it", "redelivery"),
    ("second poll: new cases / acks", "second"),
    ("left unprocessed / quarantined", "left"),
)


def _cell(r: RunResult, key: str) -> str:
    if key == "cpu":
        return f"{r.cpu_user_s} / {r.cpu_sys_s}"
    if key == "redelivery":
        return f"{r.redelivery_wall_s} / {r.redelivery_speedup}x"
    if key == "second":
        return f"{r.second_poll_new_cases} / {r.second_poll_new_acks}"
    if key == "probe":
        return f"{r.cpu_probe_ms_before} / {r.cpu_probe_ms_after}"
    if key == "left":
        return f"{r.inbox_unprocessed} / {r.quarantined}"
    if key.startswith("w_"):
        if r.work is None:
            return "-"
        field_name = {"w_st": "ingest_statements_per_msg", "w_cm": "ingest_commits_per_msg",
                      "w_dl": "deliver_statements_per_mail", "w_pa": "parses_per_msg"}[key]
        return str(getattr(r.work, field_name))
    return str(getattr(r, key))


def render(results: list[RunResult], machine: dict[str, Any], source: dict[str, Any], floor: float) -> str:
    header = ["", *(f"run {i + 1}" for i in range(len(results)))]
    rows = [header] + [[label, *(_cell(r, key) for r in results)] for label, key in ROWS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"casebot poll benchmark, {results[0].database}, N={results[0].n}, seed={results[0].seed}",
        f"machine: {machine['nproc']} CPU(s), {machine['cpu_model']}, {machine['ram_mib']} MiB RAM, "
        f"Python {machine['python']}, SQLite {machine['sqlite']}, Dovecot {machine['dovecot'].split()[0]}",
        f"casebot: {source.get('commit') or source.get('head', '?')}"
        + (f" (git ref {source['git_ref']}, exported)" if source.get("git_ref") else "")
        + (f" with patches {', '.join(source['patches'])}" if source.get("patches") else "")
        + (f" + uncommitted changes in {', '.join(source['uncommitted'])}" if source.get("uncommitted") else ""),
        "",
    ]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
              for row in rows]
    outcomes = Counter[str]()
    for r in results:
        outcomes.update(r.outcomes)
    lines.append("")
    lines.append("outcomes (all runs): " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    rates = [r.msgs_per_s for r in results]
    verdict = "PASS" if min(rates) >= floor else "FAIL"
    lines.append(f"messages/s median {statistics.median(rates):.1f}, min {min(rates):.1f}: {verdict} (floor {floor:g})")
    for i, r in enumerate(results):
        if r.phases is not None:
            ph = r.phases
            lines.append(
                f"run {i + 1} phases: start-up {ph.startup_s} s, ingest {ph.ingest_s} s "
                f"({ph.ingest_ms_per_msg_first_decile} -> {ph.ingest_ms_per_msg_last_decile} ms/message, first -> "
                f"last tenth), delivery {ph.deliver_s} s ({ph.deliver_ms_per_ack_first_decile} -> "
                f"{ph.deliver_ms_per_ack_last_decile} ms/ack), exit {ph.shutdown_s} s"
            )
    for i, r in enumerate(results):
        for problem in r.problems:
            lines.append(f"PROBLEM run {i + 1}: {problem}")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=2000, help="messages to load and drain (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--runs", type=int, default=1, help="fresh mailbox + database per run, servers shared")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--profile", metavar="FILE", help="run the first poll under cProfile, write stats to FILE")
    p.add_argument("--py-spy", metavar="FILE", help="run the first poll under py-spy record, collapsed stacks to FILE")
    p.add_argument("--git-ref", metavar="REF",
                   help="benchmark casebot as committed at REF (exported to a temp dir) instead of the work tree")
    p.add_argument("--phases", action="store_true",
                   help="casebot logs at info level; split the first poll's wall time into start-up, ingest and "
                   "delivery from its log timestamps (the extra logging costs a little throughput)")
    p.add_argument("--patch", action="append", default=[], metavar="FILE",
                   help="with --git-ref: apply this diff (git apply, paths like casebot/store.py) to the exported "
                   "copy before measuring, to try a performance fix without touching the work tree; repeatable")
    p.add_argument("--no-pipelining", action="store_true",
                   help="the SMTP sink does not offer PIPELINING (RFC 2920): one command at a time")
    p.add_argument("--no-count", action="store_true",
                   help="run the first poll as plain `python -m casebot` (no SQL/commit/parse counting), to "
                   "measure what counting costs")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a casebot child is killed")
    p.add_argument("--floor", type=float, default=100.0, help="messages/s the run must reach (default 100)")
    p.add_argument("--keep", action="store_true", help="keep the temp folders (config, DB, child output)")
    args = p.parse_args(argv)
    if args.n < 1 or args.runs < 1:
        p.error("--n and --runs must be at least 1")
    if (args.profile or args.py_spy) and args.runs != 1:
        p.error("--profile and --py-spy need --runs 1 (and profiled figures are not the benchmark's)")
    if args.patch and not args.git_ref:
        p.error("--patch needs --git-ref (patches apply to an exported copy only)")
    if args.profile and args.py_spy:
        p.error("choose one of --profile and --py-spy")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info(dovecot=True)
    snapshot_dir: Path | None = None
    if args.git_ref:
        snapshot_dir = Path(tempfile.mkdtemp(prefix="casebot-bench-src-"))
    try:
        return _main(args, machine, snapshot_dir)
    finally:
        if snapshot_dir is not None:
            shutil.rmtree(snapshot_dir, ignore_errors=True)


def _main(args: argparse.Namespace, machine: dict[str, Any], snapshot_dir: Path | None) -> int:
    source: dict[str, Any] = {}
    if snapshot_dir is not None:
        source["git_ref"] = args.git_ref
        source["commit"] = use_snapshot(args.git_ref, snapshot_dir, args.patch)
        if args.patch:
            source["patches"] = [str(Path(p)) for p in args.patch]
    source.update(casebot_source())
    if snapshot_dir is not None:
        source.pop("uncommitted", None)  # the snapshot has none, whatever the work tree holds
        if not source["imported_from"].startswith(str(snapshot_dir)):
            raise SystemExit(f"bench: children import casebot from {source['imported_from']}, not the snapshot")
    digest_before = tree_digest(REPO) if snapshot_dir is None else ""
    log(f"casebot imported from {source['imported_from']} ({source.get('commit') or source.get('head', '?')[:12]}"
        f"{', uncommitted changes: ' + ' '.join(source['uncommitted']) if source.get('uncommitted') else ''})")
    log(f"generating {args.n} messages (seed {args.seed}) ...")
    samples = corpus.generate(args.n, args.seed)
    raws = [s.raw for s in samples]
    kinds = Counter(s.kind for s in samples)
    results: list[RunResult] = []
    dovecot: DovecotServer | None = None
    sink: SmtpSink | None = None
    workdirs: list[Path] = []
    try:
        dovecot = DovecotServer.start()
        sink = SmtpSink().start()
        sink.pipelining = not args.no_pipelining  # as Postfix, Exim and the big providers' servers do
        for _ in range(args.runs):
            workdir = Path(tempfile.mkdtemp(prefix="casebot-bench-"))
            workdirs.append(workdir)
            results.append(one_run(args, dovecot, sink, raws, workdir))
    finally:
        if sink is not None:
            sink.stop()
        if dovecot is not None:
            dovecot.stop()
        for workdir in workdirs:
            if args.keep:
                log(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if snapshot_dir is None and tree_digest(REPO) != digest_before:
        # Someone edited casebot/ while we measured: the figures belong to no single version of the code.
        source["changed_during_run"] = True
        results[-1].problems.append("casebot/, config/ or templates/ changed in the work tree during the benchmark; "
                                    "use --git-ref to measure a fixed commit")
    ok = all(not r.problems for r in results) and min(r.msgs_per_s for r in results) >= args.floor
    if args.json:
        report = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine,
            "casebot_source": source,
            "corpus_kinds": dict(sorted(kinds.items())),
            "floor_msgs_per_s": args.floor,
            "ok": ok,
            "runs": [asdict(r) for r in results],
        }
        print(json.dumps(report, indent=2))
    else:
        print(render(results, machine, source, args.floor))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
