"""Command line: argument parsing and printing only.

Owns the commands (`run`, `poll`, `ingest`, `check`, `cases list|show|status`, `db upgrade`, `demo`), where the
config comes from, and exit statuses: 0 success, 1 a check failed, 64 usage, 75 (EX_TEMPFAIL) try again later,
78 (EX_CONFIG) configuration error. Must not contain mail logic or build anything: it calls the service, the
daemon, the jobs and the demo, and prints what they return.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casebot import cli_kept, cli_oauth, cli_privacy, cli_status, config, logs
from casebot.cli_parser import EX_CONFIG, EX_FAIL, EX_OK, EX_TEMPFAIL, EX_USAGE, build_parser

if TYPE_CHECKING:
    from casebot.store import Store



def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except BrokenPipeError:
        # `casebot cases list | head`: the reader has gone, which is not an error; say nothing more.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EX_OK


def _line(exc: BaseException) -> str:
    """An error as one line: drivers' messages span several, and a log or an MTA wants one."""
    return " ".join(str(exc).split())


def _main(args: argparse.Namespace) -> int:
    try:
        if args.command == "demo":
            return _demo(Path(args.dir))
        settings = config.load(args.config)
        logs.configure(settings.logging.level, settings.logging.format)
        handler = {
            "run": _run, "poll": _poll, "ingest": _ingest, "check": _check, "cases": _cases, "db": _db,
            "sla": _sla, "remind": _remind, "quarantine": cli_kept.quarantine, "messages": cli_kept.messages,
            "attachments": cli_kept.attachments, "oauth": cli_oauth.oauth,
            "status": cli_status.status, "privacy": cli_privacy.privacy, "retention": cli_privacy.retention,
        }[args.command]
        return handler(settings, args)
    except config.ConfigError as exc:
        if args.command == "ingest":
            # A config typo must not bounce every client's mail: the MTA keeps the message and retries.
            print(f"casebot ingest: configuration error, the MTA keeps the message: {_line(exc)}", file=sys.stderr)
            return EX_TEMPFAIL
        print(f"casebot: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except Exception as exc:
        from casebot.store import StoreError

        if args.command == "ingest":
            # Whatever went wrong on casebot's side, the message is not lost: the MTA retries it.
            print(f"casebot ingest: not stored, the MTA keeps the message: {type(exc).__name__}: {_line(exc)}",
                  file=sys.stderr)
            return EX_TEMPFAIL
        if not isinstance(exc, StoreError):
            raise
        # The database is down or unreachable at start: a temporary failure (systemd restarts us).
        print(f"casebot: database unavailable: {_line(exc)}", file=sys.stderr)
        return EX_TEMPFAIL


def _run(settings: config.Settings, _args: argparse.Namespace) -> int:
    from casebot.daemon import Daemon

    return Daemon(settings).run()


def _poll(settings: config.Settings, _args: argparse.Namespace) -> int:
    from casebot.passes import poll

    result = poll(settings)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.ingest.counts.items())) or "nothing new"
    print(f"ingested {result.ingest.seen} message(s): {counts}")
    d = result.deliver
    print(f"delivered {d.sent}, retrying {d.retried}, failed {d.failed}")
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return EX_TEMPFAIL if result.errors else EX_OK


def _ingest(settings: config.Settings, _args: argparse.Namespace) -> int:
    """MTA pipe (`| casebot ingest`): 0 = stored (or already stored, or quarantined - an empty message too -:
    nothing lost; a mail over mailbox.max_message_bytes is stored unparsed), 75 = the MTA keeps the message and
    retries later."""
    import os

    from casebot.passes import ingest_one
    from casebot.store import StoreError

    # The MTA's pipe user and the daemon share the state directory through the `casebot` group (README, "Mail
    # from an MTA pipe"): what this process creates (the SQLite file on first use; its -wal/-shm copy its mode)
    # is group-writable, never world-readable, whatever umask the MTA gave (Postfix's pipe: 077).
    os.umask(0o007)
    # An empty or whitespace-only message is recorded too (quarantined, "empty message"; exit 0), never refused.
    raw = sys.stdin.buffer.read()
    try:
        outcome = ingest_one(settings, raw)
    except StoreError as exc:
        print(f"casebot ingest: database unavailable, try again later: {_line(exc)}", file=sys.stderr)
        return EX_TEMPFAIL
    if outcome.status == "failed":
        print(f"casebot ingest: not stored yet ({outcome.detail}); try again later", file=sys.stderr)
        return EX_TEMPFAIL
    print(f"{outcome.status}{' ' + outcome.reference if outcome.reference else ''}")
    return EX_OK


