"""Whether the current request's reads may be answered by a read replica: set by the transport
from a read request, looked up by storage's routing. Nothing else sets it, so every statement of a
write (its catalogue lookups included) goes to the primary."""

from __future__ import annotations

from contextvars import ContextVar

_replica_allowed: ContextVar[bool] = ContextVar("replica_reads_allowed", default=False)


def allow_replica_reads(allowed: bool) -> None:
    """Let (or stop) a replica answer the reads of the current request (its task and what it awaits)."""
    _replica_allowed.set(allowed)


def replica_reads_allowed() -> bool:
    """Whether a replica may answer the current request's reads (False unless a read request said so)."""
    return _replica_allowed.get()
