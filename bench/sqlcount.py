"""Run casebot's CLI in this process and count its database work, by phase: the bench's "work, not only time".

    python bench/sqlcount.py OUT.json -- --config X poll

Before casebot starts, SQLAlchemy event hooks are put on every Engine (``before_cursor_execute`` counts SQL
statements, ``commit`` counts transactions committed) and mail-parser's ``MailParser`` is wrapped
(one pass per message is the target). Each statement is attributed to a phase by the casebot function on the call stack:
``ingest`` (inside ``jobs.ingest.ingest_mailbox``), ``deliver`` (inside ``jobs.deliver.deliver``), else
``other`` (start-up, schema checks, the reminder scan). The counts are written to OUT.json when casebot exits;
casebot's own exit code is passed on. Counts do not depend on how busy the host is, unlike the timings.

The stack walk costs a few microseconds per statement (under 1 % of a poll, measured in bench/RESULTS.md); casebot
itself is not changed: nothing in casebot/ knows it is being counted.
"""

from __future__ import annotations

import json
import re
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
kinds: Counter[str] = Counter()  # "phase: INSERT messages" -> count: which statements make up the figure
_KIND = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM|\w+)\s*(?:.*?\bFROM\s+)?\"?(\w+)?", re.I | re.S)
_kind_cache: dict[str, str] = {}


def kind_of(statement: str) -> str:
    """`INSERT INTO messages`, `SELECT cases`, `UPDATE outbox`: the verb and the first table, for the breakdown."""
    found = _kind_cache.get(statement)
    if found is None:
        head = statement[:400]
        m = _KIND.match(head)
        verb = (m.group(1) if m else head.split(None, 1)[0] if head.split() else "?").upper()
        if verb in ("INSERT INTO", "UPDATE", "DELETE FROM"):
            table = re.match(r"^\s*\w+(?:\s+(?:INTO|FROM))?\s+\"?(\w+)", head, re.I)
        else:
            table = re.search(r"\bFROM\s+\"?(\w+)", head, re.I)
        found = f"{verb.split()[0]} {table.group(1) if table else ''}".strip()
        _kind_cache[statement] = found
    return found


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

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any, **_kw: Any) -> None:
        phase = phase_of(sys._getframe(1))
        statements[phase] += 1
        kinds[f"{phase}: {kind_of(statement)}"] += 1

    def on_commit(*_args: Any, **_kw: Any) -> None:
        commits[phase_of(sys._getframe(1))] += 1

    event.listen(Engine, "before_cursor_execute", on_statement)
    event.listen(Engine, "commit", on_commit)

    import mailparser

    # casebot hands mail-parser a MIME tree it built itself (casebot.mail.mime), so a pass is a MailParser built.
    original = mailparser.MailParser.__init__

    def counted(self: Any, *args: Any, **kw: Any) -> None:
        parses[phase_of(sys._getframe(1))] += 1
        original(self, *args, **kw)

    mailparser.MailParser.__init__ = counted


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
        report = {"statements": dict(statements), "commits": dict(commits), "parses": dict(parses),
                  "kinds": dict(kinds.most_common())}
        out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
