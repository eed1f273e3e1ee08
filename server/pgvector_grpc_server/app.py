"""Composition root: schema, pool, services, servicers, health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, replace
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pgvector_grpc.v1 import (
    collection_service_pb2,
    collection_service_pb2_grpc,
    document_service_pb2,
    document_service_pb2_grpc,
    migration_service_pb2,
    migration_service_pb2_grpc,
)

from pgvector_grpc_server.access import UnsafeConfiguration, auth_interceptor, server_credentials
from pgvector_grpc_server.services.collections import Collections
from pgvector_grpc_server.services.documents import Documents, Limits
from pgvector_grpc_server.services.migration import Migrations
from pgvector_grpc_server.services.migration_sources import SourcePolicy
from pgvector_grpc_server.settings import Settings
from pgvector_grpc_server.storage.collections import CollectionStore
from pgvector_grpc_server.storage.documents import DocumentStore
from pgvector_grpc_server.storage.pool import Pool, open_pool, ping
from pgvector_grpc_server.storage.roles import ensure_app_role, role_problems
from pgvector_grpc_server.storage.schema import apply_schema
from pgvector_grpc_server.storage.search import SearchStore
from pgvector_grpc_server.transport.collection_servicer import CollectionServicer
from pgvector_grpc_server.transport.decoding import DecodeErrorInterceptor
from pgvector_grpc_server.transport.document_servicer import DocumentServicer
from pgvector_grpc_server.transport.health import DatabaseHealth
from pgvector_grpc_server.transport.migration_servicer import MigrationServicer

log = logging.getLogger(__name__)

SERVICE_NAMES = [
    collection_service_pb2.DESCRIPTOR.services_by_name["CollectionService"].full_name,
    document_service_pb2.DESCRIPTOR.services_by_name["DocumentService"].full_name,
    migration_service_pb2.DESCRIPTOR.services_by_name["MigrationService"].full_name,
]


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


@dataclass
class RunningServer:
    """A started server: its bound port and what must be closed on stop."""

    server: grpc.aio.Server
    pool: Pool
    health: DatabaseHealth
    port: int
    grace: float

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, drain in-flight calls for ``grace`` seconds, close the pool."""
        await self.health.shutdown()
        await self.server.stop(self.grace if grace is None else grace)
        await self.pool.close()


def _server_options(settings: Settings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
    ]


async def start(settings: Settings, database: Database) -> RunningServer:
    """Start serving on ``settings.listen`` against ``database``."""
    credentials = server_credentials(settings)
    pool = await open_pool(
        await pool_conninfo(settings, database),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        max_waiting=settings.pool_max_waiting,
        timeout=settings.pool_timeout,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    try:
        interceptor = await auth_interceptor(settings, pool)
    except BaseException:
        await pool.close()
        raise
    collections = Collections(CollectionStore(pool), settings.index_build_memory)
    limits = Limits(
        settings.max_top_k,
        settings.max_batch_documents,
        settings.read_ahead_batches,
        min(settings.ingest_parallel_batches, settings.pool_max_size),
    )
    documents = Documents(collections, DocumentStore(pool), SearchStore(pool, settings.default_ef_search), limits)

    server = grpc.aio.server(options=_server_options(settings), interceptors=[DecodeErrorInterceptor(), interceptor])
    collection_service_pb2_grpc.add_CollectionServiceServicer_to_server(CollectionServicer(collections), server)
    document_service_pb2_grpc.add_DocumentServiceServicer_to_server(
        DocumentServicer(documents, settings.search_stream_concurrency), server
    )
    policy = SourcePolicy.of(
        settings.migrate_roots or (),
        settings.migrate_allow_hosts,
        settings.migrate_max_bytes,
        settings.migrate_min_free_bytes,
    )
    migration_service_pb2_grpc.add_MigrationServiceServicer_to_server(
        MigrationServicer(Migrations(collections, documents, policy)), server
    )
    health = DatabaseHealth(lambda: ping(pool), SERVICE_NAMES, settings.health_interval)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    if settings.reflection:
        names = [*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
    port = _bind(server, settings.listen, credentials)
    await health.start()
    await server.start()
    log.info("serving on %s (port %d)", settings.listen, port)
    return RunningServer(server, pool, health, port, settings.grace_seconds)


def _bind(server: grpc.aio.Server, listen: str, credentials: grpc.ServerCredentials | None) -> int:
    if credentials is not None:
        return server.add_secure_port(listen, credentials)
    return server.add_insecure_port(listen)


async def database_for(settings: Settings, resources: contextlib.AsyncExitStack) -> tuple[Database, Settings]:
    """The database ``settings`` name, or the embedded PostgreSQL started (and stopped with
    ``resources``) when they name none; and the settings with the embedded server's defaults."""
    if settings.database_url or settings.admin_database_url:
        return Database.from_settings(settings), settings
    from pgvector_grpc_server.supervision import supervised_embedded_postgres

    supervisor = await resources.enter_async_context(supervised_embedded_postgres(settings.data_dir))
    database = Database.from_settings(settings, embedded=supervisor.postgres.conninfo)
    if settings.migrate_roots is None:
        imports = settings.imports_directory()
        imports.mkdir(mode=0o700, exist_ok=True)
        settings = replace(settings, migrate_roots=(imports,))
        log.info("Migrate reads Chroma directories under %s", imports)
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
    async with contextlib.AsyncExitStack() as resources:
        database, settings = await database_for(settings, resources)
        running = await start(settings, database)
        print(f"pgvector-grpc listening on {settings.listen}", flush=True)
        await until_stopped()
        log.info("shutting down (grace %.1fs)", settings.grace_seconds)
        await running.stop()
