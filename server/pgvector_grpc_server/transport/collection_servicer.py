"""CollectionService over gRPC."""

from __future__ import annotations

from pgvector_grpc.v1 import collection_service_pb2 as pb
from pgvector_grpc.v1 import collection_service_pb2_grpc

from pgvector_grpc_server.services.collections import Collections
from pgvector_grpc_server.transport.consistency import route_reads
from pgvector_grpc_server.transport.convert import collection_spec_from_pb, collection_to_pb
from pgvector_grpc_server.transport.status import Context, unary


class CollectionServicer(collection_service_pb2_grpc.CollectionServiceServicer):
    """Create, get, list and delete collections."""

    def __init__(self, collections: Collections) -> None:
        self._collections = collections

    @unary
    async def CreateCollection(
        self, request: pb.CreateCollectionRequest, context: Context
    ) -> pb.CreateCollectionResponse:
        spec = collection_spec_from_pb(request.collection)
        info, created = await self._collections.create(
            spec, if_not_exists=request.if_not_exists, defer_index=request.defer_index
        )
        return pb.CreateCollectionResponse(collection=collection_to_pb(info), created=created)

    @unary
    async def GetCollection(self, request: pb.GetCollectionRequest, context: Context) -> pb.GetCollectionResponse:
        route_reads(request.consistency)
        return pb.GetCollectionResponse(collection=collection_to_pb(await self._collections.get(request.name)))

    @unary
    async def ListCollections(self, request: pb.ListCollectionsRequest, context: Context) -> pb.ListCollectionsResponse:
        route_reads(request.consistency)
        infos = await self._collections.list()
        return pb.ListCollectionsResponse(collections=[collection_to_pb(i) for i in infos])

    @unary
    async def BuildIndex(self, request: pb.BuildIndexRequest, context: Context) -> pb.BuildIndexResponse:
        return pb.BuildIndexResponse(collection=collection_to_pb(await self._collections.build_index(request.name)))

    @unary
    async def DeleteCollection(
        self, request: pb.DeleteCollectionRequest, context: Context
    ) -> pb.DeleteCollectionResponse:
        await self._collections.delete(request.name)
        return pb.DeleteCollectionResponse()
