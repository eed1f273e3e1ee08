"""One ``/metrics`` for ``serve --workers N``: the parent makes a directory for prometheus_client's
multiprocess files, names it in ``PROMETHEUS_MULTIPROC_DIR`` for the workers it then starts, and
serves the sum of what they wrote (and its own embedded PostgreSQL's restarts).

Counters and histograms add up over every worker that ever ran, so a restarted worker loses no
count; the pool gauges are summed over the live workers only (the files of a dead worker's gauges
are removed when the parent sees it exit). The directory is removed when the parent stops."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from pgvector_grpc_server.observability.metrics import SHARED_DIRECTORY_VARIABLE, restarts_collector


class WorkersMetrics:
    """What the parent serves: every worker's metric files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=str(directory))  # type: ignore[no-untyped-call]

    def watch_restarts(self, restarts: Callable[[], int]) -> None:
        self.registry.register(restarts_collector(restarts))

    def worker_exited(self, pid: int) -> None:
        """Drop a dead worker's gauges (its counters keep counting in the totals)."""
        mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]


@contextmanager
def workers_metrics() -> Iterator[WorkersMetrics]:
    """A fresh directory for the workers' metric files, named in ``PROMETHEUS_MULTIPROC_DIR`` for
    the processes started inside the block (they inherit it); removed, and the variable restored,
    after it."""
    directory = Path(tempfile.mkdtemp(prefix="pgvector-grpc-metrics-"))
    previous = os.environ.get(SHARED_DIRECTORY_VARIABLE)
    os.environ[SHARED_DIRECTORY_VARIABLE] = str(directory)
    try:
        yield WorkersMetrics(directory)
    finally:
        if previous is None:
            os.environ.pop(SHARED_DIRECTORY_VARIABLE, None)
        else:
            os.environ[SHARED_DIRECTORY_VARIABLE] = previous
        shutil.rmtree(directory, ignore_errors=True)
