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
               "missing folder): the MTA keeps the message and retries; an empty message is quarantined (0), so no "
               "mail is ever bounced for casebot's sake")
OAUTH_EXIT = ("exit status: 0 done; 1 the sign-in failed or the server refused (or, for status, a token is missing "
              "or unusable); 75 (EX_TEMPFAIL) the token endpoint could not be reached; 78 (EX_CONFIG) configuration "
              "error (auth is not \"oauth2\", a key is missing)")
STATUS_EXIT = ("exit status: 0 healthy; 1 unhealthy (the reasons are printed: mailbox unreachable, outbox stuck, "
               "OAuth token failing, database unreachable, daemon hung or killed); 64 usage error; 78 (EX_CONFIG) "
               "configuration error")
PRIVACY_EXIT = ("exit status: 0 done (also when nothing was found: the output says so), 1 the zip cannot be "
                "written, 64 not an email address, 75 (EX_TEMPFAIL) the database or the IMAP server is unreachable, "
                "78 (EX_CONFIG) configuration error")
RETENTION_EXIT = ("exit status: 0 done (also when [retention] keeps everything: the output says so), 75 "
                  "(EX_TEMPFAIL) the database is unreachable, 78 (EX_CONFIG) configuration error")
BACKUP_EXIT = ("exit status: 0 written, 1 the backup failed (pg_dump missing or failing, file not writable), 75 the "
               "database is unreachable, 78 configuration error")
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
    st = sub.add_parser("status", help="healthy or not, and why: the daemon's /healthz, else the database and the "
                        "daemon's state file; exit 1 when unhealthy (a monitoring check, ExecCondition)",
                        epilog=STATUS_EXIT)
    st.add_argument("--json", action="store_true", help="print the verdict as a JSON object (as /healthz does)")
    st.add_argument("--local", action="store_true", help="do not ask the daemon's /healthz; judge from the "
                    "database and the state file")
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
    bak = dsub.add_parser("backup", help="a consistent copy of the database while casebot runs: SQLite's online "
                          "backup API, or pg_dump --format=custom for PostgreSQL (README, \"Backup and restore\")",
                          epilog=BACKUP_EXIT)
    bak.add_argument("file", help="where to write the backup (an SQLite file, or a pg_restore archive)")
    demo = sub.add_parser("demo", help="try casebot on sample mails: local Maildir in and out, SQLite, no server")
    demo.add_argument("--dir", default="casebot-demo", help="working folder for the demo (default: ./casebot-demo)")
    oauth = sub.add_parser("oauth", help="OAuth2 tokens for Microsoft 365, Google Workspace or another server")
    osub = _Sub(oauth.add_subparsers(dest="oauth_command", required=True, metavar="ACTION"))
    ologin = osub.add_parser("login", help="obtain the first token interactively (device code for Microsoft, a "
                             "browser and a loopback listener on 127.0.0.1 otherwise) and write token_file (0600)",
                             epilog=OAUTH_EXIT)
    ologin.add_argument("--for", dest="section", choices=["mailbox", "outgoing"], default="mailbox",
                        help="whose [*.oauth2] table to log in with (default: mailbox)")
    ologin.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the sign-in (default 600)")
    osub.add_parser("status", help="each token: its file, when the access token expires, the client secret's "
                    "expiry; refreshes nothing", epilog=OAUTH_EXIT)
    _housekeeping(sub)
    return p


def _housekeeping(sub: _Sub) -> None:
    """`privacy export|erase` and `retention run`."""
    actor = "who is recorded in the admin log (default: the user running the command)"
    priv = sub.add_parser("privacy", help="one person's data: a subject-access export, or an erasure")
    psub = _Sub(priv.add_subparsers(dest="privacy_command", required=True, metavar="ACTION"))
    exp = psub.add_parser("export", help="every case the address is on (requester, participant or sender), its "
                          "messages (raw .eml, byte-exact), attachments, audit trail, the outbox mail to them and "
                          "their quarantined mail, with index.json; audited", epilog=PRIVACY_EXIT)
    exp.add_argument("address", help="the person's email address (any case)")
    exp.add_argument("--out", required=True, help="the zip file to write")
    exp.add_argument("--actor", help=actor)
    era = psub.add_parser("erase", help="remove the person's personal data: raw mail, bodies, subjects, names and "
                          "attachments of the cases they requested (the case skeleton stays for statistics), their "
                          "own mail elsewhere, their address replaced by a stable pseudonym; says what it could not "
                          "erase; audited; a second run changes nothing", epilog=PRIVACY_EXIT)
    era.add_argument("address", help="the person's email address (any case)")
    era.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    era.add_argument("--expunge-imap", action="store_true",
                     help="also delete the erased mail from the IMAP processed folder (and their quarantined mail "
                          "from the quarantine folder)")
    era.add_argument("--actor", help=actor)
    ret = sub.add_parser("retention", help="purge old data as [retention] says (the daemon does it daily)")
    rsub = _Sub(ret.add_subparsers(dest="retention_command", required=True, metavar="ACTION"))
    run = rsub.add_parser("run", help="one bounded purge run (retention.batch rows per rule), audited",
                          epilog=RETENTION_EXIT)
    run.add_argument("--dry-run", action="store_true", help="print what would be purged, purge nothing")
    run.add_argument("--actor", help=actor)




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
