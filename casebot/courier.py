"""The courier: delivery on a thread of its own, so mail leaves while the next batch is being ingested.

Owns when delivery runs: at once when kicked (a batch committed, an alert or notice queued), else every
`interval` seconds; a kick that comes while a round is running starts another round right after it (none is lost).
The SMTP connection stays open between rounds that follow each other closely (kicks from a backlog being drained)
and is closed once no kick came for `linger` seconds. `finish` ends the round in hand after its current mail and
stops the thread. Must not deliver anything itself (`jobs.deliver` does, under the outbox's claims, so the
exactly-once guarantees are the outbox's whatever the thread) or decide what is due.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from casebot.jobs.deliver import DeliverStats
from casebot.store import StoreError

log = structlog.get_logger("casebot.deliver")

Round = Callable[[threading.Event], DeliverStats]  # one delivery round; stops after the mail in hand when set


class Courier:
    def __init__(self, deliver: Round, close: Callable[[], None], interval: float | None,
                 linger: float = 5.0) -> None:
        self._deliver, self._close = deliver, close
        self.interval, self.linger = interval, linger  # interval None: only when kicked
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.total = DeliverStats()  # every round's counts, added up
        self._thread = threading.Thread(target=self._run, name="casebot-courier", daemon=True)

    def start(self) -> Courier:
        self._thread.start()
        return self

    def kick(self) -> None:
        """Deliver now (or right after the round in hand)."""
        self._wake.set()

    def finish(self, timeout: float | None = None) -> DeliverStats:
        """Stop after the mail in hand, close the connection and wait for the thread; returns the totals."""
        self._halt.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return self.total

    def _run(self) -> None:
        connected = False
        while not self._halt.is_set():
            # Right after a round, wait only `linger` with the connection open; idle, close it and wait on.
            kicked = self._wake.wait(self.linger if connected else self.interval)
            if self._halt.is_set():
                break
            if not kicked and connected:
                self._close()
                connected = False
                continue
            self._wake.clear()
            connected = self._round()
        self._close()

    def _round(self) -> bool:
        """One round; True when the connection may still be open (False after a connection error)."""
        try:
            stats = self._deliver(self._halt)
        except StoreError as exc:
            log.error("deliver.store_error", error=str(exc))
            return False
        except Exception:
            # A round must never end the thread: the outbox keeps the mail, the next round tries again.
            log.exception("deliver.crashed")
            return False
        with self._lock:
            self.total.merge(stats)
        if stats.connection_error:
            log.warning("outgoing.unavailable", error=stats.connection_error)
            return False
        return True
