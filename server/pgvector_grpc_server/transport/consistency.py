"""The ReadConsistency of a read request, applied to the reads of its call."""

from __future__ import annotations

from pgvector_grpc.v1 import consistency_pb2

from pgvector_grpc_server.domain.consistency import allow_replica_reads
from pgvector_grpc_server.domain.errors import InvalidArgument

_REPLICA_ALLOWED: dict[int, bool] = {
    consistency_pb2.READ_CONSISTENCY_UNSPECIFIED: True,
    consistency_pb2.READ_CONSISTENCY_BOUNDED_STALENESS: True,
    consistency_pb2.READ_CONSISTENCY_PRIMARY: False,
}


def route_reads(consistency: int, field: str = "consistency") -> None:
    """Let a read replica answer the current call's reads unless ``consistency`` asks for the
    primary; INVALID_ARGUMENT naming ``field`` for a value this server does not know."""
    allowed = _REPLICA_ALLOWED.get(consistency)
    if allowed is None:
        raise InvalidArgument.of(field, f"unknown read consistency {consistency}", "BAD_CONSISTENCY")
    allow_replica_reads(allowed)
