"""Migrate: the request and the events of its response stream."""

from __future__ import annotations

from collections.abc import Mapping

from pgvector_grpc_common.migration.events import Event, Phase, Progress, Report, SourceSummary

from pgvector_grpc._convert.collection import collection_from_pb, index_to_pb, metric_from_pb
from pgvector_grpc._convert.decoding import known
from pgvector_grpc.types import Index
from pgvector_grpc.v1 import migration_service_pb2


def migrate_request(
    source: str,
    collection: str,
    *,
    target: str,
    tenant: str,
    database: str,
    headers: Mapping[str, str] | None,
    dry_run: bool,
    restart: bool,
    index: Index | None,
    batch_size: int,
    verify_sample_size: int,
    mirror: bool,
) -> migration_service_pb2.MigrateRequest:
    """A MigrateRequest; ``source`` is a Chroma directory (as the server sees it) or an http(s) URL."""
    chroma = migration_service_pb2.ChromaSource(
        collection=collection, tenant=tenant, database=database, headers=dict(headers or {})
    )
    if source.startswith(("http://", "https://")):
        chroma.url = source
    else:
        chroma.path = source
    request = migration_service_pb2.MigrateRequest(
        chroma=chroma,
        target=target,
        dry_run=dry_run,
        restart=restart,
        batch_size=batch_size,
        verify_sample_size=verify_sample_size,
        mirror=mirror,
    )
    if index is not None:
        request.index.CopyFrom(index_to_pb(index))
    return request


_PHASE_NAMES: dict[int, Phase] = {
    migration_service_pb2.MIGRATE_PHASE_READING: "reading",
    migration_service_pb2.MIGRATE_PHASE_WRITING: "writing",
    migration_service_pb2.MIGRATE_PHASE_MIRRORING: "mirroring",
    migration_service_pb2.MIGRATE_PHASE_INDEXING: "indexing",
    migration_service_pb2.MIGRATE_PHASE_VERIFYING: "verifying",
    migration_service_pb2.MIGRATE_PHASE_DONE: "done",
}


def migration_event_from_pb(pb: migration_service_pb2.MigrateResponse, collection: str) -> Event:
    """The event a MigrateResponse carries."""
    kind = pb.WhichOneof("event")
    if kind == "source":
        s = pb.source
        return SourceSummary(
            collection,
            s.count,
            s.dimension,
            metric_from_pb(s.metric),
            list(s.metadata_keys),
            s.target.name,
            collection_from_pb(s.target).index,
            s.target_exists,
        )
    if kind == "progress":
        p = pb.progress
        return Progress(
            known(_PHASE_NAMES, p.phase, "migration phase"), p.done, p.total, p.rate, p.eta_seconds, p.resumed_from
        )
    r = pb.report
    return Report(
        source_count=r.source_count,
        target_count=r.target_count,
        missing_ids=list(r.missing_ids),
        missing_count=r.missing_count,
        sampled=r.sampled,
        mismatches=list(r.mismatches),
        queries_compared=r.queries_compared,
        queries_matching=r.queries_matching,
        differing_count=r.differing_count,
        extra_ids=list(r.extra_ids),
        extra_count=r.extra_count,
        deleted_count=r.deleted_count,
    )
