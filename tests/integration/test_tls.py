"""TLS to the IMAP server is verified by default: a certificate nobody vouched for is refused with a plain
message, and trusted through `mailbox.ca_file` it works, with implicit TLS and with STARTTLS.

Dovecot here has a fresh self-signed certificate for localhost / 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cbtest import Harness, make_mail
from servers import DOVECOT_MISSING, DovecotServer, ImapAccount, SmtpSink, dovecot_available

from casebot.passes import poll


@pytest.fixture(scope="module")
def tls_dovecot() -> Iterator[DovecotServer]:
    if not dovecot_available():
        pytest.skip(DOVECOT_MISSING)
    server = DovecotServer.start(tls=True)
    try:
        yield server
    finally:
        server.stop()


def _harness(server: DovecotServer, sink: SmtpSink, url: str, **mailbox: Any) -> Harness:
    account = ImapAccount(host="localhost", port=server.port, user=server.new_user(), password=server.password,
                          server=server)
    return Harness(account, sink, url, overrides={"mailbox": {"host": "localhost", **mailbox}})


def test_untrusted_certificate_is_refused(tls_dovecot: DovecotServer, smtp_sink: SmtpSink, sqlite_url: str) -> None:
    assert tls_dovecot.tls_port is not None
    h = _harness(tls_dovecot, smtp_sink, sqlite_url, security="tls", port=tls_dovecot.tls_port)
    try:
        result = h.poll()
        assert result.ingest.seen == 0
        assert any("certificate" in e and "not trusted" in e for e in result.errors), result.errors
    finally:
        h.close()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_trusted_certificate_works(
    tls_dovecot: DovecotServer, smtp_sink: SmtpSink, sqlite_url: str, security: str
) -> None:
    assert tls_dovecot.tls_port is not None and tls_dovecot.cert_path is not None
    port = tls_dovecot.tls_port if security == "tls" else tls_dovecot.port
    h = _harness(tls_dovecot, smtp_sink, sqlite_url, security=security, port=port,
                 ca_file=str(tls_dovecot.cert_path))
    try:
        h.account.append(make_mail("alice@client.example", "Over TLS"))
        result = poll(h.settings())
        assert result.errors == []
        assert result.ingest.counts == {"opened": 1}
    finally:
        h.close()
