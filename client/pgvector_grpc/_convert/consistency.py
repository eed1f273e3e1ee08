"""The ReadConsistency of a read request."""

from __future__ import annotations

from pgvector_grpc.v1 import consistency_pb2


def consistency_pb(read_from_primary: bool) -> consistency_pb2.ReadConsistency.ValueType:
    """The primary when asked, else whatever the server may use (a replica within its lag limit)."""
    if read_from_primary:
        return consistency_pb2.READ_CONSISTENCY_PRIMARY
    return consistency_pb2.READ_CONSISTENCY_UNSPECIFIED
