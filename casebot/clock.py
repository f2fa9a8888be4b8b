"""The only reader of the system clock.

Owns `utcnow()`. Everything else receives `now` as an argument (arq's time-as-an-argument): jobs take a
`now` callable and pure code takes a datetime, so tests pass fixed times instead of patching the clock. No other
module may call `datetime.now()` or `time.time()` for a business decision (tests/unit/test_architecture.py).
Must not hold any other logic: it is the seam tests replace by passing a fixed time.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Aware UTC now."""
    return dt.datetime.now(dt.UTC)
