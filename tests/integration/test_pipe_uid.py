"""The MTA pipe under another uid than the daemon's (issue 8 item 6), as the shipped layout has it.

`casebot.tmpfiles.conf` makes the state directory 2770 owned by the daemon's user and the `casebot` group; the
MTA runs `casebot ingest` as a member of that group, with its own umask (Postfix's pipe: 077). Both must be able
to read and write the SQLite database and its -wal/-shm files, whoever created them, also while the other holds
the database open. Throw-away numeric uids and gids (no /etc/passwd entries) through setpriv(1), the umask
through subprocess: nothing on the host changes. Needs root to switch uids.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cbtest import make_mail

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="switching to other uids needs root"),
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv(1) (util-linux) not installed")]

SHARED_GID = 61_900  # the `casebot` group
DAEMON_UID = 61_901  # the daemon's user (User=casebot)
PIPE_UID = 61_902  # the MTA's pipe user, a member of the casebot group only
CASEBOT = [sys.executable, "-m", "casebot"]
TMPFILES = Path(__file__).resolve().parents[2] / "systemd" / "casebot.tmpfiles.conf"


def shipped_mode() -> int:
    """The state directory's mode as casebot.tmpfiles.conf ships it (`d /var/lib/casebot 2770 casebot casebot -`)."""
    for line in TMPFILES.read_text().splitlines():
        fields = line.split()
        if fields[:2] == ["d", "/var/lib/casebot"]:
            return int(fields[2], 8)
    raise AssertionError("casebot.tmpfiles.conf creates no /var/lib/casebot")


@pytest.fixture
def state() -> Iterator[Path]:
    """/var/lib/casebot as casebot.tmpfiles.conf creates it, somewhere every uid can reach."""
    top = Path(tempfile.mkdtemp(prefix="casebot-uid-"))
    top.chmod(0o755)
    path = top / "state"
    path.mkdir()
    os.chown(path, DAEMON_UID, SHARED_GID)
    path.chmod(shipped_mode())
    config = top / "casebot.toml"
    config.write_text(f'[mailbox]\nkind = "pipe"\n[outgoing]\nkind = "maildir"\npath = "{path}/sent"\n'
                      f'[database]\nurl = "sqlite:///{path}/casebot.db"\n', encoding="utf-8")
    config.chmod(0o644)
    try:
        yield path
    finally:
        shutil.rmtree(top)


def as_user(uid: int, gid: int, command: list[str]) -> list[str]:
    """`command` under `uid`/`gid` with the casebot group as its one supplementary group (setpriv(1))."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={SHARED_GID}", *command]


def run_as(uid: int, umask: int, state: Path, *args: str, raw: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(sys.path), "HOME": "/"}
    gid = SHARED_GID if uid == DAEMON_UID else PIPE_UID
    command = as_user(uid, gid, [*CASEBOT, "--config", str(state.parent / "casebot.toml"), *args])
    return subprocess.run(command, input=raw, env=env, cwd="/", capture_output=True, timeout=120, umask=umask)


def pipe(state: Path, subject: str) -> subprocess.CompletedProcess[bytes]:
    """`casebot ingest` the way Postfix's pipe runs it: its own uid, umask 077, a bare environment, cwd /."""
    return run_as(PIPE_UID, 0o077, state, "ingest", raw=make_mail("alice@client.example", subject))


def _probe(state: Path) -> None:
    done = run_as(PIPE_UID, 0o077, state, "--help")
    if done.returncode != 0:
        pytest.skip(f"the interpreter cannot run as uid {PIPE_UID} here: {done.stderr[-200:]!r}")


def assert_shared(state: Path) -> None:
    """Every SQLite file is in the casebot group and group read-write, none world-readable."""
    files = [p for p in state.iterdir() if p.name.startswith("casebot.db")]
    assert files
    for path in files:
        st = path.stat()
        assert st.st_gid == SHARED_GID, (path.name, st.st_gid)
        assert stat.S_IMODE(st.st_mode) & 0o060 == 0o060, (path.name, oct(st.st_mode))
        assert stat.S_IMODE(st.st_mode) & 0o007 == 0, (path.name, oct(st.st_mode))


def test_pipe_creates_the_database_and_the_daemon_uses_it(state: Path) -> None:
    _probe(state)
    first = pipe(state, "Printer on fire")
    assert (first.returncode, first.stdout.strip()) == (0, b"opened CASE-000001"), first.stderr
    assert_shared(state)  # created under the MTA's umask 077, still the group's
    # The daemon's uid (UMask=0007 in the unit) reads and writes what the pipe created, and the pipe again after it.
    listed = run_as(DAEMON_UID, 0o007, state, "cases", "list")
    assert listed.returncode == 0 and b"CASE-000001" in listed.stdout, listed.stderr
    updated = run_as(DAEMON_UID, 0o007, state, "cases", "status", "CASE-000001", "waiting")
    assert updated.returncode == 0, updated.stderr
    second = pipe(state, "Still on fire")
    assert (second.returncode, second.stdout.strip()) == (0, b"opened CASE-000002"), second.stderr
    assert_shared(state)


def test_pipe_writes_while_the_daemon_holds_the_database_open(state: Path) -> None:
    _probe(state)
    upgraded = run_as(DAEMON_UID, 0o007, state, "db", "upgrade")  # the daemon creates the database first
    assert upgraded.returncode == 0, upgraded.stderr
    # A daemon-uid process keeps a connection open (its -wal and -shm stay), the pipe writes meanwhile, and the
    # daemon's connection sees the new case.
    holder = subprocess.Popen(as_user(DAEMON_UID, SHARED_GID, [
        sys.executable, "-c", "import sqlite3, sys\n"
         f"db = sqlite3.connect({str(state / 'casebot.db')!r})\n"
         "db.execute('select count(*) from cases').fetchone()\n"
         "print('open', flush=True)\n"
         "sys.stdin.readline()\n"
         "print(db.execute('select count(*) from cases').fetchone()[0], flush=True)\n"
         "db.execute('update cases set subject = subject')\n"
         "db.commit()\n"]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=0o007,
        env={"PATH": "/usr/bin:/bin"}, cwd="/")
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == b"open"
        assert (state / "casebot.db-wal").exists() and (state / "casebot.db-shm").exists()
        done = pipe(state, "Printer on fire")
        assert (done.returncode, done.stdout.strip()) == (0, b"opened CASE-000001"), done.stderr
        assert_shared(state)
        out, err = holder.communicate(b"go\n", timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert holder.returncode == 0, err
    assert out.strip() == b"1"
