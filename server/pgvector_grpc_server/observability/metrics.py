"""The server's Prometheus metrics, in a registry of its own (several servers may share a process),
and the HTTP endpoint that serves them.

RPC metrics carry the names go-grpc-prometheus made standard, so existing dashboards and alerts
apply; the rest are prefixed ``pgvector_grpc_``.

Under ``serve --workers N`` each worker records into the files of prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by the parent, which serves them all: see
``shared_metrics``); a worker then publishes its pool's figures every second instead of at each
scrape, since the scrape happens in another process."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pgvector_grpc_server.settings import split_address

RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
INGEST_OUTCOMES = ("inserted", "updated", "skipped")
SHARED_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
POOL_PUBLISH_SECONDS = 1.0


def recorded_in_shared_files() -> bool:
    """True when prometheus_client writes this process's metrics to the files several processes
    share (the variable it reads when it is imported)."""
    return bool(os.environ.get(SHARED_DIRECTORY_VARIABLE))


class RpcMetrics:
    """go-grpc-prometheus's server metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "grpc_server_started_total", "Total number of RPCs started on the server.", RPC_LABELS, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*RPC_LABELS, "grpc_code"),
            registry=registry,
        )
        self.received = Counter(
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            RPC_LABELS,
            registry=registry,
        )
        self.sent = Counter(
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server.",
            RPC_LABELS,
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            RPC_LABELS,
            registry=registry,
        )


class DatabaseStatements:
    """The storage's StatementObserver: failures counted by SQLSTATE class, a span per statement when tracing."""

    def __init__(self, errors: Counter, span: Callable[[str], AbstractContextManager[object]] | None) -> None:
        self._errors = errors
        self._span = span

    @property
    def traces(self) -> bool:
        return self._span is not None

    def span(self, statement: str) -> AbstractContextManager[object]:
        return self._span(statement) if self._span is not None else contextlib.nullcontext()

    def failed(self, sqlstate: str | None) -> None:
        self._errors.labels(sqlstate_class=sqlstate[:2] if sqlstate else "none").inc()


def _in_use(stats: Mapping[str, int]) -> int:
    return stats.get("pool_size", 0) - stats.get("pool_available", 0)


# The pool's figures from psycopg_pool's get_stats(): gauges (name, help, figure) and counters (name,
# help, the stats key counting it).
_POOL_GAUGES: tuple[tuple[str, str, Callable[[Mapping[str, int]], int]], ...] = (
    ("pgvector_grpc_pool_max_size", "Most connections the pool may open.", lambda stats: stats["pool_max"]),
    ("pgvector_grpc_pool_size", "Connections the pool holds, in use or idle.", lambda stats: stats.get("pool_size", 0)),
    ("pgvector_grpc_pool_in_use", "Connections lent out to requests.", _in_use),
    (
        "pgvector_grpc_pool_waiting",
        "Requests waiting for a connection.",
        lambda stats: stats.get("requests_waiting", 0),
    ),
)
_POOL_COUNTERS: tuple[tuple[str, str, str], ...] = (
    (
        "pgvector_grpc_pool_requests_failed",
        "Requests that got no connection (timed out waiting, or too many waiting).",
        "requests_errors",
    ),
    ("pgvector_grpc_pool_connections_lost", "Connections found broken and discarded.", "connections_lost"),
    (
        "pgvector_grpc_pool_connection_failures",
        "Attempts to open a database connection that failed.",
        "connections_errors",
    ),
)


class _PoolCollector(Collector):
    """The pool's figures, read from psycopg_pool's ``get_stats()`` at each scrape."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for name, documentation, figure in _POOL_GAUGES:
            yield GaugeMetricFamily(name, documentation, figure(stats))
        for name, documentation, key in _POOL_COUNTERS:
            yield CounterMetricFamily(name, documentation, stats.get(key, 0))


class _Publisher:
    """Figures read from the server's objects and written to the multiprocess files, at once and
    then every ``POOL_PUBLISH_SECONDS`` from a thread (the parent cannot call into the workers at a
    scrape)."""

    def __init__(self, publish: Callable[[], None], name: str) -> None:
        self._publish = publish
        self._stop = threading.Event()
        publish()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POOL_PUBLISH_SECONDS):
            self._publish()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _CountedSince:
    """A multiprocess counter advanced by what a running total counted since it was last read."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._counted: dict[tuple[str, ...], int] = {}

    def advance(self, labels: tuple[str, ...], total: int) -> None:
        done = self._counted.get(labels, 0)
        if total > done:
            (self._counter.labels(*labels) if labels else self._counter).inc(total - done)
            self._counted[labels] = total


