"""A time limit on every request of chromadb's HTTP client.

chromadb's HttpClient waits forever (its httpx session is made with ``timeout=None``, and
chromadb accepts no API implementation but its own): a Chroma server that accepts the connection
and never answers would hold a migration, and the thread reading it, for good. So chromadb's
client class gets one addition, applied when this module is first imported: a client created
inside ``request_timeout(seconds)`` sets its session's timeout before its first request (the
constructor already asks the server who the caller is). Clients created elsewhere are unchanged.
Imported only when a URL is read: it loads chromadb."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import httpx
from chromadb.api.fastapi import FastAPI

_timeout_of_new_clients: ContextVar[float | None] = ContextVar("timeout_of_new_clients", default=None)
_chromadb_init = FastAPI.__init__


def _init_with_timeout(self: FastAPI, system: Any) -> None:
    _chromadb_init(self, system)
    seconds = _timeout_of_new_clients.get()
    if seconds is not None:
        self._session.timeout = httpx.Timeout(seconds)


if not getattr(FastAPI.__init__, "sets_request_timeout", False):
    _init_with_timeout.sets_request_timeout = True  # type: ignore[attr-defined]
    FastAPI.__init__ = _init_with_timeout  # type: ignore[method-assign]


@contextlib.contextmanager
def request_timeout(seconds: float) -> Iterator[None]:
    """chromadb HTTP clients created inside give up on a request after ``seconds`` without progress
    (connecting, or waiting for the next bytes of an answer)."""
    token = _timeout_of_new_clients.set(seconds)
    try:
        yield
    finally:
        _timeout_of_new_clients.reset(token)
