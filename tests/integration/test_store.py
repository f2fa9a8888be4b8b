"""The store on real databases (an SQLite file and a throw-away PostgreSQL database): reference minting under
concurrency, Alembic upgrades, and the outbox's idempotency key."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cbtest import run_threads

from casebot.store import Store, Tx

THREADS = 4
PER_THREAD = 25
NOW = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


# -- reference numbers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stores", ["shared", "one-per-thread"])
def test_mint_number_is_unique_under_concurrency(store: Store, db_url: str, stores: str) -> None:
    """4 threads x 25 transactions, started together: 100 distinct numbers, exactly 1..100. With one Store per
    thread each thread has its own engine and connection pool, like separate processes would."""
    barrier = threading.Barrier(THREADS)
    minted: list[list[int]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        own = store if stores == "shared" else Store(db_url)
        try:
            barrier.wait(timeout=30)
            for _ in range(PER_THREAD):
                with own.transaction() as tx:
                    number = tx.mint_number()
                minted[i].append(number)  # only numbers whose transaction committed
        except BaseException as exc:
            errors.append(exc)
        finally:
            if own is not store:
                own.close()

    run_threads([threading.Thread(target=work, args=(i,)) for i in range(THREADS)])
    assert errors == []
    numbers = [n for per_thread in minted for n in per_thread]
    assert len(numbers) == THREADS * PER_THREAD
    assert sorted(numbers) == list(range(1, THREADS * PER_THREAD + 1))
    for per_thread in minted:
        assert per_thread == sorted(per_thread)  # each thread sees the sequence go up
    with store.transaction() as tx:
        assert tx.mint_number() == THREADS * PER_THREAD + 1


def test_rolled_back_mint_gives_the_number_back(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.mint_number() == 1
    with pytest.raises(RuntimeError), store.transaction() as tx:
        assert tx.mint_number() == 2
        raise RuntimeError("the message failed after minting")
    with store.transaction() as tx:
        assert tx.mint_number() == 2


# -- schema -----------------------------------------------------------------------------------------------------------


def test_upgrade_is_idempotent(db_url: str) -> None:
    s = Store(db_url)
    try:
        assert s.revision() is None
        head = s.head()
        assert head is not None
        assert s.upgrade() == head
        assert s.revision() == head
        assert s.upgrade() == head
        assert s.revision() == s.head()
        with s.transaction() as tx:
            assert tx.mint_number() == 1  # the second upgrade did not reseed the counter
    finally:
        s.close()
    again = Store(db_url)
    try:
        assert again.upgrade() == head
        assert again.revision() == head
        assert again.list_cases() == []
        with again.transaction() as tx:
            assert tx.mint_number() == 2
    finally:
        again.close()


_CHILD = """
import sys
import alembic.command  # imported before 'ready', so every child starts the upgrade at the same moment
from casebot.store import Store, Tx
store = Store(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
try:
    print(store.upgrade(), flush=True)
finally:
    store.close()
"""


def _upgrade_from_processes(url: str, n: int = 4) -> list[tuple[int, str]]:
    """`n` processes run `Store(url).upgrade()` at the same moment (as `casebot run` with the default
    `database.auto_upgrade = true` does on start-up); returns (exit status, stderr tail) per process."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, url], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == b"ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.flush()
        out = []
        for p in procs:
            _stdout, stderr = p.communicate(timeout=120)
            out.append((p.returncode, stderr.decode(errors="replace")[-600:]))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _check_concurrent_upgrade(url: str) -> None:
    results = _upgrade_from_processes(url)
    assert [code for code, _err in results] == [0] * len(results), results
    s = Store(url)
    try:
        assert s.revision() == s.head()
        with s.transaction() as tx:
            assert tx.mint_number() == 1
    finally:
        s.close()


def test_concurrent_upgrade_from_several_processes(db_url: str) -> None:
    _check_concurrent_upgrade(db_url)


# -- outbox -----------------------------------------------------------------------------------------------------------


def _enqueue_in(tx: Tx, key: str, raw: bytes = b"Subject: hi\r\n\r\nhello\r\n") -> bool:
    return tx.enqueue(
        key=key, case_id=None, kind="ack", envelope_from="support@example.com",
        recipients=["client@client.example"], message_id=f"casebot.{key}@example.com", raw=raw, now=NOW,
    )


def _enqueue(store: Store, key: str, raw: bytes = b"Subject: hi\r\n\r\nhello\r\n") -> bool:
    with store.transaction() as tx:
        return _enqueue_in(tx, key, raw)


def test_outbox_enqueue_with_the_same_key_twice_gives_one_row(store: Store) -> None:
    assert _enqueue(store, "ack:one") is True
    assert _enqueue(store, "ack:one", raw=b"Subject: changed\r\n\r\nother\r\n") is False
    assert store.outbox_counts() == {"pending": 1}
    with store.claim_next(NOW, LEASE) as claim:
        assert claim is not None
        assert claim.item.key == "ack:one"
        assert claim.item.raw == b"Subject: hi\r\n\r\nhello\r\n"  # the first one queued wins, unchanged
    assert _enqueue(store, "ack:two") is True
    assert store.outbox_counts() == {"pending": 2}


def test_outbox_enqueue_twice_in_one_transaction_gives_one_row(store: Store) -> None:
    with store.transaction() as tx:
        assert _enqueue_in(tx, "ack:same") is True
        assert _enqueue_in(tx, "ack:same") is False
    assert store.outbox_counts() == {"pending": 1}


def test_outbox_enqueue_after_it_was_sent_changes_nothing(store: Store) -> None:
    _enqueue(store, "ack:sent")
    with store.claim_next(NOW, LEASE) as claim:
        assert claim is not None
        claim.sent(NOW)
    assert _enqueue(store, "ack:sent") is False
    assert store.outbox_counts() == {"sent": 1}
    with store.claim_next(NOW + dt.timedelta(hours=1), LEASE) as claim:
        assert claim is None