def _pool_publisher(stats: Callable[[], Mapping[str, int]], registry: CollectorRegistry) -> _Publisher:
    """The pool's figures: gauges summed over the live workers, counters advanced by what the pool
    counted since."""
    gauges = [
        (Gauge(name, documentation, registry=registry, multiprocess_mode="livesum"), figure)
        for name, documentation, figure in _POOL_GAUGES
    ]
    counters = [
        (_CountedSince(Counter(name, documentation, registry=registry)), key)
        for name, documentation, key in _POOL_COUNTERS
    ]

    def publish() -> None:
        now = stats()
        for gauge, figure in gauges:
            gauge.set(figure(now))
        for counter, key in counters:
            counter.advance((), now.get(key, 0))

    return _Publisher(publish, "pool-metrics")


class ReplicaFigures(Protocol):
    """What metrics show of one read replica."""

    @property
    def label(self) -> str: ...
    @property
    def in_use(self) -> bool: ...
    @property
    def lag_seconds(self) -> float | None: ...
    @property
    def reads(self) -> int: ...
    @property
    def pool_stats(self) -> Mapping[str, int]: ...


_READS_HELP = "Reads answered, by database (primary, or a read replica)."
_IN_USE_HELP = "1 while a read replica answers reads; 0 while it is skipped (down, lagging, refused)."
_LAG_HELP = "How far a read replica lags the primary, at most (NaN: unknown)."
_POOL_IN_USE_HELP = "Connections to a read replica lent out."
_POOL_SIZE_HELP = "Connections to a read replica, in use or idle."


class _ReadsCollector(Collector):
    """Where reads went (the primary, each replica) and each replica's state, read at each scrape."""

    def __init__(self, primary_reads: Callable[[], int], replicas: Callable[[], Sequence[ReplicaFigures]]) -> None:
        self._primary_reads = primary_reads
        self._replicas = replicas

    def collect(self) -> Iterator[Metric]:
        replicas = self._replicas()
        reads = CounterMetricFamily("pgvector_grpc_reads", _READS_HELP, labels=("database",))
        reads.add_metric(("primary",), self._primary_reads())
        in_use = GaugeMetricFamily("pgvector_grpc_replica_in_use", _IN_USE_HELP, labels=("replica",))
        lag = GaugeMetricFamily("pgvector_grpc_replica_lag_seconds", _LAG_HELP, labels=("replica",))
        pool_in_use = GaugeMetricFamily("pgvector_grpc_replica_pool_in_use", _POOL_IN_USE_HELP, labels=("replica",))
        pool_size = GaugeMetricFamily("pgvector_grpc_replica_pool_size", _POOL_SIZE_HELP, labels=("replica",))
        for replica in replicas:
            reads.add_metric((replica.label,), replica.reads)
            in_use.add_metric((replica.label,), 1 if replica.in_use else 0)
            lag.add_metric((replica.label,), float("nan") if replica.lag_seconds is None else replica.lag_seconds)
            stats = replica.pool_stats
            size = stats.get("pool_size", 0)
            pool_size.add_metric((replica.label,), size)
            pool_in_use.add_metric((replica.label,), _in_use(stats))
        yield reads
        if replicas:
            yield from (in_use, lag, pool_in_use, pool_size)


