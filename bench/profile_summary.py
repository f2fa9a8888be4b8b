"""Summarise a `bench/run.py --py-spy FILE` profile: where the wall time of `casebot poll` went.

    .venv/bin/python bench/profile_summary.py bench/out/poll.spy.txt

The input is py-spy's raw (collapsed) format, one `frame;frame;...;leaf COUNT` line per distinct stack,
recorded with --idle so time spent waiting on sockets and the database is in it. Every sample is put in one
bucket by its innermost recognisable frame (database, SMTP, IMAP, parsing, composing, ...); database samples
are also split by the casebot function that issued the statement.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterator, Sequence

_LINE_NO = re.compile(r":\d+\)$")


def stacks(path: str) -> Iterator[tuple[list[str], int]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack and count.isdigit():
                yield [_LINE_NO.sub(")", f) for f in stack.split(";")], int(count)


def _is_db(frame: str) -> bool:
    return "sqlalchemy/" in frame or "sqlite3" in frame or "psycopg" in frame


_INNER: tuple[tuple[str, str], ...] = (
    ("smtplib", "deliver: SMTP conversation with the sink"),
    ("imapclient", "ingest: IMAP (SEARCH, FETCH, STORE)"),
    ("compose (casebot/mail.py)", "ingest: compose the acknowledgement (email.message)"),
    ("Templates.render", "ingest: render the acknowledgement template (jinja2)"),
    ("dedupe_key (casebot/mail.py)", "ingest: dedupe_key"),
    ("parse (casebot/mail.py)", "ingest: parse (mail-parser + header decoding)"),
    ("casebot/sla.py", "ingest: SLA deadlines"),
    ("run_chain", "ingest: pipeline steps (own Python)"),
)


def bucket(frames: Sequence[str]) -> str:
    joined = ";".join(frames)
    in_ingest = "process (casebot/jobs/ingest.py)" in joined
    if "importlib._bootstrap" in joined and not in_ingest:
        return "start-up: imports"
    if "Runtime.build" in joined:
        return "start-up: config, templates, schema"
    for frame in reversed(frames):
        if _is_db(frame):
            return "deliver: database" if "deliver (casebot/jobs/deliver.py)" in joined else "ingest: database"
        for needle, name in _INNER:
            if needle in frame:
                return name
    if "deliver (casebot/jobs/deliver.py)" in joined:
        return "deliver: other"
    if in_ingest:
        return "ingest: other Python"
    return "other (interpreter start and exit, CLI)"


def db_caller(frames: Sequence[str]) -> str | None:
    """The casebot frame that issued a database call, with `flush` when the time went into an autoflush."""
    first_db = next((i for i, f in enumerate(frames) if _is_db(f)), None)
    if first_db is None:
        return None
    callers = [f for f in frames[:first_db] if "casebot/" in f]
    inner = frames[first_db:]
    what = "flush" if any("_flush" in f for f in inner) else "commit" if any("commit" in f for f in inner) else "query"
    return f"{what:6} {callers[-1] if callers else '?'}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("file", help="py-spy raw output (bench/run.py --py-spy FILE)")
    p.add_argument("--top", type=int, default=15, help="database callers to list (default 15)")
    args = p.parse_args(argv)
    total = 0
    buckets: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    for frames, count in stacks(args.file):
        total += count
        buckets[bucket(frames)] += count
        caller = db_caller(frames)
        if caller is not None and "Runtime.build" not in ";".join(frames):
            callers[caller] += count
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples")
    for name, count in buckets.most_common():
        print(f"{100 * count / total:5.1f}%  {name}")
    print("\ndatabase time by casebot caller (share of all samples):")
    for name, count in callers.most_common(args.top):
        print(f"{100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
