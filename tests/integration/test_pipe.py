"""`casebot ingest` run the way an MTA's pipe runs it (Postfix `pipe`/`local`: stdin, a bare environment, cwd /),
checking each exit status: 0 stored, 75 (EX_TEMPFAIL, the MTA keeps the mail) for anything that is casebot's own
fault (an empty message is quarantined, exit 0). And the CLI as people type it (`--config` after the command,
references in any case, a closed pipe)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cbtest import make_mail

CASEBOT = [sys.executable, "-m", "casebot"]


def write(tmp: Path, body: str) -> Path:
    path = tmp / "casebot.toml"
    path.write_text(body, encoding="utf-8")
    return path


def pipe(config: Path, raw: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(sys.path)}  # what Postfix's pipe gives
    return subprocess.run([*CASEBOT, "--config", str(config), "ingest", *args], input=raw, env=env, cwd="/",
                          capture_output=True, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pipe_config(db: str) -> str:
    return f'[mailbox]\nkind = "pipe"\n[outgoing]\nkind = "maildir"\npath = "sent"\n[database]\nurl = "{db}"\n'


def test_exit_statuses(tmp_path: Path) -> None:
    good = write(tmp_path, pipe_config(f"sqlite:///{tmp_path}/casebot.db"))
    raw = make_mail("alice@client.example", "Printer on fire")
    done = pipe(good, raw)
    assert (done.returncode, done.stdout.strip()) == (0, b"opened CASE-000001"), done.stderr
    again = pipe(good, raw)
    assert (again.returncode, again.stdout.strip()) == (0, b"duplicate")

    for name in ("typo", "down"):
        (tmp_path / name).mkdir()
    cases = {
        "a config typo": write(tmp_path / "typo", pipe_config(f"sqlite:///{tmp_path}/casebot.db")
                               + "[logging]\nlevl = 1\n"),
        "a missing config file": tmp_path / "nowhere.toml",
        "an unreachable database": write(tmp_path / "down", pipe_config(
            f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=3")),
    }
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder", encoding="utf-8")
    (tmp_path / "b").mkdir()
    cases["a database that cannot be written"] = write(tmp_path / "b", pipe_config(f"sqlite:///{blocked}/x.db"))
    for what, config in cases.items():
        result = pipe(config, make_mail("bob@client.example", f"Lost? {what}"))
        assert result.returncode == 75, (what, result.stderr)
        assert b"Traceback" not in result.stderr and result.stderr.count(b"\n") == 1, (what, result.stderr)
        assert b"the MTA keeps the message" in result.stderr or b"try again later" in result.stderr, result.stderr
    empty = pipe(good, b"  \n")  # an empty message is recorded (quarantined), not refused: nothing lost
    assert empty.returncode == 0 and empty.stdout.strip() == b"quarantined", empty


def test_cli_as_people_type_it(tmp_path: Path) -> None:
    config = write(tmp_path, pipe_config(f"sqlite:///{tmp_path}/casebot.db"))
    assert pipe(config, make_mail("alice@client.example", "Printer on fire")).returncode == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    after = subprocess.run([*CASEBOT, "cases", "show", "case-000001", "--config", str(config)], env=env,
                           capture_output=True, timeout=60)
    assert after.returncode == 0 and b"CASE-000001  Printer on fire" in after.stdout, after.stderr
    for _ in range(3):
        assert pipe(config, make_mail("carol@client.example", "More")).returncode == 0
    closed = subprocess.run(f"{' '.join(CASEBOT)} --config {config} cases list | head -n 1", shell=True, env=env,
                            capture_output=True, timeout=60)
    assert closed.returncode == 0 and b"Traceback" not in closed.stderr, closed.stderr
    helped = subprocess.run([*CASEBOT, "ingest", "--help"], env=env, capture_output=True, timeout=60)
    assert b"75 (EX_TEMPFAIL)" in b" ".join(helped.stdout.split()) and b"--config" in helped.stdout


@pytest.mark.parametrize("command", [["run"], ["poll"], ["check"], ["cases", "list"], ["sla", "due"], ["remind"]])
def test_every_command_says_its_exit_codes(command: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([*CASEBOT, *command, "--help"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0 and b"exit status" in done.stdout and b"--config" in done.stdout
