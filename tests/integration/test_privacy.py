"""Privacy export and erasure for one person, on SQLite and PostgreSQL: the export byte-exact with a checked index,
the dry run changing nothing, the erasure emptying personal data while the case skeleton stays, the pseudonym
stable, a second erasure a no-op, every step audited; and, against a real Dovecot, the erased mail expunged from
the IMAP processed folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cbtest import Harness, folder_messages, make_mail, quiet_logs
from servers import ImapAccount, SmtpSink
from sqlalchemy import select

from casebot import housekeeping
from casebot.config import Settings, from_mapping
from casebot.jobs.privacy import pseudonym
from casebot.passes import ingest_one, poll
from casebot.store import Store
from casebot.store.schema import AdminLog, AttachmentRow, Base, Case, Message, Outbox, Participant

DANA = "dana@client.example"
ERIN = "erin@other.example"
T0 = dt.datetime(2026, 11, 16, 10, 0, tzinfo=dt.UTC)

ATTACHED = (b"From: Dana Client <Dana@Client.Example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n"
            b"Message-ID: <dana-1@client.example>\r\nDate: Mon, 16 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
            b"My printer is on fire. Call me on 0123.\r\n--b\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="photo.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            b"AAECAwQ=\r\n--b--\r\n")


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


def settings_for(db_url: str, tmp: Path, **extra: Any) -> Settings:
    return from_mapping({"mailbox": {"kind": "pipe"}, "outgoing": {"kind": "maildir", "path": str(tmp / "sent")},
                         "database": {"url": db_url}, "logging": {"level": "error"},
                         "digest": {"enabled": False}, **extra})


def at(when: dt.datetime) -> Any:
    return lambda: when


def populate(settings: Settings) -> dict[str, bytes]:
    """Dana opens CASE-000001 (with an attachment) and replies; Erin opens CASE-000002 with Dana in Cc and Dana
    answers there; Erin opens CASE-000003 alone. The outbox is delivered (acknowledgements sent)."""
    mails = {
        "dana1": ATTACHED,
        "dana2": make_mail(f"Dana <{DANA}>", "Re: Printer on fire", message_id="dana-2@client.example",
                           in_reply_to="dana-1@client.example", body="Still burning.\n"),
        "erin1": make_mail(f"Erin <{ERIN}>", "Shared drive down", message_id="erin-1@other.example",
                           headers=[("Cc", DANA)], body="Dana and I cannot open the drive.\n"),
        "dana3": make_mail(DANA, "Re: Shared drive down", message_id="dana-3@client.example",
                           in_reply_to="erin-1@other.example", body="Same here, from Dana.\n"),
        "erin2": make_mail(ERIN, "Invoice question", message_id="erin-2@other.example"),
    }
    for i, raw in enumerate(mails.values()):
        assert ingest_one(settings, raw, now=at(T0 + dt.timedelta(minutes=i))).status in ("opened", "threaded")
    poll(settings, now=at(T0 + dt.timedelta(minutes=10)))
    return mails


def snapshot(store: Store) -> list[tuple[Any, ...]]:
    """Every row of every table, for 'nothing changed'."""
    out: list[tuple[Any, ...]] = []
    with store.transaction() as tx:
        for table in Base.metadata.sorted_tables:
            rows = tx.session.execute(select(table).order_by(*table.primary_key.columns)).all()
            out.extend((table.name, *r) for r in rows)
    return out


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Store, dict[str, bytes]]]:
    settings = settings_for(db_url, tmp_path)
    mails = populate(settings)
    store = Store(db_url)
    yield settings, store, mails
    store.close()


def test_export_is_byte_exact_and_audited(env: tuple[Settings, Store, dict[str, bytes]], tmp_path: Path) -> None:
    settings, store, mails = env
    out = tmp_path / "dana.zip"
    done = housekeeping.privacy_export(settings, "DANA@client.EXAMPLE".lower(), out, "alice",
                                       now=at(T0 + dt.timedelta(hours=1)))
    assert (done.cases, done.attachments) == (2, 1)
    with zipfile.ZipFile(out) as zf:
        index = json.loads(zf.read("index.json"))
        assert index["address"] == DANA and index["casebot_version"] and index["generated_at"]
        assert [c["reference"] for c in index["cases"]] == ["CASE-000001", "CASE-000002"]
        assert index["cases"][0]["roles"] == ["requester", "participant", "sender"]
        assert "participant" in index["cases"][1]["roles"]
        assert any(e["kind"] == "case.opened" for e in index["cases"][0]["events"])
        files = {m["message_id"]: m for m in index["messages"]}
        assert set(files) == {"dana-1@client.example", "dana-2@client.example", "erin-1@other.example",
                              "dana-3@client.example"}  # erin-2 (CASE-000003) is not Dana's
        for key, mid in (("dana1", "dana-1@client.example"), ("dana3", "dana-3@client.example"),
                         ("erin1", "erin-1@other.example")):
            assert zf.read(files[mid]["file"]) == mails[key]  # byte-exact
            assert files[mid]["sha256"] == hashlib.sha256(mails[key]).hexdigest()
        (att,) = files["dana-1@client.example"]["attachments"]
        assert zf.read(att["file"]) == b"\x00\x01\x02\x03\x04" and att["filename"] == "photo.bin"
        assert index["outbox"] and all(DANA in o["to"] for o in index["outbox"])
        assert {o["kind"] for o in index["outbox"]} >= {"ack"}
        for o in index["outbox"]:
            body = zf.read(o["file"])
            assert hashlib.sha256(body).hexdigest() == o["sha256"] and b"Auto-Submitted" in body
    with store.transaction() as tx:
        (log,) = tx.admin_entries("privacy.export")
    assert log["actor"] == "alice" and log["subject"] == DANA and log["cases"] == 2
    assert log["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    for ref, expected in (("CASE-000001", ["alice"]), ("CASE-000002", ["alice"]), ("CASE-000003", [])):
        detail = store.case_detail(ref)
        assert detail is not None
        assert [e["by"] for e in detail["events"] if e["kind"] == "privacy.exported"] == expected


def test_erase_dry_run_changes_nothing_then_erases_and_keeps_the_skeleton(
        env: tuple[Settings, Store, dict[str, bytes]]) -> None:
    settings, store, mails = env
    before_cases = {c.reference: c for c in store.list_cases()}
    before = snapshot(store)
    dry = housekeeping.privacy_erase(settings, DANA, "bob", dry_run=True, expunge=False,
                                     now=at(T0 + dt.timedelta(hours=2)))
    assert snapshot(store) == before  # nothing changed
    assert dry.changed["cases_erased"] == 1 and dry.changed["messages_emptied"] == 3
    real = housekeeping.privacy_erase(settings, DANA, "bob", dry_run=False, expunge=False,
                                      now=at(T0 + dt.timedelta(hours=2)))
    assert real.changed == dry.changed and real.kept == dry.kept  # the dry run told the truth
    p = pseudonym(DANA)
    assert real.pseudonym == p and p.startswith("erased-") and p.endswith("@erased.invalid") and len(p) == 34
    assert real.whole == ["CASE-000001"] and real.partial == ["CASE-000002"]
    assert real.kept["messages_kept_mentioning"] == 1  # Erin's mail naming Dana in its Cc header

    with store.transaction() as tx:
        s = tx.session
        case1 = s.scalar(select(Case).where(Case.reference == "CASE-000001"))
        assert case1 is not None
        old = before_cases["CASE-000001"]
        assert (case1.priority, case1.status, case1.created_at, case1.first_response_due, case1.resolution_due) == (
            old.priority, old.status, old.created_at, old.first_response_due, old.resolution_due)
        assert (case1.subject, case1.requester, case1.requester_name) == ("(erased)", p, "")
        for m in s.scalars(select(Message).where(Message.case_id == case1.id)):
            assert (m.raw, m.body_text, m.subject, m.sender_name) == (b"", "", "(erased)", "")
            assert m.purged_at is not None and m.message_id  # kept for threading
            assert DANA not in json.dumps([m.sender, m.recipients, m.cc, m.trace]).lower()
        for a in s.scalars(select(AttachmentRow)):
            assert (a.data, a.filename, a.purged_at is not None) == (b"", "(erased)", True)
        erin1 = s.scalar(select(Message).where(Message.message_id == "erin-1@other.example"))
        assert erin1 is not None and erin1.raw == mails["erin1"]  # another person's mail stays
        assert erin1.cc == [p]
        dana3 = s.scalar(select(Message).where(Message.message_id == "dana-3@client.example"))
        assert dana3 is not None and (dana3.raw, dana3.sender) == (b"", p)
        erin2 = s.scalar(select(Message).where(Message.message_id == "erin-2@other.example"))
        assert erin2 is not None and erin2.raw == mails["erin2"]
        assert DANA not in {pp.address for pp in s.scalars(select(Participant))}
        for o in s.scalars(select(Outbox)):
            if o.case_id == case1.id:
                assert o.raw == b""
            assert DANA not in [r.lower() for r in o.recipients]
        (log,) = s.scalars(select(AdminLog).where(AdminLog.action == "privacy.erase")).all()
        assert (log.actor, log.subject) == ("bob", p) and log.detail["cases_erased"] == 1
        exported = list(s.scalars(select(AdminLog).where(AdminLog.action == "privacy.export")))
        assert not exported
    # cases show still works after the erasure, and says what happened
    for ref in ("CASE-000001", "CASE-000002", "CASE-000003"):
        detail = store.case_detail(ref)
        assert detail is not None
    d1 = store.case_detail("CASE-000001")
    assert d1 is not None and [e["scope"] for e in d1["events"] if e["kind"] == "privacy.erased"] == ["whole"]
    assert DANA not in json.dumps(d1).lower()

    after = snapshot(store)
    again = housekeeping.privacy_erase(settings, DANA.upper(), "bob", dry_run=False, expunge=False,
                                       now=at(T0 + dt.timedelta(hours=3)))
    assert again.nothing and again.pseudonym == p  # stable, and a second erasure is a no-op
    assert snapshot(store) == after


def test_pseudonym_is_stable_and_keyed() -> None:
    assert pseudonym("Dana@Client.Example") == pseudonym(DANA) == pseudonym(f" {DANA} ")
    assert pseudonym(DANA) != pseudonym(ERIN)
    keyed = pseudonym(DANA, b"k" * 32)
    assert keyed != pseudonym(DANA) and keyed == pseudonym(DANA.upper(), b"k" * 32)
    assert pseudonym(DANA) == f"erased-{hashlib.sha256(DANA.encode()).hexdigest()[:12]}@erased.invalid"


def test_erase_with_a_key_file_and_the_quarantine(db_url: str, tmp_path: Path) -> None:
    key = tmp_path / "pseudonym.key"
    key.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    settings = settings_for(db_url, tmp_path, privacy={"pseudonym_key_file": str(key)})
    assert ingest_one(settings, ATTACHED, now=at(T0)).status == "opened"
    store = Store(db_url)
    try:
        with store.transaction() as tx:
            tx.quarantine("pipe:x1", "simulated", make_mail(DANA, "poison"), T0)
            tx.quarantine("pipe:x2", "simulated", make_mail(ERIN, "about dana", body=f"ask {DANA}\n"), T0)
        done = housekeeping.privacy_erase(settings, DANA, "bob", dry_run=False, expunge=False, now=at(T0))
        assert done.pseudonym == pseudonym(DANA, b"0123456789abcdef0123456789abcdef")
        assert done.changed["quarantine_deleted"] == 1 and done.kept["quarantine_kept_mentioning"] == 1
        with store.transaction() as tx:
            assert [q.source for q in tx.quarantine_items()] == ["pipe:x2"]
    finally:
        store.close()


# -- the IMAP processed folder -----------------------------------------------------------------------------------


@pytest.mark.parametrize("processed", ["Processed", ""], ids=["moved", "keyword"])
def test_erase_expunges_the_imap_processed_folder(imap_account: ImapAccount, smtp_sink: SmtpSink,
                                                  db_url: str, processed: str) -> None:
    h = Harness(imap_account, smtp_sink, db_url, overrides={"mailbox": {"processed_folder": processed},
                                                              "digest": {"enabled": False}})
    folder = processed or "INBOX"
    try:
        dana = make_mail(DANA, "Help", message_id="d1@client.example")
        reply = make_mail(DANA, "Re: Help", message_id="d2@client.example", in_reply_to="d1@client.example")
        erin = make_mail(ERIN, "Other", message_id="e1@other.example")
        decoy = make_mail(ERIN, "Decoy", message_id="xd1@client.example")  # SEARCH matches substrings: not this
        h.append(dana, reply, erin, decoy)
        h.poll()
        assert len(folder_messages(imap_account, folder)) == 4
        settings = h.settings()
        dry = housekeeping.privacy_erase(settings, DANA, "bob", dry_run=True, expunge=True)
        assert dry.message_ids == ["d1@client.example", "d2@client.example"] and not dry.expunged
        assert len(folder_messages(imap_account, folder)) == 4
        done = housekeeping.privacy_erase(settings, DANA, "bob", dry_run=False, expunge=True)
        assert done.expunged == {"processed": 2} and done.imap_folders == [folder]
        left = folder_messages(imap_account, folder).values()
        assert sorted(left) == sorted([erin, decoy])
        again = housekeeping.privacy_erase(settings, DANA, "bob", dry_run=False, expunge=True)
        assert again.nothing and again.expunged == {"processed": 0}  # nothing left there either
        with h.store.transaction() as tx:
            assert [e["processed"] for e in tx.admin_entries("privacy.expunge")] == [2, 0]
    finally:
        h.close()


def test_the_privacy_commands(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    cfg = tmp_path / "casebot.toml"
    cfg.write_text(f'[mailbox]\nkind = "pipe"\n[outgoing]\nkind = "maildir"\npath = "sent"\n'
                   f'[database]\nurl = "sqlite:///{tmp_path}/casebot.db"\n[logging]\nlevel = "error"\n',
                   encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def casebot(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "casebot", "--config", str(cfg), *args], input=stdin,
                              env=env, capture_output=True, timeout=60, check=False)

    assert casebot("ingest", stdin=ATTACHED).returncode == 0
    assert casebot("privacy", "export", "not-an-address", "--out", "x.zip").returncode == 64
    out = tmp_path / "dana.zip"
    done = casebot("privacy", "export", "DANA@client.example", "--out", str(out), "--actor", "carol")
    assert done.returncode == 0 and b"1 case(s)" in done.stdout, done.stderr
    with zipfile.ZipFile(out) as zf:
        assert zf.read("cases/CASE-000001/messages/1.eml") == ATTACHED
    assert casebot("privacy", "export", DANA, "--out", str(tmp_path / "no" / "such" / "dir.zip")).returncode == 1
    dry = casebot("privacy", "erase", DANA, "--dry-run")
    assert dry.returncode == 0 and b"dry run, nothing changed" in dry.stdout and b"not erased" in dry.stdout
    erased = casebot("privacy", "erase", DANA, "--actor", "carol")
    assert erased.returncode == 0 and pseudonym(DANA).encode() in erased.stdout
    assert b"nothing left to erase" in casebot("privacy", "erase", DANA).stdout
    shown = casebot("cases", "show", "CASE-000001")
    assert shown.returncode == 0 and b"(erased)" in shown.stdout and b"dana@" not in shown.stdout.lower()
    helped = casebot("privacy", "erase", "--help")
    assert helped.returncode == 0 and b"--expunge-imap" in helped.stdout and b"exit status" in helped.stdout


def test_case_less_bounces_about_them_are_exported_and_erased(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path)
    assert ingest_one(settings, ATTACHED, now=at(T0)).status == "opened"
    bounce = make_mail("MAILER-DAEMON@mx.client.example", "Undelivered Mail Returned to Sender",
                       body=f"<{DANA}>: mailbox full\n", message_id="bounce-1@mx.client.example")
    ingest_one(settings, bounce, now=at(T0 + dt.timedelta(minutes=1)))
    store = Store(db_url)
    try:
        with store.transaction() as tx:  # as the bounce handling stores it: on no case, linked from the outbox row
            m = tx.session.scalar(select(Message).where(Message.message_id == "bounce-1@mx.client.example"))
            ack = tx.session.scalar(select(Outbox).where(Outbox.kind == "ack", Outbox.primary_recipient == DANA))
            assert m is not None and ack is not None
            m.case_id, m.disposition = None, "bounce"
            ack.status, ack.bounce_recipient, ack.bounce_message_pk = "bounced", DANA, m.id
        out = tmp_path / "d.zip"
        housekeeping.privacy_export(settings, DANA, out, "alice", now=at(T0))
        with zipfile.ZipFile(out) as zf:
            index = json.loads(zf.read("index.json"))
            (entry,) = [e for e in index["messages"] if e["case"] is None]
            assert zf.read(entry["file"]) == bounce and entry["file"] == f"messages/{entry['id']}.eml"
        done = housekeeping.privacy_erase(settings, DANA, "bob", dry_run=False, expunge=False, now=at(T0))
        assert "bounce-1@mx.client.example" in done.message_ids
        with store.transaction() as tx:
            m = tx.session.scalar(select(Message).where(Message.message_id == "bounce-1@mx.client.example"))
            ack = tx.session.scalar(select(Outbox).where(Outbox.kind == "ack"))
            assert m is not None and m.raw == b"" and m.purged_at is not None
            assert ack is not None and ack.bounce_recipient == done.pseudonym and ack.raw == b""
    finally:
        store.close()
