"""pytest fixtures for casebot: a private Dovecot, an SMTP sink and test databases.

The servers themselves live in ``tests/servers.py`` (importable without pytest, e.g. by
benchmarks); this file only adapts them to pytest scopes and decides skip vs. fail:
outside CI a missing Dovecot or PostgreSQL skips the affected tests with a hint, but when
the ``CI`` environment variable is set it fails them, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from cbtest import Harness
from servers import (
    DOVECOT_MISSING,
    DovecotServer,
    ImapAccount,
    PostgresDatabase,
    SmtpSink,
    dovecot_available,
)

POSTGRES_URL_ENV = "CASEBOT_TEST_POSTGRES_URL"
INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: needs real servers (Dovecot, SMTP sink, PostgreSQL); "
        "every test under tests/integration/ gets it automatically",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _in_ci() -> bool:
    return bool(os.environ.get("CI"))


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, fail in CI (so a missing service can't turn CI green)."""
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error instead of a skip)", pytrace=False)
    pytest.skip(reason)


# -- IMAP -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One private Dovecot per test session; use ``new_user()`` for a fresh mailbox."""
    if not dovecot_available():
        _unavailable(DOVECOT_MISSING)
    server = DovecotServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_account(dovecot: DovecotServer) -> ImapAccount:
    """A fresh user (empty INBOX) per test on the session's Dovecot."""
    return ImapAccount(
        host=dovecot.host,
        port=dovecot.port,
        user=dovecot.new_user(),
        password=dovecot.password,
        server=dovecot,
    )


# -- SMTP -------------------------------------------------------------------------------------


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A fresh SMTP sink per test (mode "ok"); stopped afterwards."""
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


# -- databases --------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of an SQLite file in this test's tmp_path (created on first connect)."""
    return f"sqlite:///{tmp_path / 'casebot.db'}"


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """$CASEBOT_TEST_POSTGRES_URL: any database on the PostgreSQL server used for tests.

    Skips (fails under CI) when unset, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test.
    """
    base_url = os.environ.get(POSTGRES_URL_ENV)
    if not base_url:
        _unavailable(
            f"{POSTGRES_URL_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    return base_url


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a throw-away PostgreSQL database, created and dropped per test."""
    database = PostgresDatabase(postgres_base_url).create()
    try:
        yield database.url
    finally:
        database.drop()


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once against SQLite and once against a throw-away PostgreSQL database."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def h(imap_account: ImapAccount, smtp_sink: SmtpSink, db_url: str) -> Iterator[Harness]:
    """The end-to-end harness with default settings, on both engines (a module that needs other settings defines
    its own `h`, which pytest then uses there)."""
    harness = Harness(imap_account, smtp_sink, db_url)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def harness(h: Harness) -> Harness:
    return h
