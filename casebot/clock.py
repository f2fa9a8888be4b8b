"""The only reader of the system clock.

Owns: `utcnow()` and the `Clock` protocol with a frozen clock for tests. Everything else receives `now` as an
argument (arq's time-as-an-argument), so no other module may call `datetime.now()` or `time.time()` for a
business decision.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FrozenClock:
    """A clock for tests: time moves only when the test says so."""

    current: dt.datetime

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, delta: dt.timedelta) -> None:
        self.current = self.current + delta


def utcnow() -> dt.datetime:
    return SystemClock().now()
