"""Command line for what casebot keeps: `quarantine list|show|replay|export`, `messages raw|list`,
`attachments save`.

Owns printing quarantined mail, raw messages (byte-exact to standard output or a file), the automated mail casebot
stored without answering, and saving a case's attachments to a folder. Must not change a case: a replay goes
through the ingest job like any delivery.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casebot import config
from casebot.cli_parser import EX_FAIL, EX_OK


def _write_raw(raw: bytes, out: str | None) -> None:
    if out:
        Path(out).write_bytes(raw)
    else:
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()


def quarantine(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot.clock import utcnow
    from casebot.jobs.ingest import process
    from casebot.service import build_deps, open_store

    store = open_store(settings)
    try:
        if args.quarantine_command == "list":
            with store.transaction() as tx:
                items = tx.quarantine_items()
            if not items:
                print("nothing quarantined")
            for q in items:
                print(f"{q.id:>5}  {q.created_at:%Y-%m-%d %H:%M}  {q.size:>9} bytes  {q.source}  {q.reason[:80]}")
            return EX_OK
        with store.transaction() as tx:
            found = tx.quarantine_raw(args.id)
        if found is None:
            print(f"casebot: no quarantined message {args.id}", file=sys.stderr)
            return EX_FAIL
        item, raw = found
        if args.quarantine_command == "export":
            _write_raw(raw, args.out)
            return EX_OK
        if args.quarantine_command == "show":
            from casebot.mail import parse

            m = parse(raw)
            print(f"quarantined {item.id}: {item.source} at {item.created_at:%Y-%m-%d %H:%M} UTC, {item.size} bytes")
            print(f"  reason: {item.reason}")
            print(f"  from {m.sender.formatted() or '(none)'}; subject {m.subject or '(none)'}; "
                  f"Message-ID {m.message_id or '(none)'}")
            for defect in m.defects:
                print(f"  defect: {defect}")
            return EX_OK
        # Under its own source: a replay that fails again counts there, and never quarantines a second copy.
        outcome = process(store, build_deps(settings), raw, item.source, utcnow(), failures={})
        if outcome.status in ("failed", "quarantined"):
            print(f"quarantined {item.id}: still failing ({outcome.detail}); it stays quarantined", file=sys.stderr)
            return EX_FAIL
        with store.transaction() as tx:
            tx.release_quarantine(item.id)
        print(f"quarantined {item.id}: {outcome.status}{' ' + outcome.reference if outcome.reference else ''}")
        return EX_OK
    finally:
        store.close()


def messages(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot.service import open_store

    store = open_store(settings)
    try:
        with store.transaction() as tx:
            if args.messages_command == "raw":
                raw = tx.message_raw(args.id)
                if raw is None:
                    print(f"casebot: no message {args.id}", file=sys.stderr)
                    return EX_FAIL
                _write_raw(raw, args.out)
                return EX_OK
            kept = tx.kept_messages(automated_only=args.automated)
        if not kept:
            print("no messages")
        for k in kept:
            auto = f"  [automated: {k.automated}]" if k.automated else ""
            print(f"{k.id:>6}  {k.received_at:%Y-%m-%d %H:%M}  {k.reference or '(no case)':<12}  {k.disposition:<16}"
                  f"  {k.sender}  {k.subject[:60]}{auto}")
        return EX_OK
    finally:
        store.close()


def attachments(settings: config.Settings, args: argparse.Namespace) -> int:
    from casebot.service import open_store

    store = open_store(settings)
    try:
        reference = store.canonical_reference(args.reference) or args.reference
        with store.transaction() as tx:
            found = tx.attachments_of(reference)
    finally:
        store.close()
    if found is None:
        print(f"casebot: no case {args.reference!r}", file=sys.stderr)
        return EX_FAIL
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for att in found:
        # The stored names are sanitised (no path parts or control characters); two files may share one.
        name, n = att.filename, 1
        while name in used or (folder / name).exists():
            stem, dot, ext = att.filename.rpartition(".")
            name = f"{stem}-{n}.{ext}" if dot else f"{att.filename}-{n}"
            n += 1
        used.add(name)
        (folder / name).write_bytes(att.data)
        print(f"{folder / name}  ({att.content_type}, {len(att.data)} bytes, message {att.message_id})")
    if not found:
        print(f"{reference}: no attachments")
    return EX_OK
