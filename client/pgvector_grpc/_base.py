"""What the sync and asyncio clients share: stubs, default deadline, retries, call metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DEFAULT: Any = object()
"""Marks a ``timeout`` argument left out: the client's default applies."""


class ClientBase:
    """Holds the per-call options (each client creates its stubs, typed for its kind of channel)."""

    def __init__(self, timeout: float | None, retries: int, metadata: Sequence[tuple[str, str]]) -> None:
        self._timeout = timeout
        self._retries = retries
        self._metadata = tuple(metadata)

    def _kw(self, timeout: float | None) -> dict[str, Any]:
        return {"timeout": self._timeout if timeout is DEFAULT else timeout, "metadata": self._metadata}
