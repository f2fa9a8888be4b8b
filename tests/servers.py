"""Real throw-away servers for casebot's integration tests and benchmarks.

This module owns the lifecycle of every external server the tests talk to:

* :class:`DovecotServer` -- a private Dovecot IMAP server on ``127.0.0.1:<random>`` with its
  own temp root (config, logs, Maildirs).  Any user name logs in with :attr:`password`, so a
  fresh, empty mailbox is just :meth:`DovecotServer.new_user`; :class:`ImapAccount` bundles
  one such user with its server (what the ``imap_account`` fixture returns).
* :class:`SmtpSink` -- an aiosmtpd server that records what it receives and can be told to
  answer ``DATA`` with a temporary or permanent failure.
* :class:`PostgresDatabase` -- a throw-away PostgreSQL database created on an existing server
  and dropped again afterwards.

It deliberately does not import pytest: ``tests/conftest.py`` wraps these classes in fixtures
and benchmark scripts can use them directly.  See ``/work/shared/dovecot-fixture.md`` for why
the Dovecot configuration looks the way it does (root drops to ``nobody``, no chroot, static
passdb/userdb, temp dir directly under ``/tmp`` when root).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Self

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from imapclient import IMAPClient  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "DovecotServer",
    "ImapAccount",
    "PostgresDatabase",
    "ReceivedMessage",
    "SmtpSink",
    "dovecot_available",
    "free_port",
]

DOVECOT_MISSING = "dovecot not installed: apt-get install dovecot-imapd"

_DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = casebot-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
{ssl_settings}
disable_plaintext_auth = no
auth_mechanisms = {auth_mechanisms}
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
{passdb}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
auth_failure_delay = 0
mailbox_idle_check_interval = 1 secs
mail_location = maildir:~/Maildir
mail_fsync = never
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    user = {user}
  }}
  unix_listener stats-writer {{
    user = {user}
  }}
}}
"""

# Any user name logs in with password {password}; each name gets its own
# home and Maildir, so a test can use a fresh, empty mailbox by picking a new name.
_STATIC_PASSDB = """\
passdb {{
  driver = static
  args = password={password}
}}"""


def _self_signed(root: Path) -> None:
    """A throw-away certificate for localhost and 127.0.0.1 (openssl is on every machine of this kind)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None


def _doveadm_binary() -> str | None:
    found = shutil.which("doveadm")
    if found:
        return found
    return "/usr/bin/doveadm" if os.access("/usr/bin/doveadm", os.X_OK) else None


def dovecot_available() -> bool:
    """True if both ``dovecot`` and ``doveadm`` are installed."""
    return _dovecot_binary() is not None and _doveadm_binary() is not None


def _ppid_and_comm(pid: int) -> tuple[int, str] | None:
    """Parent PID and command name of a process from /proc/<pid>/stat, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Format: "pid (comm) state ppid ..."; comm may itself contain spaces or parentheses.
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), comm


