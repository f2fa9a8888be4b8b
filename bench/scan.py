"""Reminder-scan benchmark: how long one scan takes with N open cases, of which a few are due.

    .venv/bin/python bench/scan.py [--cases 100000] [--due 50] [--database sqlite|postgresql] [--runs 5]
                                   [--budget-ms 100] [--now ISO] [--seed 1] [--json]

Creates a fresh store (a SQLite file in a temp folder, or a throw-away PostgreSQL database from
``tests/servers.py``'s ``PostgresDatabase``, dropped afterwards), upgrades it with casebot's migrations and
bulk-inserts N open cases with SQLAlchemy Core (not timed). Every case has its next alert moment in the future.
Before each run (not timed) a new random sample of ``--due`` cases is made due. Then it measures, with
``time.perf_counter``:

* ``claim``: ``tx.claim_due(now, 500, skip_locked=...)`` inside ``store.transaction()`` (the scan's query);
* ``dry-run scan``: ``remind(store, clocks, notices, now, dry_run=True)``;
* ``scan``: a real ``remind(...)``, which queues the alerts in the outbox and moves ``next_alert_at``.

It reports the median and max wall time of each and the query plan of the claim (``EXPLAIN QUERY PLAN`` /
``EXPLAIN ANALYZE``), which must read the ``cases.next_alert_at`` index. It talks only to 127.0.0.1 and ends by
itself. Exit status 0 when every measured run is under ``--budget-ms`` and every check passed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import bindparam, event, func, insert, make_url, select, text, update

from casebot import config, logs
from casebot.case import Priority
from casebot.sla import SlaPolicy
from casebot.store import Store
from casebot.store.schema import Case, Outbox, Participant

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from machine import cpu_probe_ms, machine_info  # noqa: E402
from servers import PostgresDatabase  # noqa: E402

if TYPE_CHECKING:
    from casebot.jobs.remind import RemindStats

Scan = Callable[[dt.datetime, bool], "RemindStats"]

POSTGRES_URL_ENV = "CASEBOT_TEST_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CLAIM_LIMIT = 500  # remind.BATCH
CHUNK = 5000  # rows per executemany
INDEX = "ix_cases_next_alert_at"
# A Thursday, 11:00 in London: inside business hours, so medium and low cases are not held back (quiet).
DEFAULT_NOW = "2026-12-03T11:00:00+00:00"
PRIORITY_WEIGHTS = {Priority.CRITICAL: 3, Priority.HIGH: 17, Priority.MEDIUM: 55, Priority.LOW: 25}
SUBJECTS = ("Cannot log in", "Invoice {n} is wrong", "Export to CSV fails", "VPN drops every hour",
            "Printer on floor {n} offline", "Request: new account for {n}", "Order {n} not delivered",
            "Password reset link expired", "Error 500 on the dashboard", "Question about plan limits")


def log(message: str) -> None:
    print(f"[scan] {message}", file=sys.stderr, flush=True)


# --- the store --------------------------------------------------------------------------------------------------


def postgres_base_url() -> str:
    url = make_url(os.environ.get(POSTGRES_URL_ENV, POSTGRES_DEFAULT))
    if url.host not in LOCAL_HOSTS:
        raise SystemExit(f"scan.py talks only to a local server; {POSTGRES_URL_ENV} points at {url.host!r}")
    return url.update_query_dict({"connect_timeout": "10"}).render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """The URL of an empty database, removed when the block ends."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="casebot-scan-") as tmp:
            yield f"sqlite:///{tmp}/casebot.db"
        return
    pg = PostgresDatabase(postgres_base_url()).create()
    log(f"created PostgreSQL database {pg.name}")
    try:
        yield pg.url
    finally:
        pg.drop()
        log(f"dropped PostgreSQL database {pg.name}")


