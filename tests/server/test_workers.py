"""`serve --workers N`: every worker serves calls on the one port, a dead worker is replaced (or
ends the group when it dies right after its start), SIGTERM leaves no process behind, and one
`/metrics` (served by the parent) counts the calls of every worker, in a directory that a later
parent removes when a killed one left it."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import psutil
import pytest
from pgvector_grpc import Client, Document
from pgvector_grpc.v1 import document_service_pb2
from pgvector_grpc.v1.document_service_pb2_grpc import DocumentServiceStub
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import Served, free_port
from tests.server.test_supervision import postgres_processes


def workers_of(served: Served) -> list[psutil.Process]:
    return [child for child in psutil.Process(served.process.pid).children() if _is_live_worker(child)]


def _is_live_worker(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE and any("spawn_main" in part for part in process.cmdline())
    except psutil.Error:
        return False


def connections_served(worker: psutil.Process, port: int) -> int:
    return sum(
        1 for c in worker.net_connections(kind="tcp") if c.laddr and c.laddr.port == port and c.status == "ESTABLISHED"
    )


def listening(worker: psutil.Process, port: int) -> bool:
    return any(c.laddr and c.laddr.port == port and c.status == "LISTEN" for c in worker.net_connections(kind="tcp"))


def eventually(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def gone(processes: list[psutil.Process]) -> bool:
    return not any(_is_live_worker(p) for p in processes)


def test_every_worker_serves_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    served_metrics = Metrics()
    served = Served("--workers", "2", "--data-dir", str(data_dir), "--metrics-listen", served_metrics.listen)
    port = int(served.address.rsplit(":", 1)[1])
    workers = workers_of(served)
    shared_directory = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
    # A connection each (no shared subchannel): the kernel spreads connections over the workers.
    channels = [grpc.insecure_channel(served.address, [("grpc.use_local_subchannel_pool", 1)]) for _ in range(16)]
    try:
        assert len(workers) == 2
        with Client(served.address) as client:
            client.create_collection("shared", 2)
            client.ingest("shared", [Document("a", None, {}, [1, 2])])
        request = document_service_pb2.CountDocumentsRequest(collection="shared")
        counts = [DocumentServiceStub(c).CountDocuments(request, timeout=30).count for c in channels]
        assert counts == [1] * 16  # the same database behind every worker
        served_by = [connections_served(w, port) for w in workers]
        assert sum(served_by) >= 16 and all(served_by), served_by
        # One /metrics, served by the parent, counts the calls of both workers and sums their pools.
        eventually(lambda: served_metrics.counted() == 16, seconds=15)
        samples = served_metrics.scrape()
        assert samples[("pgvector_grpc_pool_max_size", frozenset())] == 2 * 10
        assert samples[("pgvector_grpc_embedded_postgres_restarts_total", frozenset())] == 0  # the parent's own
    finally:
        for c in channels:
            c.close()
        assert served.stop() == 0
    assert gone(workers)
    assert not shared_directory.exists()  # the parent removed the workers' metric files
    eventually(lambda: postgres_processes(data_dir) == [], seconds=15)


def test_a_dead_worker_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVECTOR_GRPC_WORKER_CRASH_LOOP_SECONDS", "0")
    served_metrics = Metrics()
    served = Served("--workers", "2", "--data-dir", str(tmp_path / "pgdata"), "--metrics-listen", served_metrics.listen)
    port = int(served.address.rsplit(":", 1)[1])
    channels = [grpc.insecure_channel(served.address, [("grpc.use_local_subchannel_pool", 1)]) for _ in range(16)]
    try:
        with Client(served.address) as client:
            client.create_collection("counted", 2)
        request = document_service_pb2.CountDocumentsRequest(collection="counted")
        for channel in channels:
            DocumentServiceStub(channel).CountDocuments(request, timeout=30)
        first = workers_of(served)
        busy = next(w for w in first if connections_served(w, port))  # it served some of the 16 calls
        eventually(lambda: served_metrics.counted() == 16, seconds=15)
        os.kill(busy.pid, signal.SIGKILL)
        eventually(lambda: len(workers_of(served)) == 2 and busy not in workers_of(served), seconds=30)
        with Client(served.address) as client:
            eventually(lambda: client.health() == "SERVING", seconds=30)
        replaced = workers_of(served)
        [successor] = [w for w in replaced if w not in first]
        eventually(lambda: listening(successor, port), seconds=30)
        again = [grpc.insecure_channel(served.address, [("grpc.use_local_subchannel_pool", 1)]) for _ in range(16)]
        channels += again
        for channel in again:
            DocumentServiceStub(channel).CountDocuments(request, timeout=30)
        assert connections_served(successor, port)  # it serves, so its pool is open and in the gauges
        # The dead worker's calls stay counted; its pool left the gauges (else 3 pools).
        eventually(lambda: served_metrics.counted() == 32, seconds=15)
        assert served_metrics.scrape()[("pgvector_grpc_pool_max_size", frozenset())] == 2 * 10
    finally:
        for c in channels:
            c.close()
        assert served.stop() == 0
    assert gone([*first, *replaced])


def test_a_worker_dying_right_after_its_start_ends_the_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVECTOR_GRPC_WORKER_CRASH_LOOP_SECONDS", "3600")
    data_dir = tmp_path / "pgdata"
    served = Served("--workers", "2", "--data-dir", str(data_dir))
    workers = workers_of(served)
    try:
        os.kill(workers[0].pid, signal.SIGKILL)
        assert served.process.wait(timeout=60) == 1
    finally:
        served.process.kill()
    assert gone(workers)
    eventually(lambda: postgres_processes(data_dir) == [], seconds=15)


def test_a_later_parent_removes_the_metrics_directory_a_killed_one_left(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    data_dir = tmp_path / "pgdata"
    killed = Served(
        "--workers", "2", "--data-dir", str(data_dir), "--metrics-listen", Metrics().listen, env={"TMPDIR": str(temp)}
    )
    workers = workers_of(killed)
    try:
        stale = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert stale.parent == temp and stale.name.startswith(f"pgvector-grpc-metrics-{killed.process.pid}-")
        eventually(lambda: any(stale.iterdir()), seconds=15)  # the workers' pool gauges
    finally:
        killed.kill()
        for worker in workers:
            worker.kill()
        psutil.wait_procs(workers, timeout=30)
    assert stale.is_dir()
    running = temp / f"pgvector-grpc-metrics-{os.getpid()}-abcd_123"  # as if this process were a parent
    unnamed = temp / "pgvector-grpc-metrics-abcd_123"  # whose parent cannot be told: an older server's
    for kept in (running, unnamed):
        kept.mkdir()
        (kept / "counter_1.db").write_bytes(b"")

    later = Served(
        "--workers", "2", "--data-dir", str(data_dir), "--metrics-listen", Metrics().listen, env={"TMPDIR": str(temp)}
    )
    try:
        fresh = Path(workers_of(later)[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert fresh.is_dir() and fresh.name.startswith(f"pgvector-grpc-metrics-{later.process.pid}-")
        assert not stale.exists()
        assert (running / "counter_1.db").exists() and (unnamed / "counter_1.db").exists()
    finally:
        assert later.stop() == 0
    assert f"removed {stale}, the metrics directory of a server (pid {killed.process.pid}) no longer running" in (
        later.output()
    )
    assert sorted(temp.iterdir()) == sorted([running, unnamed])
    eventually(lambda: postgres_processes(data_dir) == [], seconds=15)


class Metrics:
    """The parent's /metrics on a free port."""

    COUNT_OK = frozenset(
        {
            "grpc_type": "unary",
            "grpc_service": "pgvector_grpc.v1.DocumentService",
            "grpc_method": "CountDocuments",
            "grpc_code": "OK",
        }.items()
    )

    def __init__(self) -> None:
        self.listen = f"127.0.0.1:{free_port()}"

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://{self.listen}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def counted(self) -> float:
        """CountDocuments calls answered OK, over all workers."""
        return self.scrape().get(("grpc_server_handled_total", self.COUNT_OK), 0.0)
