"""`casebot status`: the health verdict on the command line, for a monitoring check or a systemd ExecCondition.

Owns asking the running daemon's `/healthz` (when `metrics.listen` is set and something answers there), else
judging from the database and the daemon's state file alone (so it works with no daemon running, and after
`casebot poll` from cron), printing the verdict (or `--json`) and the exit status: 0 healthy, 1 unhealthy.
Must not change anything: no database is created or migrated, nothing is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from casebot import config
from casebot.cli_parser import EX_FAIL, EX_OK


def _verdict(settings: config.Settings, ask_daemon: bool) -> tuple[bool, dict[str, Any]]:
    from casebot import monitor
    from casebot.clock import utcnow
    from casebot.service import database_url, make_store

    answer = monitor.remote(settings) if ask_daemon else None
    if answer is not None:
        return answer[0], {**answer[1], "source": f"the daemon's /healthz on {settings.metrics.listen}"}
    state = monitor.state_path(settings)
    where = f"the database and {state}" if state else "the database (no state file: set health.state_file)"
    source = {"source": f"{where} (no daemon answered)" if settings.metrics.listen and ask_daemon else where}
    url = database_url(settings, create=False)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):].split("?")[0]).exists():
        verdict = monitor.local(settings, None, utcnow(), f"{url}: does not exist (casebot has not run yet)")
        return verdict.healthy, {**verdict.as_json(), **source}
    store = make_store(settings)
    try:
        verdict = monitor.local(settings, store, utcnow())
    finally:
        store.close()
    return verdict.healthy, {**verdict.as_json(), **source}


def status(settings: config.Settings, args: argparse.Namespace) -> int:
    healthy, body = _verdict(settings, not args.local)
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return EX_OK if healthy else EX_FAIL
    print(f"casebot: {'healthy' if healthy else 'UNHEALTHY'} (from {body.get('source', '?')})")
    for reason in body.get("reasons", []):
        print(f"  - {reason}")
    box, outbox, daemon = body.get("mailbox") or {}, body.get("outbox") or {}, body.get("daemon") or {}
    print(f"database: {body.get('database', '?')}")
    if box.get("watched"):
        print(f"mailbox: {'connected' if box.get('connected') else 'not connected'}, last good pass "
              f"{box.get('last_success_at') or 'never'}, {box.get('failed_passes', 0)} failed pass(es) in a row")
    age = outbox.get("oldest_pending_age_seconds")
    print(f"outbox: {outbox.get('pending', 0)} pending" + (f", the oldest for {age:.0f} s" if age else ""))
    print(f"quarantine: {body.get('quarantine', 0)} message(s)")
    for name, token in (body.get("tokens") or {}).items():
        print(f"oauth token {name}: expires {token.get('expires_at') or 'unknown'}"
              + (f", failing: {token['error']}" if token.get("error") else ""))
    if daemon:
        print(f"{daemon.get('mode')} pid {daemon.get('pid')}: {'running' if daemon.get('running') else 'stopped'}, "
              f"last update {daemon.get('updated_at')}")
    else:
        print("daemon: no state published yet (casebot run or casebot poll writes it)")
    return EX_OK if healthy else EX_FAIL