def populate(store: Store, sla: SlaPolicy, n: int, now: dt.datetime, rng: random.Random) -> dict[str, int]:
    """N open cases (and their participants) with deadlines from the SLA policy, next alert in the future."""
    priorities = list(PRIORITY_WEIGHTS)
    weights = list(PRIORITY_WEIGHTS.values())
    counts: dict[str, int] = {}
    cases: list[dict[str, Any]] = []
    participants: list[dict[str, Any]] = []

    def flush() -> None:
        with store.db.engine.begin() as conn:
            conn.execute(insert(Case), cases)
            conn.execute(insert(Participant), participants)
        cases.clear()
        participants.clear()

    for i in range(1, n + 1):
        priority = rng.choices(priorities, weights)[0]
        created = now - dt.timedelta(seconds=rng.randint(300, 28 * 86400))  # the last four weeks
        deadlines = sla.deadlines(priority, created)
        status = "open" if rng.random() < 0.6 else "new"
        first_response_at = None
        if status == "open":  # staff answered, so the first-response clock has stopped
            first_response_at = min(created + dt.timedelta(seconds=rng.randint(300, 2 * 86400)), now)
        requester = f"user{rng.randint(1, n // 10 + 1)}@client{rng.randint(1, 400)}.example"
        cases.append({
            "id": i, "reference": f"CASE-{i:06d}", "subject": rng.choice(SUBJECTS).format(n=rng.randint(1, 999)),
            "requester": requester, "requester_name": f"User {i}", "status": status, "priority": priority.value,
            "priority_rule": None, "linked_case_id": None, "created_at": created,
            "updated_at": first_response_at or created,
            "first_response_due": deadlines.first_response_due, "resolution_due": deadlines.resolution_due,
            "first_response_at": first_response_at, "resolved_at": None, "paused_since": None, "plan": None,
            "next_alert_at": now + dt.timedelta(seconds=rng.randint(60, 14 * 86400)),
        })
        participants.append({"case_id": i, "address": requester, "role": "requester"})
        if rng.random() < 0.2:
            participants.append({"case_id": i, "address": f"cc{i}@client.example", "role": "cc"})
        counts[f"{status}/{priority.value}"] = counts.get(f"{status}/{priority.value}", 0) + 1
        if len(cases) >= CHUNK:
            flush()
    if cases:
        flush()
    with store.db.engine.begin() as conn:
        if not store.is_sqlite:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :n)"), {"n": n})
    if not store.is_sqlite:
        # Fresh tables have no statistics until autovacuum gets to them; a live database has had them for long.
        with store.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE cases"))
            conn.execute(text("ANALYZE participants"))
    return dict(sorted(counts.items()))


def make_due(store: Store, n: int, due: int, now: dt.datetime, rng: random.Random) -> list[int]:
    """Push whatever is still due back to the future, then make a new random sample due (not timed)."""
    sample = rng.sample(range(1, n + 1), due)
    with store.db.engine.begin() as conn:
        conn.execute(update(Case).where(Case.next_alert_at <= now)
                     .values(next_alert_at=now + dt.timedelta(days=7)))
        stmt = update(Case).where(Case.id == bindparam("b_id")).values(next_alert_at=bindparam("b_at"))
        conn.execute(stmt, [{"b_id": i, "b_at": now - dt.timedelta(seconds=rng.randint(0, 3600))}
                            for i in sample])
    return sample


class Statements:
    """Counts the statements sent to the database and keeps the claim query (SQL and parameters) as sent."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self.claim: tuple[str, Any] | None = None
        event.listen(store.db.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self.count += 1
        if self.claim is None and "FROM cases" in statement and "next_alert_at <=" in statement:
            self.claim = (statement, parameters)


def explain(store: Store, claim: tuple[str, Any]) -> tuple[list[str], bool]:
    """The claim query's plan as the engine runs it, and whether it reads the next_alert_at index."""
    statement, parameters = claim
    with store.db.engine.connect() as conn:
        if store.is_sqlite:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            lines = [str(r[-1]) for r in rows]
        else:
            # ANALYZE runs the query (it takes the row locks); the transaction is rolled back.
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            lines = [str(r[0]) for r in rows]
        conn.rollback()
    return lines, any(INDEX in line for line in lines)


# --- the measures -----------------------------------------------------------------------------------------------


@dataclass
class Measure:
    name: str
    what: str
    ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    detail: list[str] = field(default_factory=list)  # one line per run: what the scan found / did
    unavailable: str = ""

    def summary(self) -> dict[str, Any]:
        if not self.ms:
            return {"name": self.name, "what": self.what, "unavailable": self.unavailable or "not run"}
        return {"name": self.name, "what": self.what, "median_ms": round(statistics.median(self.ms), 2),
                "max_ms": round(max(self.ms), 2), "min_ms": round(min(self.ms), 2),
                "runs_ms": [round(x, 2) for x in self.ms], "statements": self.statements, "detail": self.detail,
                **({"unavailable": self.unavailable} if self.unavailable else {})}


