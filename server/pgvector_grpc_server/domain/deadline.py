"""The caller's deadline, carried from the transport to the storage of the same request."""

from __future__ import annotations

import time
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


def set_remaining(seconds: float | None) -> None:
    """Record that the current request must finish within ``seconds`` (None = no deadline)."""
    _deadline.set(None if seconds is None else time.monotonic() + seconds)


def remaining_seconds() -> float | None:
    """Seconds left before the current request's deadline (zero or less once it passed), or None."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def remaining_ms() -> int | None:
    """Milliseconds left before the current request's deadline (at least 1), or None."""
    seconds = remaining_seconds()
    return None if seconds is None else max(1, int(seconds * 1000))
