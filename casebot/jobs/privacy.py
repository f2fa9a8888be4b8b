"""The privacy jobs: a subject-access export and an erasure, for one address (`casebot privacy export|erase`).

Owns the pseudonym (`erased-<12 hex>@erased.invalid`: HMAC-SHA256 of the lower-cased address with the install's
key, or SHA-256 without one, so the same person always gets the same one), which quarantined mail is theirs (their
address in its From header; mail that merely mentions them is reported, not deleted), writing the export zip (raw
`.eml` byte-exact, attachments, index.json with a SHA-256 of every file), the audit of both (an `admin_log` row and
an event on each case), the dry run (the same writes, rolled back) and, on request, expunging the erased mail from
the IMAP server. Must not build SQL (the store does) or parse mail beyond the From and Message-ID headers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import zipfile
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Protocol

from casebot import __version__
from casebot.store import Store, SubjectData, Tx

KEPT = ("messages_kept_mentioning", "outbox_kept_mentioning")
Stamp = tuple[int, int, int, int, int, int]


class Expunger(Protocol):
    """The mailbox side of an erasure (`ImapMailbox.expunge_message_ids`)."""

    def expunge_message_ids(self, message_ids: list[str], quarantine: bool = False) -> tuple[int, str]: ...


def normalise(address: str) -> str | None:
    a = address.strip().strip("<>").strip().lower()
    return a if "@" in a and not any(c.isspace() for c in a) else None


def pseudonym(address: str, key: bytes | None = None) -> str:
    a = address.strip().lower().encode()
    digest = hmac.new(key, a, hashlib.sha256).hexdigest() if key else hashlib.sha256(a).hexdigest()
    return f"erased-{digest[:12]}@erased.invalid"


def _headers(raw: bytes) -> Any:
    return BytesHeaderParser().parsebytes(raw)


def _from_them(raw: bytes, address: str) -> bool:
    try:
        found = getaddresses([str(v) for v in _headers(raw).get_all("From", [])])
    except Exception:  # a quarantined mail may be broken in any way: then it is not provably theirs
        return False
    return any(addr.strip().lower() == address for _name, addr in found)


def _message_ids(raw: bytes) -> list[str]:
    try:
        return [str(v).strip().strip("<>") for v in _headers(raw).get_all("Message-ID", []) if str(v).strip()]
    except Exception:  # a broken header block: nothing to look for on the server
        return []


def _mentions(raw: bytes, address: str) -> bool:
    return address.encode() in raw.lower()


def _quarantine(tx: Tx, address: str) -> tuple[dict[int, bytes], int]:
    """Quarantined mail from them (id -> raw), and how many others mention them."""
    theirs, others = {}, 0
    for qid, _source, _reason, _at, raw in tx.quarantined():
        if _from_them(raw, address):
            theirs[qid] = raw
        elif _mentions(raw, address):
            others += 1
    return theirs, others


# -- export -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    path: Path
    cases: int
    messages: int
    attachments: int
    outbox: int
    quarantine: int
    sha256: str


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _safe(name: str) -> str:
    return "".join("_" if c in '/\\:\0' else c for c in name) or "attachment"


def write_zip(data: SubjectData, address: str, out: Path, now: dt.datetime) -> dict[str, Any]:
    """The export zip: every file plus index.json; written beside `out` and renamed, so no half a file remains."""
    stamp: Stamp = (now.year, now.month, now.day, now.hour, now.minute, now.second)
    index: dict[str, Any] = {
        "address": address, "generated_at": _iso(now), "casebot_version": __version__,
        "cases": [{**c.facts, "folder": f"cases/{c.reference}/", "events": list(c.events)} for c in data.cases],
        "messages": [], "outbox": [], "quarantine": [],
    }
    tmp = out.with_name(out.name + ".partial")
    try:
        _fill(zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED), data, index, stamp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return index


def _fill(archive: zipfile.ZipFile, data: SubjectData, index: dict[str, Any], stamp: Stamp) -> None:
    with archive as zf:

        def put(name: str, content: bytes) -> dict[str, Any]:
            zf.writestr(zipfile.ZipInfo(name, date_time=stamp), content, compress_type=zipfile.ZIP_DEFLATED)
            return {"file": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}

        for m in data.messages:
            folder = f"cases/{m.case_reference}/" if m.case_reference else ""
            entry: dict[str, Any] = {
                "id": m.id, "case": m.case_reference, "message_id": m.message_id, "disposition": m.disposition,
                "from": m.sender, "to": list(m.recipients), "cc": list(m.cc), "subject": m.subject,
                "received_at": _iso(m.received_at), "automated": m.automated, "purged_at": _iso(m.purged_at),
                "file": None, "attachments": [],
            }
            if m.raw:
                entry.update(put(f"{folder}messages/{m.id}.eml", m.raw))
            for t in m.attachments:
                att = {"id": t.id, "filename": t.filename, "content_type": t.content_type, "size": t.size,
                       "purged_at": _iso(t.purged_at), "file": None}
                if t.data:
                    att.update(put(f"{folder}attachments/{m.id}-{t.id}-{_safe(t.filename)}", t.data))
                entry["attachments"].append(att)
            index["messages"].append(entry)
        for o in data.outbox:
            folder = f"cases/{o.case_reference}/" if o.case_reference else ""
            row: dict[str, Any] = {"id": o.id, "case": o.case_reference, "kind": o.kind, "to": list(o.recipients),
                                   "message_id": o.message_id, "status": o.status, "created_at": _iso(o.created_at),
                                   "sent_at": _iso(o.sent_at), "file": None}
            if o.raw:
                row.update(put(f"{folder}outbox/{o.id}.eml", o.raw))
            index["outbox"].append(row)
        for qid, reason, at, raw in data.quarantine:
            index["quarantine"].append({"id": qid, "reason": reason, "quarantined_at": _iso(at),
                                        **put(f"quarantine/{qid}.eml", raw)})
        zf.writestr(zipfile.ZipInfo("index.json", date_time=stamp),
                    json.dumps(index, indent=2, ensure_ascii=False, default=str).encode(),
                    compress_type=zipfile.ZIP_DEFLATED)


def export(store: Store, address: str, out: Path, now: dt.datetime, actor: str) -> Exported:
    """Everything stored about `address` into the zip `out`; audited once the file is complete."""
    with store.transaction() as tx:
        q_ids = {qid for qid, _s, _r, _a, raw in tx.quarantined() if _mentions(raw, address)}
        data = tx.subject_data(address, q_ids)
    index = write_zip(data, address, out, now)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    result = Exported(out, len(data.cases), len(data.messages),
                      sum(len(m.attachments) for m in data.messages), len(data.outbox), len(data.quarantine), digest)
    with store.transaction() as tx:
        for c in index["cases"]:
            case_id = tx.case_id(c["reference"])
            if case_id is not None:
                tx.event(case_id, now, "privacy.exported", by=actor, file=out.name, sha256=digest)
        tx.admin_log(now, actor, "privacy.export", address, file=str(out), sha256=digest, cases=result.cases,
                     messages=result.messages, attachments=result.attachments, outbox=result.outbox,
                     quarantine=result.quarantine)
    return result


# -- erasure ------------------------------------------------------------------------------------------------------


@dataclass
class Erased:
    address: str
    pseudonym: str
    dry_run: bool
    changed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)  # what stays, and why (see `not_erased`)
    whole: list[str] = field(default_factory=list)  # references of cases they requested: skeleton left
    partial: list[str] = field(default_factory=list)  # other cases they were on: their address pseudonymised
    message_ids: list[str] = field(default_factory=list)  # of the erased mail, for the IMAP expunge
    quarantine_ids: list[str] = field(default_factory=list)
    expunged: dict[str, int] = field(default_factory=dict)
    imap_folders: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not self.changed


class _Rollback(Exception):
    """Ends a dry run's transaction: the same writes as a real erasure, then rolled back."""


