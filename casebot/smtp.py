"""SMTP sender adapter: the only importer of smtplib.

Owns the connection (implicit TLS, STARTTLS with a verifying context, or plain on loopback; timeouts; login with a
password, or AUTH XOAUTH2 with a `casebot.oauth` token, refreshed and retried once after a rejection),
reuse of one connection for a batch, RFC 2920 pipelining where the server offers it (`outgoing.pipelining`), and
the classification of failures: 4xx replies and socket errors are
transient (retried with backoff by the deliver job), 5xx replies are permanent. Envelope addresses are written
with A-label domains; a non-ASCII local part goes out with SMTPUTF8, or fails permanently when the server does
not offer it. Must not touch the database.
"""

from __future__ import annotations

import re
import smtplib
import ssl

from casebot.config import OutgoingSettings
from casebot.mail import envelope_address, needs_smtputf8
from casebot.oauth import OAuthError, OAuthToken, xoauth2
from casebot.transport import PermanentSendError, TransientSendError


class SmtpSender:
    def __init__(self, settings: OutgoingSettings, password: str | None, oauth: OAuthToken | None = None) -> None:
        self.s = settings
        self._password = password
        self._oauth = oauth  # outgoing.auth = "oauth2": AUTH XOAUTH2 with this token
        self.conn: smtplib.SMTP | None = None

    def open(self) -> None:
        if self.conn is not None:
            return
        s = self.s
        ctx = ssl.create_default_context(cafile=s.ca_file or None)
        try:
            conn: smtplib.SMTP
            if s.security == "tls":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ctx)
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=ctx)
            conn.ehlo_or_helo_if_needed()  # the extensions (PIPELINING, SMTPUTF8, SIZE) are known from here on
            if self._oauth is not None:
                self._xoauth2(conn, self._oauth)
            elif s.username:
                conn.login(s.username, self._password or "")
        except OAuthError as exc:
            raise TransientSendError(f"SMTP OAuth2 token for {s.username!r}: {exc}", connection=True) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise TransientSendError(
                f"SMTP login as {s.username!r} on {s.host}:{s.port} failed: {exc.smtp_code}", connection=True
            ) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(
                f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}", connection=True
            ) from exc
        self.conn = conn

    def _xoauth2(self, conn: smtplib.SMTP, token: OAuthToken) -> None:
        """AUTH XOAUTH2; after a rejection, once more with a freshly refreshed token, then report it."""
        conn.ehlo_or_helo_if_needed()

        def auth(access: str) -> None:
            # On failure the server sends a 334 challenge with its reason; the client answers with an empty line.
            conn.auth("XOAUTH2", lambda challenge=None: xoauth2(self.s.username, access) if challenge is None else "",
                      initial_response_ok=True)

        try:
            auth(token.access_token())
        except smtplib.SMTPAuthenticationError:
            auth_again = token.access_token(force_refresh=True)
            try:
                auth(auth_again)
            except smtplib.SMTPAuthenticationError as exc:
                detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
                token.rejected(f"SMTP {self.s.host}", f"{exc.smtp_code} {detail}".strip())
                raise
        token.accepted(f"SMTP {self.s.host}")

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, key: str) -> str:
        try:
            # IDN domains as A-labels (`user@xn--bcher-kva.example`), as the To header has them.
            envelope_from = envelope_address(envelope_from) if envelope_from else ""
            recipients = [envelope_address(r) for r in recipients]
        except ValueError as exc:
            raise PermanentSendError(str(exc)) from exc
        self.open()
        assert self.conn is not None
        options: list[str] = []
        if any(needs_smtputf8(a) for a in [envelope_from, *recipients]):
            if not self.conn.has_extn("smtputf8"):
                raise PermanentSendError(
                    f"not sent: the address has a non-ASCII local part, which needs SMTPUTF8 (RFC 6531), and "
                    f"{self.s.host} does not offer it"
                )
            options = ["SMTPUTF8"]
        try:
            if self.s.pipelining and self.conn.has_extn("pipelining"):
                refused = _pipelined(self.conn, envelope_from, recipients, raw, options)
            else:
                refused = self.conn.sendmail(envelope_from, recipients, raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {addr: code for addr, (code, _msg) in exc.recipients.items()}
            if any(400 <= c < 500 for c in codes.values()):
                raise TransientSendError(f"recipients deferred: {codes}") from exc
            raise PermanentSendError(f"recipients refused: {codes}") from exc
        except smtplib.SMTPResponseException as exc:
            detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            message = f"{exc.smtp_code} {detail}".strip()
            if 400 <= exc.smtp_code < 500:
                self._reset()
                raise TransientSendError(message) from exc
            if 500 <= exc.smtp_code < 600:
                self._reset()
                raise PermanentSendError(message) from exc
            self.close()
            raise TransientSendError(message, connection=True) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TransientSendError(f"{type(exc).__name__}: {exc}", connection=True) from exc
        if refused:
            return f"some recipients refused: { {a: c for a, (c, _m) in refused.items()} }"
        return ""

    def _reset(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()


def _pipelined(conn: smtplib.SMTP, envelope_from: str, recipients: list[str], raw: bytes,
               options: list[str]) -> dict[str, tuple[int, bytes]]:
    """`SMTP.sendmail` with RFC 2920 pipelining: MAIL, every RCPT and DATA go out in one write and their replies
    are read together, then the message and its end; two round trips a mail instead of three plus one per
    recipient. Raises what `sendmail` raises, in the same cases, so the caller classifies failures alike."""
    conn.ehlo_or_helo_if_needed()
    opts = [*options, f"SIZE={len(raw)}"] if conn.has_extn("size") else list(options)
    if "SMTPUTF8" in options:
        conn.command_encoding = "utf-8"
    commands = [f"MAIL FROM:{smtplib.quoteaddr(envelope_from)}{' ' + ' '.join(opts) if opts else ''}",
                *(f"RCPT TO:{smtplib.quoteaddr(r)}" for r in recipients), "DATA"]
    conn.send("".join(f"{c}\r\n" for c in commands))
    mail = conn.getreply()
    refused: dict[str, tuple[int, bytes]] = {}
    for r in recipients:
        code, reply = conn.getreply()
        if code not in (250, 251):
            refused[r] = (code, reply)
    data = conn.getreply()
    accepted = mail[0] == 250 and len(refused) < len(recipients)
    if data[0] == 354 and not accepted:
        conn.send(b".\r\n")  # the server took DATA though nothing can be delivered: end the empty message
        conn.getreply()
    conn.command_encoding = "ascii"
    if mail[0] != 250:
        _end(conn, mail[0])
        raise smtplib.SMTPSenderRefused(mail[0], mail[1], envelope_from)
    if not accepted:
        _end(conn, 0)
        raise smtplib.SMTPRecipientsRefused(refused)
    if data[0] != 354:
        _end(conn, data[0])
        raise smtplib.SMTPDataError(*data)
    body = re.sub(rb"(?m)^\.", b"..", raw)  # dot-stuffing, as SMTP.data does
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    conn.send(body + b".\r\n")
    code, reply = conn.getreply()
    if code != 250:
        _end(conn, code)
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _end(conn: smtplib.SMTP, code: int) -> None:
    """After a failed transaction, as `sendmail` does: 421 closes the connection, anything else resets it."""
    if code == 421:
        conn.close()
        return
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        conn.close()  # the next send opens a new connection
