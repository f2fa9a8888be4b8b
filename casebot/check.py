"""`casebot check`: is this configuration going to work? Every part tried, nothing changed.

Owns the report: the configuration, the rules, steps and templates, the database (reached and its schema read,
never created or migrated), the mailbox (logged in, mail waiting), the sender, what the staff and SLA settings
mean. Must not change anything: no file, folder, table or flag is created or moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from casebot.config import Settings
from casebot.service import build_deps, build_mailbox, build_sender, database_url
from casebot.store import BadDatabaseUrl, Store, StoreError
from casebot.transport import TransportError


@dataclass(frozen=True)
class CheckLine:
    ok: bool
    what: str


def _check_database(settings: Settings) -> CheckLine:
    """Reach the database and read its schema revision, changing nothing: no file or folder created, nothing
    migrated (`casebot check` has no side effects; `casebot run` and `casebot db upgrade` do that)."""
    url = database_url(settings, create=False)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        folder = Path(url[len("sqlite:///"):]).parent
        ok = folder.is_dir() or not folder.exists()
        return CheckLine(ok, f"database {url}: does not exist yet; casebot creates it at its first start")
    try:
        store = Store(url)
    except BadDatabaseUrl as exc:
        return CheckLine(False, f"database.url: {exc}")
    try:
        revision, head = store.revision(), store.head()
        note = "up to date" if revision == head else f"casebot will migrate it to {head}"
        return CheckLine(True, f"database {store.display_url} (schema {revision or 'empty'}: {note})")
    except StoreError as exc:
        return CheckLine(False, f"database: {exc}")
    finally:
        store.close()


def check(settings: Settings) -> list[CheckLine]:
    """`casebot check`: the configuration, the rules and templates, the database, the mailbox, the sender."""
    lines = [CheckLine(True, f"configuration {settings.source}")]
    build_deps(settings)
    lines.append(CheckLine(True, "priority rules and templates load"))
    if settings.staff.notify:
        plans = ", ".join(settings.plans) or "none"
        lines.append(CheckLine(True, f"reminders and breach alerts to {settings.staff.notify}, escalations to "
                                     f"{settings.escalation.manager or '(nobody: escalation.manager is empty)'}; "
                                     f"plans: {plans}"))
    else:
        lines.append(CheckLine(True, "reminders: staff.notify is empty, so reminders, breach alerts and the digest "
                                     "are recorded on the cases but not mailed"))
    if settings.staff.addresses and not settings.staff.authserv_id:
        lines.append(CheckLine(True, "staff: staff.authserv_id is not set, so staff identity rests on the From "
                                     "header alone (set it to your receiving server's authserv-id)"))
    lines.append(_check_database(settings))
    s = settings.mailbox
    try:
        mailbox = build_mailbox(settings)
        if mailbox is None:
            lines.append(CheckLine(True, "mailbox: kind = 'pipe' (mail arrives through 'casebot ingest')"))
        else:
            mailbox.open()
            waiting = len(mailbox.pending())
            mailbox.close()
            where = (f"imap {s.username}@{s.host}:{s.port}/{s.folder} ({s.security}): logged in,"
                     if s.kind == "imap" else f"maildir {settings.resolve_path(s.path)}:")
            lines.append(CheckLine(True, f"mailbox {where} {waiting} message(s) waiting"))
    except TransportError as exc:
        lines.append(CheckLine(False, f"mailbox: {exc}"))
    o = settings.outgoing
    try:
        sender = build_sender(settings)
        sender.open()
        sender.close()
        where = f"{o.host}:{o.port} ({o.security})" if o.kind == "smtp" else str(settings.resolve_path(o.path))
        lines.append(CheckLine(True, f"outgoing {o.kind} {where}"))
    except TransportError as exc:
        lines.append(CheckLine(False, f"outgoing: {exc}"))
    return lines
