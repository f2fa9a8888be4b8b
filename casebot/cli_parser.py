"""The command line's grammar: every command, its options, its help and its exit statuses.

Owns the argparse tree (`casebot COMMAND ...`), `--config` accepted before or after the command, each command's
`--help` (what it does, its options, its exit codes) and the exit status numbers (sysexits). Must not run
anything: `cli` dispatches and prints.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from casebot import __version__
from casebot.case import PRIORITIES, STATUSES

EX_OK, EX_FAIL, EX_USAGE, EX_TEMPFAIL, EX_CONFIG = 0, 1, 64, 75, 78
EXIT_CODES = ("exit status: 0 success, 1 a check failed or no such case, 64 usage error, 75 try again later "
              "(EX_TEMPFAIL), 78 configuration error (EX_CONFIG)")
INGEST_EXIT = ("exit status: 0 stored (or already stored, or quarantined: nothing lost); 75 (EX_TEMPFAIL) for "
               "anything that is not the message's fault (configuration error, database unreachable or unwritable, "
               "missing folder): the MTA keeps the message and retries; 64 an empty message (permanent)")
CONFIG_HELP = "TOML file (default: $CASEBOT_CONFIG, else /etc/casebot/casebot.toml)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")  # sysexits' EX_USAGE, not argparse's 2


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="casebot", description="Email-to-case ingestion daemon.", epilog=EXIT_CODES)
    p.add_argument("--config", "-c", help=CONFIG_HELP)
    p.add_argument("--version", action="version", version=f"casebot {__version__}")
    sub = _Sub(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    sub.add_parser("run", help="run the daemon: watch the mailbox, deliver the outbox")
    sub.add_parser("poll", help="one full pass: ingest everything waiting, deliver the outbox, exit")
    sub.add_parser("ingest", help="store one message read from standard input (MTA pipe); exit 0 or 75",
                   epilog=INGEST_EXIT)
    sub.add_parser("check", help="validate the config and try the mailbox, the SMTP server and the database")
    cases = sub.add_parser("cases", help="list or show cases")
    csub = _Sub(cases.add_subparsers(dest="cases_command", required=True, metavar="ACTION"))
    lst = csub.add_parser("list", help="list cases")
    lst.add_argument("--status", choices=[s.value for s in STATUSES])
    lst.add_argument("--json", action="store_true", help="print a JSON array")
    show = csub.add_parser("show", help="show one case with its messages and audit trail")
    show.add_argument("reference")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    status = csub.add_parser("status", help="set a case's status (recorded in its audit trail)")
    status.add_argument("reference")
    status.add_argument("status", choices=[s.value for s in STATUSES])
    status.add_argument("--why", default="set by an admin with 'casebot cases status'", help="reason recorded")
    upd = csub.add_parser("update", help="change a case's status or priority, or record a first response")
    upd.add_argument("reference")
    upd.add_argument("--status", choices=[s.value for s in STATUSES])
    upd.add_argument("--priority", choices=[p.value for p in PRIORITIES])
    upd.add_argument("--responded", action="store_true", help="record a first staff response now")
    upd.add_argument("--why", default="", help="reason recorded in the audit trail")
    sla = sub.add_parser("sla", help="what casebot promises, and why a case's deadlines are what they are")
    ssub = _Sub(sla.add_subparsers(dest="sla_command", required=True, metavar="ACTION"))
    due = ssub.add_parser("due", help="the deadlines of a message arriving at each --at")
    due.add_argument("--priority", required=True, choices=[p.value for p in PRIORITIES])
    due.add_argument("--at", action="append", required=True, metavar="ISO8601",
                     help="arrival time (repeatable); without an offset it is the calendar's local time")
    due.add_argument("--plan", help="a plan name from [plans.NAME]")
    due.add_argument("--json", action="store_true", help="print a JSON array (the only format)")
    explain = ssub.add_parser("explain", help="a case's clocks in plain words")
    explain.add_argument("reference")
    rem = sub.add_parser("remind", help="one reminder scan as of now (or --at): queue what is due")
    rem.add_argument("--at", metavar="ISO8601", help="scan as of this time (checks, catching up)")
    rem.add_argument("--dry-run", action="store_true", help="print what would be queued, queue nothing")
    q = sub.add_parser("quarantine", help="messages that kept failing: list, show, replay or export them")
    qsub = _Sub(q.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION"))
    qsub.add_parser("list", help="every quarantined message: id, when, size, where it came from, why")
    for action, what in (("show", "one quarantined message: why, its sender, subject and parse defects"),
                         ("replay", "try a quarantined message again (after a fix); stored, it leaves quarantine"),
                         ("export", "the raw bytes of a quarantined message, byte-exact")):
        one = qsub.add_parser(action, help=what)
        one.add_argument("id", type=int)
        if action == "export":
            one.add_argument("--out", help="write to this file instead of standard output")
    msgs = sub.add_parser("messages", help="stored messages: list them, or write one's raw bytes")
    msub = _Sub(msgs.add_subparsers(dest="messages_command", required=True, metavar="ACTION"))
    raw = msub.add_parser("raw", help="a stored message's raw bytes, byte-exact (casebot messages raw 12 > m.eml)")
    raw.add_argument("id", type=int, help="the message's id, as `casebot cases show` and `messages list` print it")
    raw.add_argument("--out", help="write to this file instead of standard output")
    ml = msub.add_parser("list", help="stored messages, oldest first")
    ml.add_argument("--automated", action="store_true", help="only automated mail (bounces, auto-replies, lists)")
    att = sub.add_parser("attachments", help="a case's attachments")
    asub = _Sub(att.add_subparsers(dest="attachments_command", required=True, metavar="ACTION"))
    save = asub.add_parser("save", help="write every attachment of a case into a folder")
    save.add_argument("reference")
    save.add_argument("--dir", default=".", help="folder to write into (default: the current one)")
    db = sub.add_parser("db", help="database maintenance")
    dsub = _Sub(db.add_subparsers(dest="db_command", required=True, metavar="ACTION"))
    dsub.add_parser("upgrade", help="apply Alembic migrations up to the newest schema")
    demo = sub.add_parser("demo", help="try casebot on sample mails: local Maildir in and out, SQLite, no server")
    demo.add_argument("--dir", default="casebot-demo", help="working folder for the demo (default: ./casebot-demo)")
    return p




class _Sub:
    """A subparsers group whose commands all accept `--config` after the command too (`casebot cases list -c X`)
    and say their exit statuses in `--help`."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))
        kwargs.setdefault("epilog", EXIT_CODES)
        parser: argparse.ArgumentParser = self.group.add_parser(name, **kwargs)
        # SUPPRESS: given only here, it does not overwrite a --config given before the command.
        parser.add_argument("--config", "-c", default=argparse.SUPPRESS, help=CONFIG_HELP)
        return parser