def timed(stmts: Statements, fn: Callable[[], str]) -> tuple[float, int, str]:
    before = stmts.count
    started = time.perf_counter()
    detail = fn()
    return (time.perf_counter() - started) * 1000, stmts.count - before, detail


def settings_for(url: str) -> config.Settings:
    return config.from_mapping({"mailbox": {"kind": "pipe"}, "database": {"url": url},
                                "staff": {"notify": "team@example.com"},
                                "escalation": {"manager": "boss@example.com"}})


def load_scan(store: Store, settings: config.Settings, now: dt.datetime) -> Scan | str:
    """`remind` bound to the store and the notices, or why it cannot be imported (the work tree is shared and
    other engineers may be mid-edit on what the scan imports)."""
    try:
        from casebot.jobs.remind import remind
        from casebot.service import build_deps
    except ImportError as exc:
        return f"cannot import the scan: {exc}"
    try:
        deps = build_deps(settings)
    except config.ConfigError as exc:  # e.g. a template the notices need is not there yet
        return f"cannot build the notices: {exc}"
    if not deps.clocks.sla.calendar.is_open(now):
        log(f"note: {now.isoformat()} is outside business hours; medium and low cases are held (quiet)")

    def scan(at: dt.datetime, dry_run: bool) -> RemindStats:
        return remind(store, deps.clocks, deps.notices, at, dry_run=dry_run)

    return scan


def bench(args: argparse.Namespace, url: str, now: dt.datetime) -> dict[str, Any]:
    rng = random.Random(args.seed)
    settings = settings_for(url)
    store = Store(url)
    problems: list[str] = []
    try:
        started = time.perf_counter()
        revision = store.upgrade()
        counts = populate(store, settings.sla_policy(), args.cases, now, rng)
        log(f"{args.cases} open cases inserted in {time.perf_counter() - started:.1f} s (schema {revision})")
        stmts = Statements(store)
        skip_locked = not store.is_sqlite
        claim = Measure("claim", f"tx.claim_due(now, {CLAIM_LIMIT}, skip_locked={skip_locked}) in one transaction")
        dry = Measure("dry-run scan", "remind(..., dry_run=True)")
        real = Measure("scan", "remind(...): alerts queued in the outbox, next_alert_at moved")
        scan = load_scan(store, settings, now)
        if isinstance(scan, str):
            dry.unavailable = real.unavailable = scan
            log(f"(b) and (c) not measured: {scan}")

        for run in range(1, args.runs + 1):
            sample = make_due(store, args.cases, args.due, now, rng)

            def do_claim(run: int = run, sample: list[int] = sample) -> str:
                with store.transaction() as tx:
                    recs = tx.claim_due(now, CLAIM_LIMIT, skip_locked=skip_locked)
                if sorted(r.id for r in recs) != sorted(sample):
                    problems.append(f"run {run}: claim returned {len(recs)} cases, expected the {args.due} due")
                return f"{len(recs)} claimed"

            ms, n, detail = timed(stmts, do_claim)
            claim.ms.append(ms)
            claim.statements.append(n)
            claim.detail.append(detail)
            if isinstance(scan, str):
                log(f"run {run}: claim {ms:.1f} ms")
                continue

            def do_dry(run: int = run) -> str:
                stats = scan(now, True)
                if stats.scanned != args.due:
                    problems.append(f"run {run}: dry run scanned {stats.scanned}, expected {args.due}")
                return f"{stats.scanned} scanned, {len(stats.planned)} alerts planned"

            ms_b, n_b, detail_b = timed(stmts, do_dry)
            dry.ms.append(ms_b)
            dry.statements.append(n_b)
            dry.detail.append(detail_b)
            line = f"run {run}: claim {ms:.1f} ms, dry run {ms_b:.1f} ms"
            if not real.unavailable:

                def do_real(run: int = run) -> str:
                    stats = scan(now, False)
                    if stats.scanned != args.due:
                        problems.append(f"run {run}: scan scanned {stats.scanned}, expected {args.due}")
                    queued = ", ".join(f"{v} {k}" for k, v in sorted(stats.queued.items())) or "nothing"
                    return f"{stats.scanned} scanned, queued {queued}"

                try:
                    ms_c, n_c, detail_c = timed(stmts, do_real)
                except AttributeError as exc:  # Notices.alert may not exist yet in the work tree
                    real.unavailable = f"AttributeError: {exc}"
                    log(f"(c) not measured: {real.unavailable}")
                else:
                    real.ms.append(ms_c)
                    real.statements.append(n_c)
                    real.detail.append(detail_c)
                    line += f", scan {ms_c:.1f} ms ({detail_c})"
            log(line)

        make_due(store, args.cases, args.due, now, rng)
        if stmts.claim is None:
            plan, index_used = ["(claim query not seen)"], False
        else:
            plan, index_used = explain(store, stmts.claim)
        if not index_used:
            problems.append(f"the claim query's plan does not name {INDEX}")
        with store.transaction() as tx:
            outbox = tx.session.scalar(select(func.count()).select_from(Outbox))
    finally:
        store.close()
    measures = [m.summary() for m in (claim, dry, real)]
    for m in measures:
        if "max_ms" in m and m["max_ms"] >= args.budget_ms:
            problems.append(f"{m['name']}: max {m['max_ms']} ms is not under the budget of {args.budget_ms:g} ms")
        if "unavailable" in m:
            problems.append(f"{m['name']}: not measured ({m['unavailable']})")
    return {"database": args.database, "cases": args.cases, "due": args.due, "runs": args.runs,
            "now": now.isoformat(), "seed": args.seed, "budget_ms": args.budget_ms, "schema": revision,
            "cases_by_status_priority": counts, "measures": measures, "claim_sql": stmts.claim[0] if stmts.claim
            else None, "plan": plan, "index_used": index_used, "outbox_rows_after": outbox, "problems": problems}