def _check(settings: config.Settings, _args: argparse.Namespace) -> int:
    from casebot.check import check

    lines = check(settings)
    for line in lines:
        print(f"{'ok  ' if line.ok else 'FAIL'}  {line.what}")
    return EX_OK if all(line.ok for line in lines) else EX_FAIL


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _cases(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot.service import open_store

    store = open_store(settings)
    try:
        if getattr(args, "reference", None):
            args.reference = store.canonical_reference(args.reference) or args.reference
        if args.cases_command == "list":
            return _print_cases(store, args.status, args.json)
        if args.cases_command in ("status", "update"):
            return _update(settings, store, args)
        from casebot.clock import utcnow

        detail = store.case_detail(args.reference, utcnow())
        if detail is None:
            print(f"casebot: no case {args.reference!r}", file=sys.stderr)
            return EX_FAIL
        if args.json:
            print(json.dumps(detail, indent=2, ensure_ascii=False, default=str))
            return EX_OK
        _print_case(detail)
        return EX_OK
    finally:
        store.close()


def _update(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from casebot.case import Priority, Status
    from casebot.clock import utcnow
    from casebot.jobs.update import update_case
    from casebot.service import build_deps

    status = Status(args.status) if args.status else None
    priority = Priority(args.priority) if getattr(args, "priority", None) else None
    responded = bool(getattr(args, "responded", False))
    if args.cases_command == "update" and not (status or priority or responded):
        print("casebot cases update: give --status, --priority or --responded", file=sys.stderr)
        return EX_USAGE
    updated = update_case(store, build_deps(settings).clocks, args.reference, utcnow(), status=status,
                          priority=priority, responded=responded, why=args.why)
    if updated is None:
        print(f"casebot: no case {args.reference!r}", file=sys.stderr)
        return EX_FAIL
    if args.cases_command == "status":
        print(f"{args.reference}: {updated.previous_status} -> {updated.status}")
        return EX_OK
    print(f"{args.reference}: " + (", ".join(updated.changes) if updated.changes else "nothing changed"))
    return EX_OK


def _print_cases(store: Store, status: str | None = None, as_json: bool = False) -> int:
    from casebot.clock import utcnow

    cases = store.list_cases(status, now=utcnow())
    if as_json:
        print(json.dumps([c.as_json() for c in cases], indent=2, ensure_ascii=False))
        return EX_OK
    if not cases:
        print("no cases")
        return EX_OK
    rows = [["REFERENCE", "STATUS", "PRIORITY", "MSGS", "CREATED (UTC)", "REQUESTER", "SUBJECT"]]
    for c in cases:
        rows.append([c.reference, c.status, c.priority, str(c.message_count),
                     c.created_at.strftime("%Y-%m-%d %H:%M"), c.requester, c.subject[:60]])
    print(_table(rows))
    return EX_OK


def _print_case(d: dict[str, Any]) -> None:
    print(f"{d['reference']}  {d['subject']}")
    print(f"  status {d['status']}, priority {d['priority']} (rule: {d['priority_rule'] or 'default'}), "
          f"plan {d['plan'] or 'none'}")
    print(f"  requester {d['requester']}; participants {', '.join(d['participants'])}")
    print(f"  opened {d['created_at']}; first response due {d['first_response_due']}; "
          f"resolution due {d['resolution_due'] or '(paused)'}"
          + (f"; breached: {', '.join(d['breached'])}" if d["breached"] else ""))
    if d["linked_to"]:
        print(f"  linked to {d['linked_to']}")
    print(f"\nmessages ({len(d['messages'])}):")
    for m in d["messages"]:
        auto = f"  [automated: {m['automated']}]" if m["automated"] else ""
        print(f"  [{m['id']}] {m['received_at']}  {m['from']}  {m['subject']}{auto}")
        for defect in m["defects"]:
            print(f"      parse defect: {defect}")
        for a in m["attachments"]:
            print(f"      attachment {a['filename']} ({a['content_type']}, {a['size']} bytes)")
    print("\naudit trail:")
    for e in d["events"]:
        extra = {k: v for k, v in e.items() if k not in ("at", "kind", "trace")}
        print(f"  {e['at']}  {e['kind']}  {json.dumps(extra, ensure_ascii=False, default=str)}")
    print("\noutbox:")
    for o in d["outbox"] or [{"kind": "(nothing queued)", "to": [], "status": "", "attempts": 0, "key": ""}]:
        print(f"  {o['kind']} to {', '.join(o['to'])}: {o['status']} after {o['attempts']} attempt(s)")
        if o.get("bounced_at"):
            print(f"      bounced {o['bounced_at']}: {o['bounce_recipient'] or '(recipient unknown)'}: "
                  f"{o['bounce_diagnostic'] or '(no diagnostic)'} (message {o['bounce_message']})")


def _db(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot.service import make_store
    from casebot.store import StoreError

    if args.db_command == "backup":
        return cli_privacy.backup(settings, args)
    store = make_store(settings)
    try:
        before = store.revision()
        after = store.upgrade()
    except StoreError as exc:
        print(f"casebot db upgrade: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    finally:
        store.close()
    print(f"database schema {before or 'empty'} -> {after}" if before != after else f"database schema at {after}")
    return EX_OK


def _demo(folder: Path) -> int:
    from casebot import demo

    d = demo.prepare(folder)
    logs.configure(d.settings.logging.level, d.settings.logging.format)
    print(f"casebot demo in {folder.resolve()}: {d.samples} sample mails copied into {d.inbox}/new")
    print(f"$ casebot --config {d.config_file} poll")
    rc = _poll(d.settings, argparse.Namespace())
    print(f"\n$ casebot --config {d.config_file} cases list")
    _cases(d.settings, argparse.Namespace(cases_command="list", status=None, json=False))
    sent = d.sent()
    print(f"\n{len(sent)} acknowledgement(s) in {folder / 'sent' / 'new'}; the first one:\n")
    if sent:
        print(sent[0].read_text(encoding="utf-8", errors="replace"))
    print(f"Run it again: nothing new is created. Look closer: casebot --config {d.config_file} cases show CASE-000001")
    return rc


def _when(text: str, zone: Any) -> Any:
    import datetime as dt

    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(dt.UTC)


def _sla(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot.alerts import promise

    policy = settings.sla_policy()
    if args.sla_command == "due":
        plan = next((p for p in policy.plans if p.name == args.plan), None)
        if args.plan and plan is None:
            known = ", ".join(p.name for p in policy.plans) or "none configured"
            print(f"casebot sla due: no plan {args.plan!r} (plans: {known})", file=sys.stderr)
            return EX_USAGE
        out = []
        for text in args.at:
            at = _when(text, policy.calendar.zone)
            if at is None:
                print(f"casebot sla due: --at {text!r} is not an ISO 8601 time (2026-12-29T10:30:00+00:00)",
                      file=sys.stderr)
                return EX_USAGE
            out.append({"at": text, "priority": args.priority, "plan": args.plan,
                        **promise(policy, args.priority, at, plan)})
        print(json.dumps(out, indent=2))
        return EX_OK
    from casebot.clock import utcnow
    from casebot.service import Admin

    admin = Admin.open(settings)
    try:
        reference = admin.store.canonical_reference(args.reference) or args.reference
        lines = admin.explain(reference, utcnow())
    finally:
        admin.close()
    if lines is None:
        print(f"casebot: no case {args.reference!r}", file=sys.stderr)
        return EX_FAIL
    print("\n".join(lines))
    return EX_OK


def _remind(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot.clock import utcnow
    from casebot.jobs.remind import remind
    from casebot.service import Admin

    at = _when(args.at, settings.sla_policy().calendar.zone) if args.at else utcnow()
    if at is None:
        print(f"casebot remind: --at {args.at!r} is not an ISO 8601 time", file=sys.stderr)
        return EX_USAGE
    admin = Admin.open(settings)
    try:
        stats = remind(admin.store, admin.deps.clocks, admin.deps.notices, at, dry_run=args.dry_run)
    finally:
        admin.close()
    if args.dry_run:
        print("\n".join(stats.planned) if stats.planned else "nothing due")
        return EX_OK
    queued = ", ".join(f"{k} {v}" for k, v in sorted(stats.queued.items())) or "nothing due"
    print(f"scanned {stats.scanned} case(s): queued {queued}")
    return EX_OK
