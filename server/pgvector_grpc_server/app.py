"""Composition root: schema, pool, services, servicers, health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from pgvector_grpc.v1 import (
    collection_service_pb2,
    collection_service_pb2_grpc,
    document_service_pb2,
    document_service_pb2_grpc,
    migration_service_pb2,
    migration_service_pb2_grpc,
)

from pgvector_grpc_server.access import (
    UnsafeConfiguration,
    access_control,
    describe_authentication,
    server_credentials,
)
from pgvector_grpc_server.observability.metrics import MetricsEndpoint, ServerMetrics
from pgvector_grpc_server.observability.tracing import ensure_available as ensure_tracing_available
from pgvector_grpc_server.observability.tracing import otlp_tracer_provider, statement_spans
from pgvector_grpc_server.observability.tracing import shutdown as shutdown_tracing
from pgvector_grpc_server.services.collections import Collections
from pgvector_grpc_server.services.documents import Documents, Limits
from pgvector_grpc_server.services.migration import Migrations
from pgvector_grpc_server.services.migration_sources import SourcePolicy
from pgvector_grpc_server.settings import InvalidSetting, Settings, split_address
from pgvector_grpc_server.storage.collections import CollectionStore
from pgvector_grpc_server.storage.documents import DocumentStore
from pgvector_grpc_server.storage.hybrid import TextSearchStore
from pgvector_grpc_server.storage.location import database_label, describe_database
from pgvector_grpc_server.storage.observed import StatementObserver
from pgvector_grpc_server.storage.pool import Pool, close_pool, open_pool
from pgvector_grpc_server.storage.roles import ensure_app_role, role_problems
from pgvector_grpc_server.storage.routing import ReadRouting, Replica
from pgvector_grpc_server.storage.schema import apply_schema
from pgvector_grpc_server.storage.search import SearchStore
from pgvector_grpc_server.transport.collection_servicer import CollectionServicer
from pgvector_grpc_server.transport.decoding import decoding
from pgvector_grpc_server.transport.document_servicer import DocumentServicer
from pgvector_grpc_server.transport.health import DatabaseHealth
from pgvector_grpc_server.transport.metrics import RpcMeasures
from pgvector_grpc_server.transport.migration_servicer import MigrationServicer
from pgvector_grpc_server.transport.wrapping import Handler, Registration

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger(__name__)

SERVICE_NAMES = [
    collection_service_pb2.DESCRIPTOR.services_by_name["CollectionService"].full_name,
    document_service_pb2.DESCRIPTOR.services_by_name["DocumentService"].full_name,
    migration_service_pb2.DESCRIPTOR.services_by_name["MigrationService"].full_name,
]
INGEST_METHOD = "/{}/Ingest".format(document_service_pb2.DESCRIPTOR.services_by_name["DocumentService"].full_name)


class AddressInUse(OSError):
    """The address to listen on is taken (or cannot be bound)."""


@dataclass(frozen=True)
class Database:
    """How the server reaches PostgreSQL.

    ``pool``: the URL of the role the server's pool logs in as, which row-level security must hold
    (pgvector_grpc_app). None: that role at the admin's address, created if missing and logging in
    without a password (the embedded PostgreSQL, which trusts its unix socket).
    ``admin``: the URL of a role that may apply sql/ (create the roles, own the schema); None when
    sql/ is applied by someone else."""

    pool: str | None
    admin: str | None = None
    # The embedded PostgreSQL: its data directory and how often it was restarted (None with a URL).
    embedded_data_dir: str | None = None
    embedded_restarts: Callable[[], int] | None = field(default=None, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, embedded: str | None = None) -> Database:
        """The embedded PostgreSQL's admin URL, or DATABASE_URL and the admin URL from the settings.
        With DATABASE_URL alone, that URL applies sql/ as well (as the schema's owner, it is then
        refused for the pool unless allow_privileged_role)."""
        if embedded is not None:
            return cls(pool=None, admin=embedded)
        return cls(pool=settings.database_url, admin=settings.admin_database_url or settings.database_url)


async def pool_conninfo(settings: Settings, database: Database) -> str:
    """Apply sql/ with the admin's URL, and the pool's URL once its role is known to be held to
    row-level security (UnsafeConfiguration otherwise, unless ``allow_privileged_role``)."""
    if database.admin is not None and settings.apply_schema:
        await apply_schema(database.admin)
    if database.pool is not None:
        conninfo = database.pool
    elif database.admin is not None:
        conninfo = await ensure_app_role(database.admin)
    else:
        raise UnsafeConfiguration("no database: give DATABASE_URL or an admin database URL")
    problems = await role_problems(conninfo)
    if problems:
        what = f"the pool's database role {'; '.join(problems)}, so row-level security would not isolate tenants"
        if not settings.allow_privileged_role:
            raise UnsafeConfiguration(
                f"{what}: give DATABASE_URL for pgvector_grpc_app (and --admin-database-url to apply sql/), "
                "or pass --allow-privileged-role to run without tenant isolation"
            )
        log.warning("%s (allowed by --allow-privileged-role)", what)
    return conninfo


def pool_options(settings: Settings) -> dict[str, Any]:
    """The sizes and limits of every pool, the primary's and each replica's."""
    return {
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        "max_waiting": settings.pool_max_waiting,
        "timeout": settings.pool_timeout,
        "statement_timeout_ms": settings.statement_timeout_ms,
    }


async def read_routing(settings: Settings, primary: Pool, observer: StatementObserver) -> ReadRouting:
    """The routing of reads to ``settings.read_database_urls``, checked once: a replica that does not
    answer yet is used once it does; one whose role row-level security would not hold is refused
    (UnsafeConfiguration, unless ``allow_privileged_role``)."""
    replicas: list[Replica] = []
    routing = ReadRouting(
        primary,
        replicas,
        max_lag=settings.max_replica_lag,
        interval=settings.replica_check_interval,
        allow_privileged_role=settings.allow_privileged_role,
    )
    try:
        for url in settings.read_database_urls:
            pool = await open_pool(url, **pool_options(settings), observer=observer, read_replica=True)
            replicas.append(Replica(database_label(url), url, pool))
        routing.replicas = replicas
        await routing.start()
        unsafe = [f"read replica {r.label}: {r.unsafe}" for r in replicas if r.unsafe]
        if unsafe:
            raise UnsafeConfiguration(
                "; ".join(unsafe) + ": give each --read-database-url as pgvector_grpc_app, or pass "
                "--allow-privileged-role to run without tenant isolation"
            )
    except BaseException:
        await routing.close()
        raise
    return routing


@dataclass
class RunningServer:
    """A started server: its bound port and what must be closed on stop."""

    server: grpc.aio.Server
    pool: Pool
    health: DatabaseHealth
    port: int
    grace: float
    metrics: ServerMetrics
    metrics_endpoint: MetricsEndpoint | None = None
    tracer_provider: TracerProvider | None = None
    routing: ReadRouting | None = None

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, drain in-flight calls for ``grace`` seconds, close the pools, then the
        metrics endpoint and the traces exporter."""
        await self.health.shutdown()
        await self.server.stop(self.grace if grace is None else grace)
        if self.routing is not None:
            await self.routing.close()
        await close_pool(self.pool)
        await asyncio.to_thread(self.metrics.close)
        if self.metrics_endpoint is not None:
            await asyncio.to_thread(self.metrics_endpoint.close)
        if self.tracer_provider is not None:
            await asyncio.to_thread(shutdown_tracing, self.tracer_provider)


