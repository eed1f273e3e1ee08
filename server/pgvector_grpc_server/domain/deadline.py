"""The caller's deadline, carried from the transport to the storage of the same request."""

from __future__ import annotations

import time
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


def set_remaining(seconds: float | None) -> None:
    """Record that the current request must finish within ``seconds`` (None = no deadline)."""
    _deadline.set(None if seconds is None else time.monotonic() + seconds)


def remaining_ms() -> int | None:
    """Milliseconds left before the current request's deadline (at least 1), or None."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return max(1, int((deadline - time.monotonic()) * 1000))
