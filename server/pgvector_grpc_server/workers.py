"""`serve --workers N`: N server processes on one port, sharing one database.

The parent starts the embedded PostgreSQL (or takes DATABASE_URL), applies sql/ once, reserves the
port, and spawns the workers; each is an ordinary server (its own pool, as the app role) that
listens with SO_REUSEPORT, so the kernel spreads connections over them (as grpc's multiprocessing
example does). The parent serves no calls; with ``--metrics-listen`` it serves one ``/metrics``
for all workers (``observability.shared_metrics``).

- SIGTERM / SIGINT to the parent: the workers get SIGTERM, drain and exit; then PostgreSQL stops.
- A worker that dies is restarted. One that dies within ``worker_crash_loop_seconds`` (10 s) of
  its start (a bad configuration, a port it cannot bind) ends the whole group with status 1
  instead: restarting it would only repeat the failure.
- A worker whose parent is gone (kill -9) stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from multiprocessing.process import BaseProcess

from pgvector_grpc_server.app import Database, check_startable, database_for, pool_conninfo, run, until_stopped
from pgvector_grpc_server.observability.metrics import MetricsEndpoint
from pgvector_grpc_server.observability.shared_metrics import remove_stale_directories, workers_metrics
from pgvector_grpc_server.settings import Settings

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.2


@contextlib.contextmanager
def reserved_port(listen: str) -> Iterator[str]:
    """``listen`` with its port resolved (port 0 = a free one), held by a bound, non-listening
    SO_REUSEPORT socket so that no other program takes it while the workers start."""
    host, _, port = listen.rpartition(":")
    bare_host = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as reservation:
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reservation.bind((bare_host, int(port)))
        yield f"{host}:{reservation.getsockname()[1]}"


def _serve_one(settings: Settings, log_level: str) -> None:
    """A worker process: an ordinary server until SIGTERM, or until its parent is gone."""
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s worker {os.getpid()} %(name)s: %(message)s")
    parent = os.getppid()

    def stop_when_orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_orphaned, daemon=True, name="orphan-check").start()
    asyncio.run(run(settings))


class _Group:
    def __init__(
        self, settings: Settings, count: int, log_level: str, exited: Callable[[int], None] | None = None
    ) -> None:
        self._settings = settings
        self._log_level = log_level
        self._exited = exited
        self._context = multiprocessing.get_context("spawn")  # no forked copy of gRPC's threads
        self._started: dict[BaseProcess, float] = {}
        self.processes: list[BaseProcess] = [self._spawn() for _ in range(count)]

    def _spawn(self) -> BaseProcess:
        process = self._context.Process(target=_serve_one, args=(self._settings, self._log_level), name="pgvector-grpc")
        process.start()
        self._started[process] = time.monotonic()
        return process

    def replace_dead(self) -> bool:
        """Restart dead workers; False when one died too soon after its start."""
        for i, process in enumerate(self.processes):
            if process.is_alive():
                continue
            if self._exited is not None and process.pid is not None:
                self._exited(process.pid)
            lived = time.monotonic() - self._started.pop(process)
            if lived < self._settings.worker_crash_loop_seconds:
                log.error(
                    "worker %s exited with %s after %.1fs: stopping all workers", process.pid, process.exitcode, lived
                )
                return False
            log.warning("worker %s exited with %s: restarting it", process.pid, process.exitcode)
            self.processes[i] = self._spawn()
        return True

    async def stop(self, grace: float) -> None:
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace + 5.0
        while any(p.is_alive() for p in self.processes) and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(5.0)


async def run_workers(settings: Settings, log_level: str = "INFO") -> int:
    """Serve with ``settings.workers`` processes until SIGINT / SIGTERM; the exit status."""
    check_startable(settings)
    async with contextlib.AsyncExitStack() as resources:
        database, settings = await database_for(settings, resources)
        conninfo = await pool_conninfo(settings, database)  # sql/ is applied here, once
        with reserved_port(settings.listen) as listen:
            worker_settings = replace(
                settings,
                listen=listen,
                reuse_port=True,
                database_url=conninfo,
                admin_database_url=None,
                apply_schema=False,
                metrics_listen=None,  # the parent serves the metrics of all workers
            )
            exited, metrics = resources.enter_context(_workers_metrics(settings.metrics_listen, database))
            group = _Group(worker_settings, settings.workers, log_level, exited)
            log.info("serving gRPC on %s with %d worker processes; metrics: %s", listen, settings.workers, metrics)
            stopped = asyncio.ensure_future(until_stopped())
            healthy = True
            while healthy and not stopped.done():
                await asyncio.wait([stopped], timeout=_POLL_SECONDS)
                healthy = stopped.done() or group.replace_dead()
            stopped.cancel()
            log.info("stopping %d workers (grace %.1fs)", len(group.processes), settings.grace_seconds)
            await group.stop(settings.grace_seconds)
        return 0 if healthy else 1


@contextlib.contextmanager
def _workers_metrics(listen: str | None, database: Database) -> Iterator[tuple[Callable[[int], None] | None, str]]:
    """With ``listen``: the directory of the workers' metric files (made before they start, so that
    they inherit it) and the parent's endpoint over it. Yields what to tell of a dead worker, and
    the endpoint's URL ("off" without ``listen``). Either way, removes the directories of parents
    that were killed."""
    remove_stale_directories()
    if not listen:
        yield None, "off"
        return
    with workers_metrics() as shared:
        if database.embedded_restarts is not None:
            shared.watch_restarts(database.embedded_restarts)
        endpoint = MetricsEndpoint(listen, shared.registry)
        try:
            yield shared.worker_exited, endpoint.url
        finally:
            endpoint.close()