def erase(store: Store, address: str, now: dt.datetime, actor: str, key: bytes | None = None,
          dry_run: bool = False, expunger: Expunger | None = None) -> Erased:
    """Erase `address` (lower-cased, see `normalise`) in one transaction; then, with `expunger`, the erased mail on
    the IMAP server. Idempotent: a second run finds nothing left and writes nothing."""
    p = pseudonym(address, key)
    result = Erased(address, p, dry_run)
    try:
        with store.transaction() as tx:
            theirs, others = _quarantine(tx, address)
            q_mids = [mid for raw in theirs.values() for mid in _message_ids(raw)]
            counts, touched = tx.erase_subject(address, p, now, set(theirs))
            refs = tx.references(set(touched))
            result.changed = {k: v for k, v in sorted(counts.items()) if k not in KEPT}
            result.kept = {k: v for k, v in sorted(counts.items()) if k in KEPT}
            if others:
                result.kept["quarantine_kept_mentioning"] = others
            result.whole = sorted(refs[i] for i, scope in touched.items() if scope == "whole")
            result.partial = sorted(refs[i] for i, scope in touched.items() if scope != "whole")
            for case_id, scope in sorted(touched.items()):
                tx.event(case_id, now, "privacy.erased", by=actor, pseudonym=p, scope=scope)
            if result.changed:
                tx.admin_log(now, actor, "privacy.erase", p, **result.changed, kept=result.kept,
                             cases_whole=result.whole, cases_partial=result.partial)
            result.message_ids = tx.erased_message_ids(p)
            result.quarantine_ids = q_mids
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    if expunger is not None and not dry_run:
        found, folder = expunger.expunge_message_ids(result.message_ids)
        result.expunged["processed"], result.imap_folders = found, [folder]
        if result.quarantine_ids:
            found, folder = expunger.expunge_message_ids(result.quarantine_ids, quarantine=True)
            result.expunged["quarantine"] = found
            result.imap_folders.append(folder)
        with store.transaction() as tx:
            tx.admin_log(now, actor, "privacy.expunge", p, folders=result.imap_folders,
                         searched=len(result.message_ids) + len(result.quarantine_ids), **result.expunged)
    return result


def not_erased(result: Erased, mailbox_kind: str, expunge: bool) -> list[str]:
    """What an erasure leaves, in words: the admin's to handle (README, "Privacy")."""
    out = []
    if n := result.kept.get("messages_kept_mentioning"):
        out.append(f"{n} message(s) of other people, on cases {result.address} was Cc'd on or wrote to, still "
                   "name them in their raw mail (kept: it is those people's mail; their address in the stored "
                   "fields is pseudonymised)")
    if n := result.kept.get("outbox_kept_mentioning"):
        out.append(f"{n} mail(s) casebot sent to them and others together are kept (the others' copy)")
    if n := result.kept.get("quarantine_kept_mentioning"):
        out.append(f"{n} quarantined message(s) from others mention them (kept: casebot quarantine list)")
    if mailbox_kind == "imap" and not expunge and result.message_ids:
        out.append(f"{len(result.message_ids)} of their message(s) are still on the IMAP server (processed "
                   "folder): run again with --expunge-imap to delete them there too")
    elif mailbox_kind == "maildir" and result.message_ids:
        out.append(f"{len(result.message_ids)} of their message(s) are still in the Maildir's processed folder "
                   "(delete them there by hand)")
    out.append("copies in database backups made before now, and the mail casebot sent (the client's and "
               "staff.notify's mailboxes), are not touched")
    return out
