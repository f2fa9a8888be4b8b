"""Composition for the housekeeping commands: privacy export and erasure, retention, database backups.

Owns wiring these jobs from settings (beside `service`, which is full): the retention policy from `[retention]`,
the pseudonym key from `privacy.pseudonym_key_file`, the IMAP mailbox an erasure expunges from, one store per
command, and `retention_once` for the daemon's daily job. Must not contain SQL or mail logic (the jobs and the
store do), or print (the CLI does).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from casebot import clock
from casebot.config import ConfigError, Settings
from casebot.jobs.privacy import Erased, Exported, erase, export
from casebot.jobs.retention import Purged, RetentionPolicy, run_retention
from casebot.service import Clock, build_mailbox, make_store, open_store
from casebot.store import Store


def retention_policy(settings: Settings) -> RetentionPolicy:
    r = settings.retention
    return RetentionPolicy(r.raw_days, r.attachments_days, r.closed_case_days, r.batch)


def retention_once(store: Store, settings: Settings, now: dt.datetime, dry_run: bool = False,
                   actor: str = "casebot retention") -> Purged:
    return run_retention(store, retention_policy(settings), now, actor=actor, dry_run=dry_run)


def retention(settings: Settings, actor: str, dry_run: bool, now: Clock = clock.utcnow) -> Purged:
    store = open_store(settings)
    try:
        return retention_once(store, settings, now(), dry_run, actor)
    finally:
        store.close()


def pseudonym_key(settings: Settings) -> bytes | None:
    given = settings.privacy.pseudonym_key_file
    if not given:
        return None
    path = settings.resolve_path(given)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"privacy.pseudonym_key_file: cannot read {str(path)!r}: {exc.strerror}") from exc
    if len(key) < 16:
        raise ConfigError(f"privacy.pseudonym_key_file: {str(path)!r} holds fewer than 16 bytes: too weak a key")
    return key


def privacy_export(settings: Settings, address: str, out: Path, actor: str, now: Clock = clock.utcnow) -> Exported:
    store = open_store(settings)
    try:
        return export(store, address, out, now(), actor)
    finally:
        store.close()


def privacy_erase(settings: Settings, address: str, actor: str, dry_run: bool, expunge: bool,
                  now: Clock = clock.utcnow) -> Erased:
    """Erase in the database; with `expunge` (IMAP only) the erased mail on the server too."""
    key = pseudonym_key(settings)
    mailbox = None
    if expunge and not dry_run:
        if settings.mailbox.kind != "imap":
            raise ConfigError(f"mailbox.kind: --expunge-imap needs an IMAP mailbox, this one is "
                              f"{settings.mailbox.kind!r}")
        from casebot.imap import ImapMailbox
        from casebot.oauth_setup import build_tokens

        built = build_mailbox(settings, build_tokens(settings, now))
        assert isinstance(built, ImapMailbox)
        mailbox = built
    store = open_store(settings)
    try:
        return erase(store, address, now(), actor, key, dry_run, mailbox)
    finally:
        store.close()
        if mailbox is not None:
            mailbox.close()


def backup(settings: Settings, target: Path) -> str:
    """`casebot db backup FILE`: never creates or upgrades the database it copies."""
    store = make_store(settings)
    try:
        return store.backup(target)
    finally:
        store.close()