def _reads_publisher(
    primary_reads: Callable[[], int], replicas: Callable[[], Sequence[ReplicaFigures]], registry: CollectorRegistry
) -> _Publisher:
    """What _ReadsCollector shows, as multiprocess metrics: reads added up over every worker; of each
    replica, in use while any live worker uses it, its largest lag and its pools summed."""
    reads = _CountedSince(Counter("pgvector_grpc_reads", _READS_HELP, ("database",), registry=registry))

    def gauge(name: str, documentation: str, mode: Literal["livemax", "livesum"]) -> Gauge:
        return Gauge(name, documentation, ("replica",), registry=registry, multiprocess_mode=mode)

    in_use = gauge("pgvector_grpc_replica_in_use", _IN_USE_HELP, "livemax")
    lag = gauge("pgvector_grpc_replica_lag_seconds", _LAG_HELP, "livemax")
    pool_in_use = gauge("pgvector_grpc_replica_pool_in_use", _POOL_IN_USE_HELP, "livesum")
    pool_size = gauge("pgvector_grpc_replica_pool_size", _POOL_SIZE_HELP, "livesum")

    def publish() -> None:
        reads.advance(("primary",), primary_reads())
        for replica in replicas():
            reads.advance((replica.label,), replica.reads)
            in_use.labels(replica.label).set(1 if replica.in_use else 0)
            lag.labels(replica.label).set(float("nan") if replica.lag_seconds is None else replica.lag_seconds)
            stats = replica.pool_stats
            pool_in_use.labels(replica.label).set(_in_use(stats))
            pool_size.labels(replica.label).set(stats.get("pool_size", 0))

    return _Publisher(publish, "reads-metrics")


class _RestartsCollector(Collector):
    def __init__(self, restarts: Callable[[], int]) -> None:
        self._restarts = restarts

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "pgvector_grpc_embedded_postgres_restarts",
            "Times the embedded PostgreSQL was found dead and restarted.",
            self._restarts(),
        )


class ServerMetrics:
    """Every metric of one server, in ``registry`` (and in the shared files when
    ``recorded_in_shared_files()``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._publishers: list[_Publisher] = []
        self.rpc = RpcMetrics(self.registry)
        self.documents_ingested = Counter(
            "pgvector_grpc_documents_ingested_total",
            "Documents committed by Ingest, by what happened to each (inserted, updated, skipped as existing).",
            ("outcome",),
            registry=self.registry,
        )
        for outcome in INGEST_OUTCOMES:
            self.documents_ingested.labels(outcome=outcome)
        self.database_errors = Counter(
            "pgvector_grpc_database_errors_total",
            "Statements PostgreSQL refused, by SQLSTATE class (none: no answer, e.g. a lost connection).",
            ("sqlstate_class",),
            registry=self.registry,
        )

    def statements(self, span: Callable[[str], AbstractContextManager[object]] | None = None) -> DatabaseStatements:
        """The observer of the pool's statements."""
        return DatabaseStatements(self.database_errors, span)

    def count_ingested(self, inserted: int, updated: int, skipped: int) -> None:
        for outcome, count in zip(INGEST_OUTCOMES, (inserted, updated, skipped), strict=True):
            if count:
                self.documents_ingested.labels(outcome=outcome).inc(count)

    def watch_pool(self, stats: Callable[[], Mapping[str, int]]) -> None:
        if recorded_in_shared_files():
            self._publishers.append(_pool_publisher(stats, self.registry))
        else:
            self.registry.register(_PoolCollector(stats))

    def watch_reads(self, primary_reads: Callable[[], int], replicas: Callable[[], Sequence[ReplicaFigures]]) -> None:
        if recorded_in_shared_files():
            self._publishers.append(_reads_publisher(primary_reads, replicas, self.registry))
        else:
            self.registry.register(_ReadsCollector(primary_reads, replicas))

    def watch_restarts(self, restarts: Callable[[], int]) -> None:
        self.registry.register(restarts_collector(restarts))

    def close(self) -> None:
        """Stop publishing the figures read from the pools and the routing (read at each scrape
        without workers)."""
        for publisher in self._publishers:
            publisher.close()


def restarts_collector(restarts: Callable[[], int]) -> Collector:
    """``pgvector_grpc_embedded_postgres_restarts_total`` read from ``restarts`` at each scrape."""
    return _RestartsCollector(restarts)


class MetricsEndpoint:
    """``/metrics`` of ``registry`` over HTTP on ``HOST:PORT``, served from threads of its own (the
    gRPC event loop never waits on a scrape).

    Binding happens in the constructor: a busy port raises OSError at once."""

    def __init__(self, address: str, registry: CollectorRegistry) -> None:
        host, port = split_address(address)
        self._server: Any
        self._server, self._thread = start_http_server(port, host, registry)
        self.port: int = self._server.server_port
        self.address = f"{'[' + host + ']' if ':' in host else host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
