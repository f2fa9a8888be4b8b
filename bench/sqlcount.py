"""Run casebot's CLI in this process and count its database work, by phase: the bench's "work, not only time".

    python bench/sqlcount.py OUT.json -- --config X poll

Before casebot starts, SQLAlchemy event hooks are put on every Engine (``before_cursor_execute`` counts SQL
statements, ``commit`` counts transactions committed) and mail-parser's ``parse_from_bytes`` is wrapped (one pass
per message is the target). Each statement is attributed to a phase by the casebot function on the call stack:
``ingest`` (inside ``jobs.ingest.ingest_mailbox``), ``deliver`` (inside ``jobs.deliver.deliver``), else
``other`` (start-up, schema checks, the reminder scan). The counts are written to OUT.json when casebot exits;
casebot's own exit code is passed on. Counts do not depend on how busy the host is, unlike the timings.

The stack walk costs a few microseconds per statement (under 1 % of a poll, measured in bench/RESULTS.md); casebot
itself is not changed: nothing in casebot/ knows it is being counted.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

PHASES = {"ingest_mailbox": "ingest", "deliver": "deliver"}
MODULES = {"ingest_mailbox": "casebot.jobs.ingest", "deliver": "casebot.jobs.deliver"}

statements: Counter[str] = Counter()
commits: Counter[str] = Counter()
parses: Counter[str] = Counter()


def phase_of(frame: FrameType | None) -> str:
    while frame is not None:
        name = frame.f_code.co_name
        if name in PHASES and frame.f_globals.get("__name__") == MODULES[name]:
            return PHASES[name]
        frame = frame.f_back
    return "other"


def install() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_statement(*_args: Any, **_kw: Any) -> None:
        statements[phase_of(sys._getframe(1))] += 1

    def on_commit(*_args: Any, **_kw: Any) -> None:
        commits[phase_of(sys._getframe(1))] += 1

    event.listen(Engine, "before_cursor_execute", on_statement)
    event.listen(Engine, "commit", on_commit)

    import mailparser

    original = mailparser.parse_from_bytes

    def counted(*args: Any, **kw: Any) -> Any:
        parses[phase_of(sys._getframe(1))] += 1
        return original(*args, **kw)

    mailparser.parse_from_bytes = counted


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print("usage: sqlcount.py OUT.json -- CASEBOT-ARGS...", file=sys.stderr)
        return 64
    out = Path(argv[0])
    install()
    from casebot.cli import main as casebot_main

    try:
        code = casebot_main(argv[2:])
    finally:
        report = {"statements": dict(statements), "commits": dict(commits), "parses": dict(parses)}
        out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
