"""grpc.health.v1: SERVING while the database answers, NOT_SERVING otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

log = logging.getLogger(__name__)


# While the database is unreachable it is probed this often, so that service resumes soon after it returns.
DOWN_PROBE_INTERVAL = 0.25


class DatabaseHealth:
    """Probes the database every ``interval`` seconds (more often while it is unreachable) and
    publishes the result for every service; :meth:`publish` reports a change seen elsewhere at once."""

    def __init__(self, probe: Callable[[], Awaitable[bool]], services: Sequence[str], interval: float = 2.0) -> None:
        self.servicer = HealthServicer()
        self._probe = probe
        self._services = ["", *services]
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._serving: bool | None = None
        self._shut_down = False

    async def start(self) -> None:
        """Publish the first probe's result, then keep probing in the background."""
        await self._publish()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval if self._serving else min(self._interval, DOWN_PROBE_INTERVAL))
            await self._publish()

    async def _publish(self) -> None:
        await self.publish(await self._probe())

    async def publish(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING for every service, if that changed."""
        if self._shut_down:
            return
        if serving != self._serving:
            log.info("database %s", "reachable" if serving else "unreachable")
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            for service in self._services:
                await self.servicer.set(service, status)
            self._serving = serving

    async def shutdown(self) -> None:
        """Stop probing and report NOT_SERVING for good."""
        self._shut_down = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.servicer.enter_graceful_shutdown()
