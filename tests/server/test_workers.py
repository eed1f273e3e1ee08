"""`serve --workers N`: every worker serves calls on the one port, a dead worker is replaced (or
ends the group when it dies right after its start), SIGTERM leaves no process behind, and one
`/metrics` (served by the parent) counts the calls of every worker."""

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


def eventually(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def gone(processes: list[psutil.Process]) -> bool:
    return not any(_is_live_worker(p) for p in processes)


def test_every_worker_serves_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    served = Served("--workers", "2", "--data-dir", str(data_dir))
    port = int(served.address.rsplit(":", 1)[1])
    workers = workers_of(served)
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
    finally:
        for c in channels:
            c.close()
        assert served.stop() == 0
    assert gone(workers)
    eventually(lambda: postgres_processes(data_dir) == [], seconds=15)


def test_a_dead_worker_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVECTOR_GRPC_WORKER_CRASH_LOOP_SECONDS", "0")
    served = Served("--workers", "2", "--data-dir", str(tmp_path / "pgdata"))
    try:
        first = workers_of(served)
        os.kill(first[0].pid, signal.SIGKILL)
        eventually(lambda: len(workers_of(served)) == 2 and first[0] not in workers_of(served), seconds=30)
        with Client(served.address) as client:
            eventually(lambda: client.health() == "SERVING", seconds=30)
        replaced = workers_of(served)
    finally:
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


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_one_metrics_endpoint_counts_the_calls_of_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVECTOR_GRPC_WORKER_CRASH_LOOP_SECONDS", "0")
    metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
    served = Served("--workers", "2", "--data-dir", str(tmp_path / "pgdata"), "--metrics-listen", metrics_url[7:-8])
    port = int(served.address.rsplit(":", 1)[1])
    workers = workers_of(served)
    shared_directory = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
    count_ok = frozenset(
        {
            "grpc_type": "unary",
            "grpc_service": "pgvector_grpc.v1.DocumentService",
            "grpc_method": "CountDocuments",
            "grpc_code": "OK",
        }.items()
    )
    channels = [grpc.insecure_channel(served.address, [("grpc.use_local_subchannel_pool", 1)]) for _ in range(16)]
    try:
        with Client(served.address) as client:
            client.create_collection("metered", 2)
        request = document_service_pb2.CountDocumentsRequest(collection="metered")
        for channel in channels:
            DocumentServiceStub(channel).CountDocuments(request, timeout=30)
        served_by = [connections_served(w, port) for w in workers]
        assert all(served_by), served_by  # the calls landed on both workers

        def counted(calls: int) -> bool:
            return scrape(metrics_url).get(("grpc_server_handled_total", count_ok), 0) == calls

        eventually(lambda: counted(16), seconds=15)  # every worker's calls, in one answer
        samples = scrape(metrics_url)
        assert samples[("pgvector_grpc_pool_max_size", frozenset())] == 2 * 10  # each worker's pool, summed
        assert samples[("pgvector_grpc_embedded_postgres_restarts_total", frozenset())] == 0  # the parent's own

        os.kill(workers[0].pid, signal.SIGKILL)
        eventually(lambda: len(workers_of(served)) == 2 and workers[0] not in workers_of(served), seconds=30)
        with Client(served.address) as client:
            eventually(lambda: client.health() == "SERVING", seconds=30)
        eventually(lambda: scrape(metrics_url).get(("pgvector_grpc_pool_max_size", frozenset())) == 2 * 10, 15)
        assert counted(16)  # the dead worker's calls stay counted; its pool is no longer in the gauges
    finally:
        for channel in channels:
            channel.close()
        assert served.stop() == 0
    assert not shared_directory.exists()
