"""Admin commands for what casebot keeps: quarantine list/show/export/replay, messages raw/list, attachments save,
parse defects in `cases show`, and a `casebot check` that changes nothing. Run through `casebot ...` itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cbtest import make_mail

CASEBOT = [sys.executable, "-m", "casebot"]
POISON_CHAIN = ('["own_mail", "loop_guard", "sender_role", "threading", "escalation", "priority", '
                '"acknowledgement", "plugin_steps:ExplodeOnPoison"]')


def config(tmp: Path, faulty: bool = False) -> Path:
    path = tmp / "casebot.toml"
    extra = f"[pipeline]\nsteps = {POISON_CHAIN}\n" if faulty else ""
    path.write_text(f'[mailbox]\nkind = "pipe"\nmax_attempts = 1\n[outgoing]\nkind = "maildir"\npath = "sent"\n'
                    f'[database]\nurl = "sqlite:///{tmp}/casebot.db"\n[logging]\nlevel = "error"\n{extra}',
                    encoding="utf-8")
    return path


def casebot(cfg: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([*CASEBOT, "--config", str(cfg), *args], input=stdin, env=env, capture_output=True,
                          timeout=60)


ATTACHED = (b"From: Dana <dana@client.example>\r\nTo: support@example.com\r\nSubject: Logs attached\r\n"
            b"Message-ID: <dana-1@client.example>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee logs.\r\n'
            b"--b\r\nContent-Type: text/plain\r\n"
            b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n\r\nroot:x:0:0\r\n'
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="log.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            b"AAECAwQ=\r\n--b--\r\n")


def test_quarantine_list_show_export_replay(tmp_path: Path) -> None:
    faulty = config(tmp_path, faulty=True)
    poison = make_mail("erin@client.example", "poison pill", body="This one breaks casebot.\n")
    assert casebot(faulty, "ingest", stdin=poison).stdout.startswith(b"quarantined")
    listed = casebot(faulty, "quarantine", "list")
    assert listed.returncode == 0 and b"RuntimeError: simulated fault" in listed.stdout
    item = listed.stdout.split()[0].decode()
    shown = casebot(faulty, "quarantine", "show", item).stdout
    assert b"erin@client.example" in shown and b"poison pill" in shown
    exported = casebot(faulty, "quarantine", "export", item)
    assert exported.stdout == poison  # byte-exact
    assert casebot(faulty, "quarantine", "replay", item).returncode == 1  # still broken: stays
    fixed = config(tmp_path)
    replayed = casebot(fixed, "quarantine", "replay", item)
    assert replayed.returncode == 0 and b"opened CASE-000001" in replayed.stdout, replayed.stderr
    assert b"nothing quarantined" in casebot(fixed, "quarantine", "list").stdout
    assert casebot(fixed, "quarantine", "show", "999").returncode == 1


def test_messages_raw_list_attachments_and_defects(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert casebot(cfg, "ingest", stdin=ATTACHED).returncode == 0
    bounce = make_mail("MAILER-DAEMON@mx.other.example", "Undelivered Mail Returned to Sender")
    assert casebot(cfg, "ingest", stdin=bounce).returncode == 0
    detail = json.loads(casebot(cfg, "cases", "show", "case-000001", "--json").stdout)
    (message,) = detail["messages"]
    assert "defects" in message
    raw = casebot(cfg, "messages", "raw", str(message["id"]))
    assert raw.stdout == ATTACHED
    out = tmp_path / "m.eml"
    assert casebot(cfg, "messages", "raw", str(message["id"]), "--out", str(out)).returncode == 0
    assert out.read_bytes() == ATTACHED
    automated = casebot(cfg, "messages", "list", "--automated").stdout
    assert b"mailer-daemon@mx.other.example" in automated and b"dana@" not in automated
    folder = tmp_path / "files"
    saved = casebot(cfg, "attachments", "save", "CASE-000001", "--dir", str(folder))
    assert saved.returncode == 0, saved.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["log.bin", "passwd"]  # no path parts, ever
    assert (folder / "log.bin").read_bytes() == b"\x00\x01\x02\x03\x04"
    assert casebot(cfg, "messages", "raw", "999").returncode == 1


def test_check_changes_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    done = casebot(cfg, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"does not exist yet" in done.stdout
    assert not (tmp_path / "casebot.db").exists()
