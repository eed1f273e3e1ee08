"""MigrationService over gRPC: Migrate streams the engine's events as MigrateResponses."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pgvector_grpc.v1 import migration_service_pb2 as pb
from pgvector_grpc.v1 import migration_service_pb2_grpc
from pgvector_grpc_common.migration.events import Event, Progress, Report, SourceSummary
from pgvector_grpc_common.migration.options import DEFAULT_BATCH_SIZE, DEFAULT_SAMPLE_SIZE, MigrationOptions
from pgvector_grpc_common.migration.sources.chroma import ChromaLocation

from pgvector_grpc_server.domain.models import CollectionInfo, CollectionSpec
from pgvector_grpc_server.services.migration import Migrations
from pgvector_grpc_server.transport.convert import collection_to_pb, index_from_pb, metric_to_pb
from pgvector_grpc_server.transport.status import Context, streaming

_PHASES = {
    "reading": pb.MIGRATE_PHASE_READING,
    "writing": pb.MIGRATE_PHASE_WRITING,
    "mirroring": pb.MIGRATE_PHASE_MIRRORING,
    "indexing": pb.MIGRATE_PHASE_INDEXING,
    "verifying": pb.MIGRATE_PHASE_VERIFYING,
    "done": pb.MIGRATE_PHASE_DONE,
}


def options_from_pb(request: pb.MigrateRequest) -> MigrationOptions:
    """The engine's options; unset numbers take the documented defaults."""
    index = None
    if request.HasField("index"):
        index = index_from_pb(request.index, "index")
    return MigrationOptions(
        target=request.target,
        dry_run=request.dry_run,
        restart=request.restart,
        index=index,
        batch_size=request.batch_size or DEFAULT_BATCH_SIZE,
        verify_sample_size=request.verify_sample_size or DEFAULT_SAMPLE_SIZE,
        mirror=request.mirror,
    )


def location_from_pb(source: pb.ChromaSource) -> ChromaLocation:
    """Where the Chroma store is."""
    kind = source.WhichOneof("location")
    return ChromaLocation(
        path=source.path if kind == "path" else None,
        url=source.url if kind == "url" else None,
        tenant=source.tenant,
        database=source.database,
        headers=dict(source.headers),
    )


def event_to_pb(event: Event) -> pb.MigrateResponse:
    """One MigrateResponse."""
    if isinstance(event, SourceSummary):
        spec = CollectionSpec(event.target, event.dimension, event.metric, event.index)
        target = collection_to_pb(CollectionInfo(spec, 0))
        return pb.MigrateResponse(
            source=pb.SourceInfo(
                count=event.count,
                dimension=event.dimension,
                metric=metric_to_pb(event.metric),
                metadata_keys=event.metadata_keys,
                target=target,
                target_exists=event.target_exists,
            )
        )
    if isinstance(event, Progress):
        return pb.MigrateResponse(
            progress=pb.MigrateProgress(
                phase=_PHASES[event.phase],
                done=event.done,
                total=event.total,
                rate=event.rate,
                eta_seconds=event.eta_seconds,
                resumed_from=event.resumed_from,
            )
        )
    assert isinstance(event, Report)
    return pb.MigrateResponse(
        report=pb.VerificationReport(
            ok=event.ok,
            source_count=event.source_count,
            target_count=event.target_count,
            missing_ids=event.missing_ids,
            missing_count=event.missing_count,
            sampled=event.sampled,
            mismatches=event.mismatches,
            queries_compared=event.queries_compared,
            queries_matching=event.queries_matching,
            differing_count=event.differing_count,
            extra_ids=event.extra_ids,
            extra_count=event.extra_count,
            deleted_count=event.deleted_count,
        )
    )


class MigrationServicer(migration_service_pb2_grpc.MigrationServiceServicer):
    """Migrate a ChromaDB collection the server can reach."""

    def __init__(self, migrations: Migrations) -> None:
        self._migrations = migrations

    @streaming
    async def Migrate(self, request: pb.MigrateRequest, context: Context) -> AsyncIterator[pb.MigrateResponse]:
        events = self._migrations.run(
            location_from_pb(request.chroma), request.chroma.collection, options_from_pb(request)
        )
        async for event in events:
            yield event_to_pb(event)