class DovecotServer:
    """A private Dovecot IMAP server; create with :meth:`start`, end with :meth:`stop`."""

    host: str
    port: int
    password: str
    root: Path

    def __init__(
        self,
        *,
        host: str,
        port: int,
        password: str,
        root: Path,
        uid: int,
        gid: int,
        drop_privileges: bool,
        proc: subprocess.Popen[bytes],
        stdout: IO[bytes],
    ) -> None:
        self.host = host
        self.port = port
        self.password = password
        self.root = root
        self.uid = uid
        self.gid = gid
        self.drop_privileges = drop_privileges
        self.proc = proc
        self._stdout = stdout

    # -- lifecycle ---------------------------------------------------------------------------

    tls_port: int | None = None
    cert_path: Path | None = None

    @classmethod
    def start(cls, password: str = "secret", startup_timeout: float = 10.0, tls: bool = False,
              passdb: str = "", auth_mechanisms: str = "plain login",
              extra_files: dict[str, str] | None = None) -> DovecotServer:
        """Start a fresh server on 127.0.0.1:<random port>; returns once it greets ``* OK``.

        `passdb` replaces the static passdb block (``{root}`` in it is the server's root) and `extra_files` are written
        into the root first (e.g. ``dovecot-oauth2.conf.ext``): the OAuth2 variant in ``tests/oauth_servers.py``.

        With `tls`, the server also offers STARTTLS on that port and implicit TLS on `tls_port`, with a fresh
        self-signed certificate for `localhost` / 127.0.0.1 at `cert_path` (a client must trust it explicitly).
        Raises :class:`RuntimeError` if Dovecot is not installed or does not come up.
        """
        dovecot = _dovecot_binary()
        if dovecot is None or _doveadm_binary() is None:
            raise RuntimeError(DOVECOT_MISSING)
        last_error: Exception | None = None
        for _attempt in range(3):  # free_port() is racy; Dovecot fails fast if the port is taken
            try:
                return cls._start_once(dovecot, password, startup_timeout, tls, passdb, auth_mechanisms,
                                       extra_files or {})
            except _PortInUse as exc:
                last_error = exc
        raise RuntimeError(f"dovecot could not bind a port: {last_error}")

    @classmethod
    def _start_once(cls, dovecot: str, password: str, startup_timeout: float, tls: bool, passdb: str = "",
                    auth_mechanisms: str = "plain login",
                    extra_files: dict[str, str] | None = None) -> DovecotServer:
        drop = os.geteuid() == 0  # Dovecot refuses to run login/mail processes as root
        pw = pwd.getpwnam("nobody") if drop else pwd.getpwuid(os.geteuid())
        uid, gid = pw.pw_uid, (pw.pw_gid if drop else os.getegid())
        # Always directly under /tmp: pytest's basetemp is 0700 under root, which nobody
        # cannot traverse.
        root = Path(tempfile.mkdtemp(prefix="casebot-dovecot-", dir="/tmp"))
        port = free_port()
        tls_port = free_port() if tls else 0
        try:
            for sub in ("run", "state", "home"):
                (root / sub).mkdir()
            ssl_settings = "ssl = no"
            if tls:
                _self_signed(root)
                ssl_settings = f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem"
            for name, text in (extra_files or {}).items():
                (root / name).write_text(text.replace("{root}", str(root)))
            conf = _DOVECOT_CONF.format(
                auth_mechanisms=auth_mechanisms,
                passdb=passdb.replace("{root}", str(root)) if passdb else _STATIC_PASSDB.format(password=password),
                ssl_settings=ssl_settings,
                imaps_port=tls_port,
                root=root,
                port=port,
                user=pw.pw_name,
                group=grp.getgrgid(gid).gr_name,
                uid=uid,
                gid=gid,
                password=password,
            )
            (root / "dovecot.conf").write_text(conf)
            if drop:
                os.chmod(root, 0o755)
                for d, _, files in os.walk(root):
                    os.chown(d, uid, gid)
                    for f in files:
                        os.chown(os.path.join(d, f), uid, gid)
            stdout = open(root / "stdout.log", "wb")  # noqa: SIM115 -- closed in stop()
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        proc = subprocess.Popen(
            [dovecot, "-F", "-c", str(root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=stdout,  # a file, not a PIPE nobody drains
            stderr=subprocess.STDOUT,
            user=uid if drop else None,
            group=gid if drop else None,
            extra_groups=[] if drop else None,
            start_new_session=True,
        )
        server = cls(
            host="127.0.0.1",
            port=port,
            password=password,
            root=root,
            uid=uid,
            gid=gid,
            drop_privileges=drop,
            proc=proc,
            stdout=stdout,
        )
        if tls:
            server.tls_port, server.cert_path = tls_port, root / "cert.pem"
        try:
            server._wait_ready(startup_timeout)
        except BaseException:
            output = server._startup_output()
            server.stop(timeout=2.0)
            if "Address already in use" in output:
                raise _PortInUse(output) from None
            raise
        return server

    def _startup_output(self) -> str:
        parts = []
        for name in ("stdout.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                parts.append((self.root / name).read_text(errors="replace"))
        return "\n".join(p for p in parts if p)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with status {self.proc.returncode}:\n{self._startup_output()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if s.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"dovecot did not answer on port {self.port} within {timeout} s:\n"
                    f"{self._startup_output()}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGKILL its process group on timeout) and delete its root."""
        if self.proc.poll() is None:
            self.proc.terminate()  # the master needs ~1 s to wind down its children
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- users and messages ------------------------------------------------------------------

    def new_user(self) -> str:
        """A user name nobody has used yet (unique across processes): its INBOX starts empty."""
        return f"user-{uuid.uuid4().hex[:16]}"

    def _run_as_server_user(self, args: list[str], data: bytes | None = None) -> str:
        drop = self.drop_privileges
        result = subprocess.run(
            args,
            input=data,
            capture_output=True,
            user=self.uid if drop else None,
            group=self.gid if drop else None,
            extra_groups=[] if drop else None,
            check=False,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed with status {result.returncode}: "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout.decode(errors="replace")

    def doveadm(self, *args: str, data: bytes | None = None) -> str:
        """Run ``doveadm -c <this server's config> <args>`` as the server's user; returns stdout."""
        doveadm = _doveadm_binary()
        if doveadm is None:
            raise RuntimeError(DOVECOT_MISSING)
        return self._run_as_server_user([doveadm, "-c", str(self.root / "dovecot.conf"), *args], data)

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message straight into a mailbox with ``doveadm save``, like an MTA would.

        A folder other than INBOX is created if it does not exist yet.
        """
        if folder.upper() != "INBOX":
            self._ensure_folder(user, folder)
        self.doveadm("save", "-u", user, "-m", folder, data=raw)

    def _ensure_folder(self, user: str, folder: str) -> None:
        existing = self.doveadm("mailbox", "list", "-u", user).splitlines()
        if folder not in existing:
            self.doveadm("mailbox", "create", "-u", user, folder)

    def imap(self, user: str, timeout: float = 10.0) -> IMAPClient:
        """A new IMAPClient connection, logged in as ``user`` (no folder selected)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        try:
            client.login(user, self.password)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """APPEND a message over IMAP (a folder other than INBOX is created if missing)."""
        client = self.imap(user)
        try:
            if folder.upper() != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    # -- inspection --------------------------------------------------------------------------

    def imap_processes(self) -> list[int]:
        """PIDs of this server's ``imap`` session processes (one per logged-in connection).

        SIGKILL one to simulate a dropped connection.
        """
        pids: list[int] = []
        master = self.proc.pid
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            info = _ppid_and_comm(int(entry))
            if info is not None and info[0] == master and info[1] == "imap":
                pids.append(int(entry))
        return sorted(pids)

    def log(self) -> str:
        """Contents of Dovecot's log file (empty string if there is none yet)."""
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        return f"<DovecotServer {self.host}:{self.port} root={self.root}>"


class _PortInUse(RuntimeError):
    pass


@dataclass(frozen=True)
class ImapAccount:
    """Credentials of a fresh, empty mailbox on the session's Dovecot."""

    host: str
    port: int
    user: str
    password: str
    server: DovecotServer

    def connect(self) -> IMAPClient:
        """A new logged-in IMAPClient for this account (caller logs out)."""
        return self.server.imap(self.user)

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message with ``doveadm save`` (no IMAP session involved)."""
        self.server.deliver(self.user, raw, folder)

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """APPEND a message over IMAP."""
        self.server.append(self.user, raw, folder)


# -- SMTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """One message accepted by :class:`SmtpSink`."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    received_at: float = 0.0  # time.time() when DATA was accepted (bench/latency.py measures up to here)


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1:<random port> that records accepted messages.

    ``mode`` decides the answer to ``DATA``: ``"ok"`` (250, message recorded),
    ``"tempfail"`` (``451 4.3.0 try later``) or ``"permfail"`` (``550 5.1.1 no such user``).
    :meth:`fail_next` overrides the mode for just the next *n* ``DATA`` commands.
    """

    MODES: ClassVar[dict[str, str]] = {
        "ok": "250 OK",
        "tempfail": "451 4.3.0 try later",
        "permfail": "550 5.1.1 no such user",
    }

    host: str
    port: int

    # Extra aiosmtpd SMTP() arguments (a subclass sets its own). aiosmtpd's Controller offers SMTPUTF8 unless told
    # not to; the plain sink does not, so a test of mail that needs it says so (a sink class with it enabled).
    controller_kwargs: ClassVar[dict[str, Any]] = {"enable_SMTPUTF8": False}

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._mode = "ok"
        self._fail_queue: list[str] = []
        self._data_commands = 0
        self._controller: Controller | None = None
        self.pipelining = False  # offer PIPELINING (RFC 2920) in the EHLO reply
        self.ehlo_count = 0
        self.refuse: dict[str, str] = {}  # recipient -> the reply its RCPT TO gets instead of 250
        self._pipelined: list[bool] = []

    # -- configuration -----------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in self.MODES:
            raise ValueError(f"mode must be one of {sorted(self.MODES)}, not {value!r}")
        self._mode = value

    def fail_next(self, n: int, code_line: str = "451 4.3.0 try later") -> None:
        """Answer the next ``n`` DATA commands with ``code_line``, then go back to ``mode``."""
        if not code_line[:3].isdigit():
            raise ValueError(f"code_line must start with an SMTP code: {code_line!r}")
        with self._lock:
            self._fail_queue.extend([code_line] * n)

    # -- results -----------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def data_commands(self) -> int:
        """How many DATA commands arrived, accepted or not."""
        with self._lock:
            return self._data_commands

    def clear(self) -> None:
        """Forget the recorded messages."""
        with self._lock:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Poll until at least ``count`` messages were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self._messages) >= count:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    @property
    def pipelined(self) -> list[bool]:
        """For each MAIL FROM, in order: whether the client had sent its DATA command already (pipelining)."""
        with self._lock:
            return list(self._pipelined)

    # -- aiosmtpd handler hooks --------------------------------------------------------------

    async def handle_EHLO(self, server: SMTPServer, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        with self._lock:
            self.ehlo_count += 1  # one per connection: casebot greets once per connection
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: SMTPServer, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        # What the server has read but not yet processed: a pipelining client's RCPT and DATA are in it already.
        buffered = bytes(getattr(getattr(server, "_reader", None), "_buffer", b""))
        with self._lock:
            self._pipelined.append(b"DATA\r\n" in buffered.upper())
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        refusal = self.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self._data_commands += 1
            if self._fail_queue:
                return self._fail_queue.pop(0)
            if self._mode != "ok":
                return self.MODES[self._mode]
            content = envelope.original_content or envelope.content or b""
            if isinstance(content, str):
                content = content.encode("utf-8", "surrogateescape")
            self._messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    content=bytes(content),
                    received_at=time.time(),
                )
            )
            return "250 OK"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start listening; returns self."""
        if self._controller is not None:
            raise RuntimeError("SmtpSink already started")
        last_error: Exception | None = None
        for _attempt in range(3):  # free_port() is racy
            port = free_port(self.host)
            controller = Controller(self, hostname=self.host, port=port, **self.controller_kwargs)
            try:
                controller.start()
            except (OSError, RuntimeError) as exc:
                last_error = exc
                with contextlib.suppress(Exception):
                    controller.stop()
                continue
            self._controller = controller
            self.port = port
            return self
        raise RuntimeError(f"SmtpSink could not start: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        if self._controller is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SmtpSink {self.host}:{self.port} mode={self._mode}>"


# -- PostgreSQL -------------------------------------------------------------------------------


class PostgresDatabase:
    """A throw-away database ``casebot_test_<pid>_<hex>`` on the server behind ``base_url``.

    ``base_url`` is any SQLAlchemy URL of an existing database on that server (used only for
    CREATE/DROP DATABASE); :attr:`url` points at the new database after :meth:`create`.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.name = f"casebot_test_{os.getpid()}_{secrets.token_hex(4)}"
        self._url: str | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL (password included) of the throw-away database."""
        if self._url is None:
            raise RuntimeError("PostgresDatabase.create() has not been called")
        return self._url

    def _admin_engine(self) -> sa.Engine:
        return sa.create_engine(self.base_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def create(self) -> Self:
        """CREATE DATABASE; returns self."""
        engine = self._admin_engine()
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        finally:
            engine.dispose()
        url = sa.make_url(self.base_url).set(database=self.name)
        self._url = url.render_as_string(hide_password=False)
        return self

    def drop(self) -> None:
        """Disconnect everyone from the database and drop it (no error if it is already gone)."""
        engine = self._admin_engine()
        try:
            with engine.connect() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": self.name},
                )
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            engine.dispose()
        self._url = None

    def exists(self) -> bool:
        """Whether the database is currently present on the server."""
        engine = self._admin_engine()
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": self.name}
                ).scalar()
        finally:
            engine.dispose()
        return found is not None

    def __enter__(self) -> Self:
        if self._url is None:
            self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.drop()

    def __repr__(self) -> str:
        return f"<PostgresDatabase {self.name}>"
