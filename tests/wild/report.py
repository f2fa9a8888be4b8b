"""Report how casebot's loop guard treats the wild-mail corpus.

    python tests/wild/report.py [--dest .cache/wild]

Per class: how many messages were recognised as automated, how many of them answer a mail (bounce, DSN,
read receipt, feedback report, auto-reply: stored on the case they answer, or kept without a case) and
what `casebot.mail.bounce` read from them. Then every automated message that would get an
acknowledgement, every human message wrongly flagged, and any message that made `mail.parse` raise.
Always exits 0: it is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from casebot import mail
from casebot.config import from_mapping
from casebot.pipeline.loop_guard import assess
from casebot.service import load_patterns

OWN = frozenset({"support@example.com"})
PATTERNS = load_patterns(from_mapping({"mailbox": {"kind": "pipe"}}))  # the shipped config/automated.toml


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=Path(".cache/wild"))
    args = ap.parse_args(argv)
    dest: Path = args.dest
    index_path = dest / "index.json"
    if not index_path.exists():
        print(f"no {index_path}: run python tests/wild/fetch.py first")
        return 0
    rows: list[dict[str, Any]] = json.loads(index_path.read_text())
    total: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    reports: dict[str, Counter[str]] = {}
    missed: list[tuple[str, str]] = []
    wrong: list[tuple[str, str]] = []
    crashed: list[tuple[str, str]] = []
    for row in rows:
        cls = str(row["class"])
        total[cls] += 1
        try:
            raw = (dest / row["path"]).read_bytes()
            parsed = mail.parse(raw)
        except Exception as e:
            crashed.append((row["path"], f"{type(e).__name__}: {e}"))
            continue
        try:
            found = assess(parsed, OWN, PATTERNS)
        except Exception as e:
            trace = traceback.format_exc(limit=2)
            crashed.append((row["path"], f"loop guard: {type(e).__name__}: {e}\n{trace}"))
            continue
        reason = found.reason
        if reason:
            flagged[cls] += 1
        if found.answer:
            answers[cls] += 1
        reports.setdefault(cls, Counter())[found.report.kind] += 1
        if row["label"] == "automated" and reason is None:
            missed.append((row["path"], cls))
        elif row["label"] == "human" and reason is not None:
            wrong.append((row["path"], reason))

    print(f"{'class':22} {'total':>5} {'flagged':>7} {'missed':>6} {'answers':>7}  reports read")
    for cls in sorted(total):
        ok = flagged[cls]
        miss = total[cls] - ok if cls != "human" else 0
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(reports.get(cls, Counter()).items()) if k != "none")
        print(f"{cls:22} {total[cls]:5} {ok:7} {miss:6} {answers[cls]:7}  {kinds or '-'}")
    n_auto = sum(1 for r in rows if r["label"] == "automated")
    print(f"{'automated (all)':22} {n_auto:5} {n_auto - len(missed):7} {len(missed):6}")
    print(f"{'human wrongly flagged':22} {len(wrong):5}")
    print(f"{'mail.parse raised':22} {len(crashed):5}")

    print(f"\nAutomated messages that would get an acknowledgement ({len(missed)}):")
    for path, cls in missed:
        print(f"  [{cls}] {path}")
    print(f"\nHuman messages flagged as automated ({len(wrong)}):")
    for path, reason in wrong:
        print(f"  {path}: {reason}")
    print(f"\nMessages for which parsing raised ({len(crashed)}):")
    for path, err in crashed:
        print(f"  {path}: {err}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
