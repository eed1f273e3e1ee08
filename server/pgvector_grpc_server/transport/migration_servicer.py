"""MigrationService over gRPC (declared in v1; the copy itself is not implemented yet)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from pgvector_grpc.v1 import migration_service_pb2 as pb
from pgvector_grpc.v1 import migration_service_pb2_grpc

from pgvector_grpc_server.transport.status import Context


class MigrationServicer(migration_service_pb2_grpc.MigrationServiceServicer):
    """Migrate answers UNIMPLEMENTED until the ChromaDB reader lands."""

    async def Migrate(self, request: pb.MigrateRequest, context: Context) -> AsyncIterator[pb.MigrateResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Migrate is not implemented by this server version yet")
        yield pb.MigrateResponse()  # pragma: no cover - makes this an async generator