def table(result: dict[str, Any]) -> str:
    lines = [f"reminder scan, {result['database']}: {result['cases']} open cases, {result['due']} due per run, "
             f"{result['runs']} runs, now = {result['now']}",
             "",
             "| measure | median ms | max ms | min ms | statements | per run |",
             "| --- | --- | --- | --- | --- | --- |"]
    for m in result["measures"]:
        if "median_ms" not in m:
            lines.append(f"| {m['name']} | n/a | n/a | n/a | | {m['unavailable']} |")
            continue
        stmts = sorted(set(m["statements"]))
        shown = str(stmts[0]) if len(stmts) == 1 else f"{stmts[0]}-{stmts[-1]}"
        lines.append(f"| {m['name']} | {m['median_ms']:.2f} | {m['max_ms']:.2f} | {m['min_ms']:.2f} | {shown} | "
                     f"{m['detail'][0]} |")
    lines += ["", f"claim query plan (index {INDEX} used: {'yes' if result['index_used'] else 'NO'}):"]
    lines += [f"    {line}" for line in result["plan"]]
    lines += [f"PROBLEM {p}" for p in result["problems"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=100_000, help="open cases in the store (default 100000)")
    parser.add_argument("--due", type=int, default=50, help="cases made due before each run (default 50)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget-ms", type=float, default=100.0, help="every run must stay under this")
    parser.add_argument("--now", default=DEFAULT_NOW, help=f"the scan's clock, aware ISO 8601 (default {DEFAULT_NOW})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-level", default="info", help="casebot's log level during the runs (default info, "
                        "casebot's default: one JSON line per queued alert, rendered and written to --log-file)")
    parser.add_argument("--log-file", default=os.devnull, help="where casebot's log lines go (default /dev/null)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout (the table goes to stderr)")
    args = parser.parse_args(argv)
    if not 0 < args.due <= min(args.cases, CLAIM_LIMIT) or args.runs < 1:
        parser.error(f"need 0 < --due <= min(--cases, {CLAIM_LIMIT}) and --runs >= 1")
    now = dt.datetime.fromisoformat(args.now)
    if now.tzinfo is None:
        parser.error("--now must carry a UTC offset")
    logs.configure(args.log_level, "json")  # as casebot under systemd, but into --log-file
    log_file = open(args.log_file, "a", encoding="utf-8")  # noqa: SIM115 (open for the life of the process)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log_file))
    machine = machine_info()
    probe_before = cpu_probe_ms()
    with fresh_database(args.database) as url:
        result = bench(args, url, now)
    result["machine"] = {**machine, "cpu_probe_ms_before": probe_before, "cpu_probe_ms_after": cpu_probe_ms()}
    if not url.startswith("sqlite"):
        result["machine"]["postgresql_url"] = make_url(url).render_as_string(hide_password=True)
    print(table(result), file=sys.stderr if args.json else sys.stdout, flush=True)
    print(f"machine: {json.dumps(result['machine'])}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
