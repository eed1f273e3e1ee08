"""Keeps the embedded PostgreSQL running while the server serves: a dead postmaster is restarted with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from pgvector_grpc_server.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)


class PostmasterSupervisor:
    """Polls the postmaster every ``poll_interval`` seconds; restarts it when it is gone.

    Failed restart attempts back off exponentially (``first_backoff`` doubling up to ``max_backoff``);
    so does a postmaster that dies again within ``stable_after`` seconds of its last restart, so a
    crash loop does not become a restart storm. ``restarts`` counts successful restarts (for metrics)."""

    def __init__(
        self,
        postgres: EmbeddedPostgres,
        *,
        poll_interval: float = 1.0,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:
        self.postgres = postgres
        self.restarts = 0
        self._poll_interval = poll_interval
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._stable_after = stable_after
        self._failures_in_a_row = 0
        self._last_restart = float("-inf")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="postmaster-supervisor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            if not await asyncio.to_thread(self.postgres.is_running):
                await self._restart()

    def _backoff(self) -> float:
        return min(self._first_backoff * 2.0 ** (self._failures_in_a_row - 1), self._max_backoff)

    async def _restart(self) -> None:
        if time.monotonic() - self._last_restart > self._stable_after:
            self._failures_in_a_row = 0
        else:
            self._failures_in_a_row += 1  # died again soon after the last restart
            await asyncio.sleep(self._backoff())
        attempt = 0
        while True:
            attempt += 1
            log.warning("embedded PostgreSQL in %s is not running; restart attempt %d", self.postgres.data_dir, attempt)
            try:
                await asyncio.to_thread(self.postgres.restart)
            except Exception as exc:
                self._failures_in_a_row += 1
                delay = self._backoff()
                log.warning("restart attempt %d failed (%s); retrying in %.1fs", attempt, exc, delay)
                await asyncio.sleep(delay)
                continue
            self.restarts += 1
            self._last_restart = time.monotonic()
            log.warning(
                "embedded PostgreSQL restarted after %d attempt(s); %d restart(s) since the server started",
                attempt,
                self.restarts,
            )
            return


# How long a starting server waits for a previous owner of the data directory to finish stopping.
OWNER_WAIT_SECONDS = 15.0


@contextlib.asynccontextmanager
async def supervised_embedded_postgres(data_dir: Path) -> AsyncIterator[PostmasterSupervisor]:
    """The embedded PostgreSQL in ``data_dir`` (started or adopted), restarted while in use; stopped on exit."""
    postgres = EmbeddedPostgres(data_dir)
    await asyncio.to_thread(postgres.start, wait_for_owner=OWNER_WAIT_SECONDS)
    supervisor = PostmasterSupervisor(postgres)
    try:
        supervisor.start()
        yield supervisor
    finally:
        await supervisor.stop()
        await asyncio.to_thread(postgres.stop)
