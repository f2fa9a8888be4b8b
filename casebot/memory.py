"""The process's memory: what a long drain keeps of it.

Owns two measures. `settle()`, once the process is built (modules, configuration, templates: everything that
lives as long as it does), moves those objects out of the garbage collector's view (`gc.freeze`): a full
collection then looks only at what came after, a few thousand objects instead of some 400,000, cheap enough to
run after every batch. `tidy()`, after each batch, collects the batch's reference cycles (SQLAlchemy's object
states, parse trees) at once instead of when the collector's thresholds say, which lets them pile up for dozens
of batches and leaves the heap fragmented and larger (measured: 7 MB at 10,000 messages), and hands freed
memory back to the system (`malloc_trim`, glibc). `give_back()` is that last step alone, after a big message.
Must not hold references to application objects or decide anything.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

_settled = False
_trim: Any = None


def settle() -> None:
    """Freeze what the process has built so far (call once, after start-up); turns `tidy` on."""
    global _settled
    gc.collect()
    gc.freeze()
    _settled = True


def tidy() -> None:
    """After a batch: collect its cycles (only when `settle` ran: otherwise a full collection would walk every
    object of the process, test runners included) and give freed memory back."""
    if _settled:
        gc.collect()
        give_back()


def give_back() -> None:
    """Hand freed heap memory back to the system: glibc keeps freed big blocks in its heap, so a 30 MB mail would
    otherwise keep the process 25 MB larger. No-op where the C library has no malloc_trim."""
    global _trim
    if _trim is None:
        try:
            _trim = getattr(ctypes.CDLL(None), "malloc_trim", False)
        except OSError:
            _trim = False
    if _trim:
        _trim(0)