def _server_options(settings: Settings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
    ]


async def start(
    settings: Settings, database: Database, *, tracer_provider: TracerProvider | None = None
) -> RunningServer:
    """Start serving on ``settings.listen`` against ``database``; metrics on ``settings.metrics_listen``
    if set; traces to ``tracer_provider``, else to ``settings.otlp_endpoint`` if set."""
    credentials = server_credentials(settings)
    metrics = ServerMetrics()
    if tracer_provider is None and settings.otlp_endpoint:
        tracer_provider = otlp_tracer_provider(settings.otlp_endpoint)
    endpoint = MetricsEndpoint(settings.metrics_listen, metrics.registry) if settings.metrics_listen else None
    try:
        conninfo = await pool_conninfo(settings, database)
        observer = metrics.statements(statement_spans(tracer_provider) if tracer_provider else None)
        pool = await open_pool(conninfo, **pool_options(settings), observer=observer)
    except BaseException:
        if endpoint is not None:
            endpoint.close()
        raise
    routing: ReadRouting | None = None
    try:
        routing = await read_routing(settings, pool, observer)
        access = await access_control(settings, pool)
        authentication = await describe_authentication(settings, pool)
    except BaseException:
        if routing is not None:
            await routing.close()
        await close_pool(pool)
        if endpoint is not None:
            endpoint.close()
        raise
    metrics.watch_pool(pool.get_stats)
    metrics.watch_reads(lambda: routing.primary_reads, routing.statuses)
    if database.embedded_restarts is not None:
        metrics.watch_restarts(database.embedded_restarts)
    collections = Collections(CollectionStore(pool, routing), settings.index_build_memory)
    limits = Limits(
        settings.max_top_k,
        settings.max_batch_documents,
        settings.read_ahead_batches,
        min(settings.ingest_parallel_batches, settings.pool_max_size),
    )
    documents = Documents(
        collections,
        DocumentStore(pool, routing),
        SearchStore(pool, settings.default_ef_search, routing),
        limits,
        TextSearchStore(pool, settings.default_ef_search, routing),
    )

    measures = RpcMeasures(
        metrics.rpc, {INGEST_METHOD: lambda ack: metrics.count_ingested(ack.inserted, ack.updated, ack.skipped)}
    )

    def wrap(method: str, handler: Handler) -> Handler:
        # Outermost first: measured (refused calls are counted with their code), authenticated
        # before a byte is decoded, decoded, then checked against the caller's grant.
        grants = access.granted(method, handler)
        return measures.wrap(method, access.authenticated(method, decoding(method, grants)))

    interceptors: list[Any] = []
    if tracer_provider is not None:
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        interceptors.append(aio_server_interceptor(tracer_provider=tracer_provider))  # type: ignore[no-untyped-call]
    server = grpc.aio.server(options=_server_options(settings), interceptors=interceptors or None)
    services = Registration(server, wrap).as_server
    collection_service_pb2_grpc.add_CollectionServiceServicer_to_server(CollectionServicer(collections), services)
    document_service_pb2_grpc.add_DocumentServiceServicer_to_server(
        DocumentServicer(documents, settings.search_stream_concurrency), services
    )
    policy = SourcePolicy.of(
        settings.migrate_roots or (),
        settings.migrate_allow_hosts,
        settings.migrate_max_bytes,
        settings.migrate_min_free_bytes,
        settings.migrate_http_timeout,
    )
    migration_service_pb2_grpc.add_MigrationServiceServicer_to_server(
        MigrationServicer(Migrations(collections, documents, policy)), services
    )
    health = DatabaseHealth(pool.monitor.probe, SERVICE_NAMES, settings.health_interval)
    pool.monitor.listen(health.publish)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, services)
    if settings.reflection:
        # Reflection also describes every message type in the default descriptor pool, which holds
        # google.rpc.Status / ErrorInfo / BadRequest (imported by transport.status): generic tools
        # (grpcurl, buf curl) can then decode the error details instead of showing base64.
        names = [*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        # The grpc.aio servicer, registered as the other services are (enable_server_reflection picks
        # its servicer by the type of the server it is given). reflection.aio is exported at run
        # time (its __all__), not in the stubs.
        servicer = reflection.aio.ReflectionServicer(names)  # type: ignore[attr-defined]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, services)
    try:
        port = _bind(server, settings.listen, credentials)
    except BaseException:
        await routing.close()
        await close_pool(pool)
        if endpoint is not None:
            endpoint.close()
        raise
    await health.start()
    await server.start()
    _log_startup(settings, database, conninfo, port, authentication, endpoint, tracing=tracer_provider is not None)
    return RunningServer(
        server, pool, health, port, settings.grace_seconds, metrics, endpoint, tracer_provider, routing
    )


def _log_startup(
    settings: Settings,
    database: Database,
    conninfo: str,
    port: int,
    authentication: str,
    endpoint: MetricsEndpoint | None,
    *,
    tracing: bool,
) -> None:
    """The one INFO line of a start: what is served, where the data is, how it is secured."""
    listen = settings.listen if not settings.listen.endswith(":0") else f"{settings.listen[:-2]}:{port}"
    tls = "on" if settings.tls_cert_file else "off"
    mtls = "on" if settings.tls_client_ca_file else "off"
    if database.embedded_data_dir is not None:
        data = f"embedded PostgreSQL in {database.embedded_data_dir}"
    else:
        data = describe_database(conninfo)
    metrics = endpoint.url if endpoint is not None else "off"
    traces = f"OTLP to {settings.otlp_endpoint}" if settings.otlp_endpoint else ("on" if tracing else "off")
    if settings.read_database_urls:
        replicas = ", ".join(database_label(url) for url in settings.read_database_urls)
        data += f"; reads also from {replicas} (max lag {settings.max_replica_lag:g} s)"
    log.info(
        "serving gRPC on %s (TLS %s); data: %s; auth: %s, mTLS %s; metrics: %s; traces: %s",
        listen,
        tls,
        data,
        authentication,
        mtls,
        metrics,
        traces,
        extra={
            "listen": listen,
            "tls": tls == "on",
            "data": data,
            "auth": authentication,
            "mtls": mtls == "on",
            "metrics": metrics,
            "traces": traces,
        },
    )


def _bind(server: grpc.aio.Server, listen: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        if credentials is not None:
            return server.add_secure_port(listen, credentials)
        return server.add_insecure_port(listen)
    except RuntimeError as exc:  # grpc's "Failed to bind to address"
        raise AddressInUse(f"cannot listen on {listen}: the address is in use or not available here") from exc


def check_startable(settings: Settings) -> None:
    """Raise what would stop `serve` from starting that can be found without touching the data
    directory: bad settings (InvalidSetting), unreadable TLS files, traces without their packages
    (TracingUnavailable), a taken address (AddressInUse)."""
    problems = settings.problems()
    if problems:
        raise InvalidSetting("; ".join(problems))
    server_credentials(settings)
    if settings.otlp_endpoint:
        ensure_tracing_available(settings.otlp_endpoint)
    # A worker's port is held by its parent (SO_REUSEPORT), which checked it.
    listen = None if settings.reuse_port else settings.listen
    for flag, address in (("--listen", listen), ("--metrics-listen", settings.metrics_listen)):
        if address is not None and not address.startswith(("unix:", "unix-abstract:")):
            _check_free(flag, address)


def _check_free(flag: str, address: str) -> None:
    host, port = split_address(address)
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise AddressInUse(f"{flag} {address}: cannot resolve {host!r} ({exc.strerror})") from exc
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(where)
        except OSError as exc:
            raise AddressInUse(f"{flag} {address}: {exc.strerror} (another server running?)") from exc


async def database_for(settings: Settings, resources: contextlib.AsyncExitStack) -> tuple[Database, Settings]:
    """The database ``settings`` name, or the embedded PostgreSQL started (and stopped with
    ``resources``) when they name none; and the settings with the embedded server's defaults."""
    if settings.database_url or settings.admin_database_url:
        return Database.from_settings(settings), settings
    from pgvector_grpc_server.embedded import running_as_root_warning
    from pgvector_grpc_server.supervision import supervised_embedded_postgres

    root_warning = running_as_root_warning(settings.data_dir)
    if root_warning is not None:
        log.warning(root_warning)
    supervisor = await resources.enter_async_context(supervised_embedded_postgres(settings.data_dir))
    database = replace(
        Database.from_settings(settings, embedded=supervisor.postgres.conninfo),
        embedded_data_dir=str(supervisor.postgres.data_dir),
        embedded_restarts=lambda: supervisor.restarts,
    )
    if settings.migrate_roots is None:
        imports = settings.imports_directory()
        imports.mkdir(mode=0o700, exist_ok=True)
        settings = replace(settings, migrate_roots=(imports,))
        log.debug("Migrate reads Chroma directories under %s", imports)
    return database, settings


async def until_stopped() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run(settings: Settings) -> None:
    """Serve until SIGINT / SIGTERM, then stop gracefully. Uses the embedded PostgreSQL without a DATABASE_URL."""
    check_startable(settings)
    async with contextlib.AsyncExitStack() as resources:
        database, settings = await database_for(settings, resources)
        running = await start(settings, database)
        await until_stopped()
        log.info("shutting down (grace %.1fs)", settings.grace_seconds)
        await running.stop()
