"""Command line for housekeeping: `privacy export|erase`, `retention run`, `db backup`.

Owns who the actor is (`--actor`, else the user running the command), checking the address, and printing what
the jobs did: the export's counts and file, the erasure's changes and what it could not erase, a retention run's
counts, where a backup went. Must not contain SQL or decide anything: `housekeeping` wires the jobs.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from casebot import config
from casebot.cli_parser import EX_FAIL, EX_OK, EX_TEMPFAIL, EX_USAGE


def actor(args: argparse.Namespace) -> str:
    given = getattr(args, "actor", None)
    if given:
        return str(given)
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        return "unknown"


def privacy(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot import housekeeping
    from casebot.jobs.privacy import normalise, not_erased
    from casebot.transport import MailboxUnavailable

    address = normalise(args.address)
    if address is None:
        print(f"casebot privacy: {args.address!r} is not an email address", file=sys.stderr)
        return EX_USAGE
    if args.privacy_command == "export":
        out = Path(args.out)
        try:
            done = housekeeping.privacy_export(settings, address, out, actor(args))
        except OSError as exc:
            print(f"casebot privacy export: cannot write {str(out)!r}: {exc.strerror or exc}", file=sys.stderr)
            return EX_FAIL
        print(f"{address}: {done.cases} case(s), {done.messages} message(s), {done.attachments} attachment(s), "
              f"{done.outbox} outbox mail(s), {done.quarantine} quarantined -> {out} (sha256 {done.sha256})")
        return EX_OK
    try:
        erased = housekeeping.privacy_erase(settings, address, actor(args), args.dry_run, args.expunge_imap)
    except MailboxUnavailable as exc:
        print(f"casebot privacy erase: the database part is done; the IMAP server could not be reached, run again "
              f"with --expunge-imap later: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    head = "dry run, nothing changed: would erase" if erased.dry_run else "erased"
    if erased.nothing:
        print(f"{address}: nothing left to erase (pseudonym {erased.pseudonym})")
    else:
        print(f"{address} -> {erased.pseudonym}: {head} "
              + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in erased.changed.items()))
        if erased.whole:
            print(f"  cases they requested (skeleton kept): {', '.join(erased.whole)}")
        if erased.partial:
            print(f"  other cases they were on (their address pseudonymised): {', '.join(erased.partial)}")
    for folder, (what, n) in zip(erased.imap_folders, erased.expunged.items(), strict=False):
        print(f"  IMAP {folder!r}: expunged {n} message(s) ({what})")
    for line in not_erased(erased, settings.mailbox.kind, args.expunge_imap):
        print(f"  not erased: {line}")
    return EX_OK


def retention(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot import housekeeping

    policy = housekeeping.retention_policy(settings)
    if not policy.enabled:
        print("retention is off: raw_days, attachments_days and closed_case_days are all 0 (keep forever)")
        return EX_OK
    done = housekeeping.retention(settings, actor(args), args.dry_run)
    print(done.summary() + (" (dry run, nothing changed)" if args.dry_run else ""))
    return EX_OK


def backup(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot import housekeeping
    from casebot.store import BackupError

    try:
        how = housekeeping.backup(settings, Path(args.file))
    except BackupError as exc:
        print(f"casebot db backup: {exc}", file=sys.stderr)
        return EX_FAIL
    print(f"{args.file}: written ({how})")
    return EX_OK
