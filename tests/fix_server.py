"""The real server, in this process on an ephemeral port, on its own event-loop thread so that
both the sync Client and the AsyncClient (on the test's loop) can call it."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from pgvector_grpc import Client
from pgvector_grpc_server.app import Database, RunningServer, start
from pgvector_grpc_server.settings import Settings


class ServerThread:
    """A started server; ``address`` is where to reach it. ``conninfo`` is the admin's: the server
    applies sql/ with it and opens its pool as the app role (pgvector_grpc_app), as `serve` does
    on the embedded PostgreSQL."""

    def __init__(self, conninfo: str, *, tracer_provider: Any = None, **settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="grpc-server")
        self._thread.start()
        self.settings = Settings(**{"listen": "127.0.0.1:0", "health_interval": 0.2, **settings})
        database = Database(pool=None, admin=conninfo)
        self.running: RunningServer = self.call(start(self.settings, database, tracer_provider=tracer_provider))
        self.address = f"127.0.0.1:{self.running.port}"

    def call(self, coroutine: Any) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=60)

    def stop(self, grace: float = 1.0) -> None:
        self.call(self.running.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[ServerThread]:
    running = ServerThread(database)
    yield running
    running.stop()


@pytest.fixture
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.address, timeout=30) as c:
        yield c


@pytest.fixture
def collection_name(request: pytest.FixtureRequest) -> str:
    """A collection name unique to the test."""
    return re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:63].strip("_") or "c"
