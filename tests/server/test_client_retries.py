"""The client retries idempotent reads on UNAVAILABLE, and nothing else."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pgvector_grpc import Client, UnavailableError
from pgvector_grpc._channel import RETRY_BUDGET_SECONDS

from tests.fix_server import ServerThread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reads_are_retried_until_the_server_is_up(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A server starting on a loaded machine can take longer than the retry budget (3 s): this test is
    # about retrying until it answers, test_retries_stop_when_their_time_budget_is_spent about the budget.
    monkeypatch.setattr("pgvector_grpc._channel.RETRY_BUDGET_SECONDS", 60.0)
    ServerThread(database).stop()  # sql/ applied once, so that the start below is a plain start
    port = free_port()
    started: list[ServerThread] = []
    timer = threading.Timer(0.4, lambda: started.append(ServerThread(database, listen=f"127.0.0.1:{port}")))
    timer.start()
    try:
        with Client(f"127.0.0.1:{port}", retries=60, timeout=5) as client:
            before = time.monotonic()
            names = [c.name for c in client.list_collections()]
            assert time.monotonic() - before >= 0.3  # it failed first, then succeeded on a retry
        assert "documents" in names
    finally:
        timer.join()
        for server in started:
            server.stop()


def test_writes_are_not_retried() -> None:
    with Client(f"127.0.0.1:{free_port()}", retries=6, timeout=5) as client:
        before = time.monotonic()
        with pytest.raises(UnavailableError):
            client.create_collection("never", 3)
        assert time.monotonic() - before < 0.5  # one attempt, no backoff


def test_retries_stop_when_their_time_budget_is_spent() -> None:
    with Client(f"127.0.0.1:{free_port()}", retries=1000, timeout=5) as client:
        before = time.monotonic()
        with pytest.raises(UnavailableError):
            client.list_collections()
        elapsed = time.monotonic() - before
    assert 1.0 < elapsed < RETRY_BUDGET_SECONDS + 1.0  # it backed off several times, then gave up
