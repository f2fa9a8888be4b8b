"""SMTP sender adapter: the only importer of smtplib.

Owns the connection (implicit TLS, STARTTLS with a verifying context, or plain on loopback; timeouts; login),
reuse of one connection for a batch, and the classification of failures: 4xx replies and socket errors are
transient (retried with backoff by the deliver job), 5xx replies are permanent. Must not touch the database.
"""

from __future__ import annotations

import smtplib
import ssl

from casebot.config import OutgoingSettings
from casebot.transport import PermanentSendError, TransientSendError


class SmtpSender:
    def __init__(self, settings: OutgoingSettings, password: str | None) -> None:
        self.s = settings
        self._password = password
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
            if s.username:
                conn.login(s.username, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TransientSendError(
                f"SMTP login as {s.username!r} on {s.host}:{s.port} failed: {exc.smtp_code}", connection=True
            ) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(
                f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}", connection=True
            ) from exc
        self.conn = conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, key: str) -> str:
        self.open()
        assert self.conn is not None
        options: list[str] = []
        if not all(a.isascii() for a in [envelope_from, *recipients]):
            if not self.conn.has_extn("smtputf8"):
                raise PermanentSendError(
                    f"an internationalised address needs SMTPUTF8, which {self.s.host} does not offer"
                )
            options = ["SMTPUTF8"]
        try:
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
