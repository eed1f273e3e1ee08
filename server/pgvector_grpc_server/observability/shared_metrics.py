"""One ``/metrics`` for ``serve --workers N``: the parent makes a directory for prometheus_client's
multiprocess files, names it in ``PROMETHEUS_MULTIPROC_DIR`` for the workers it then starts, and
serves the sum of what they wrote (and its own embedded PostgreSQL's restarts).

Counters and histograms add up over every worker that ever ran, so a restarted worker loses no
count; the pool gauges are summed over the live workers only (the files of a dead worker's gauges
are removed when the parent sees it exit). The directory is removed when the parent stops; one
left by a parent that could not (kill -9) is removed by the next parent, which tells it by the
dead pid in its name."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from pgvector_grpc_server.observability.metrics import SHARED_DIRECTORY_VARIABLE, restarts_collector

log = logging.getLogger(__name__)

_PREFIX = "pgvector-grpc-metrics-"
# The parent's pid, then mkdtemp's random part: PREFIX1234-k3j_x9a2
_NAME = re.compile(re.escape(_PREFIX) + r"([1-9][0-9]*)-[a-z0-9_]+")


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


def _gone(pid: int) -> bool:
    """Whether no process has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # another user's process (EPERM), or no pid at all: leave it
        return False
    return False


def _ours(entry: os.DirEntry[str]) -> bool:
    """A directory (not a link to one) of this user."""
    try:
        return entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid()
    except OSError:
        return False


def remove_stale_directories() -> None:
    """Remove the workers' metric directories in the temp dir whose parent is no longer running
    (killed before it could remove its own): only directories of this program and this user, and
    never one whose pid is alive."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        named = _NAME.fullmatch(entry.name)
        if named is None or not _ours(entry) or not _gone(int(named.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        log.warning(
            "removed %s, the metrics directory of a server (pid %s) no longer running", entry.path, named.group(1)
        )


@contextmanager
def workers_metrics() -> Iterator[WorkersMetrics]:
    """A fresh directory for the workers' metric files (named with this process's pid), named in
    ``PROMETHEUS_MULTIPROC_DIR`` for the processes started inside the block (they inherit it);
    removed, and the variable restored, after it."""
    directory = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
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
