"""DocumentService over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pgvector_grpc.v1 import document_service_pb2 as pb
from pgvector_grpc.v1 import document_service_pb2_grpc

from pgvector_grpc_server.domain.errors import InvalidArgument
from pgvector_grpc_server.domain.models import IngestBatch
from pgvector_grpc_server.services.documents import Documents
from pgvector_grpc_server.transport.concurrency import answered_concurrently
from pgvector_grpc_server.transport.consistency import route_reads
from pgvector_grpc_server.transport.convert import (
    field_info_to_pb,
    filter_from_holder,
    hit_to_pb,
    include_from_pb,
    ingest_batch_from_pb,
    order_from_pb,
    search_query_from_pb,
    stored_to_pb,
)
from pgvector_grpc_server.transport.status import Context, as_domain_error, status_of, streaming, unary


async def _batches(requests: AsyncIterator[pb.IngestRequest]) -> AsyncIterator[IngestBatch]:
    async for request in requests:
        yield ingest_batch_from_pb(request)


class DocumentServicer(document_service_pb2_grpc.DocumentServiceServicer):
    """Ingest, search and read documents."""

    def __init__(self, documents: Documents, search_stream_concurrency: int = 4) -> None:
        self._documents = documents
        self._concurrency = search_stream_concurrency

    @streaming
    async def Ingest(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: Context
    ) -> AsyncIterator[pb.IngestResponse]:
        async for ack in self._documents.ingest(_batches(request_iterator)):
            result = ack.result
            yield pb.IngestResponse(
                sequence=ack.sequence, inserted=result.inserted, updated=result.updated, skipped=result.skipped
            )

    @unary
    async def Search(self, request: pb.SearchRequest, context: Context) -> pb.SearchResponse:
        route_reads(request.consistency)
        result = await self._documents.search(search_query_from_pb(request))
        return pb.SearchResponse(hits=map(hit_to_pb, result.hits), exhaustive=result.exhaustive)

    @streaming
    async def SearchStream(
        self, request_iterator: AsyncIterator[pb.SearchStreamRequest], context: Context
    ) -> AsyncIterator[pb.SearchStreamResponse]:
        """Answer queries concurrently (bounded); a failed query answers with its status, the stream goes on.
        A request stream that fails (e.g. an undecodable message) ends the call with its status."""
        async for response in answered_concurrently(request_iterator, self._answer, self._concurrency):
            yield response

    async def _answer(self, request: pb.SearchStreamRequest) -> pb.SearchStreamResponse:
        """One SearchStream answer: the hits, or the status the query failed with."""
        try:
            route_reads(request.query.consistency)  # this query's task only
            result = await self._documents.search(search_query_from_pb(request.query))
        except Exception as exc:
            error = as_domain_error(exc)
            if isinstance(error, InvalidArgument):
                error = error.under("query.")
            status = status_of(error)
            return pb.SearchStreamResponse(
                request_id=request.request_id, status=status, error_code=status.code, error_message=status.message
            )
        return pb.SearchStreamResponse(
            request_id=request.request_id, hits=map(hit_to_pb, result.hits), exhaustive=result.exhaustive
        )

    @unary
    async def GetDocuments(self, request: pb.GetDocumentsRequest, context: Context) -> pb.GetDocumentsResponse:
        route_reads(request.consistency)
        docs = await self._documents.get(request.collection, list(request.ids), include_from_pb(request))
        return pb.GetDocumentsResponse(documents=[stored_to_pb(d) for d in docs])

    @unary
    async def DeleteDocuments(self, request: pb.DeleteDocumentsRequest, context: Context) -> pb.DeleteDocumentsResponse:
        ids = list(request.ids) or None
        deleted = await self._documents.delete(
            request.collection, ids, filter_from_holder(request), request.all_documents
        )
        return pb.DeleteDocumentsResponse(deleted=deleted)

    @unary
    async def CountDocuments(self, request: pb.CountDocumentsRequest, context: Context) -> pb.CountDocumentsResponse:
        route_reads(request.consistency)
        count = await self._documents.count(request.collection, filter_from_holder(request))
        return pb.CountDocumentsResponse(count=count)

    @unary
    async def GetCheckpoint(self, request: pb.GetCheckpointRequest, context: Context) -> pb.GetCheckpointResponse:
        value = await self._documents.checkpoint(request.collection, request.key)
        if value is None:
            return pb.GetCheckpointResponse(found=False)
        return pb.GetCheckpointResponse(found=True, checkpoint=pb.Checkpoint(key=request.key, value=value))

    @unary
    async def ListDocuments(self, request: pb.ListDocumentsRequest, context: Context) -> pb.ListDocumentsResponse:
        route_reads(request.consistency)
        docs, token = await self._documents.list_page(
            request.collection,
            filter_from_holder(request),
            request.page_size,
            request.page_token,
            include_from_pb(request),
            order_from_pb(request.order),
        )
        return pb.ListDocumentsResponse(documents=[stored_to_pb(d) for d in docs], next_page_token=token)

    @unary
    async def UpdateMetadata(self, request: pb.UpdateMetadataRequest, context: Context) -> pb.UpdateMetadataResponse:
        updated = await self._documents.update_metadata(
            request.collection,
            list(request.ids) or None,
            filter_from_holder(request),
            request.all_documents,
            request.metadata_json,
        )
        return pb.UpdateMetadataResponse(updated=updated)

    @unary
    async def DescribeMetadata(
        self, request: pb.DescribeMetadataRequest, context: Context
    ) -> pb.DescribeMetadataResponse:
        route_reads(request.consistency)
        fields = await self._documents.describe_metadata(request.collection, filter_from_holder(request))
        return pb.DescribeMetadataResponse(fields=[field_info_to_pb(f) for f in fields])

    @unary
    async def GetFieldValues(self, request: pb.GetFieldValuesRequest, context: Context) -> pb.GetFieldValuesResponse:
        route_reads(request.consistency)
        page = await self._documents.field_values(
            request.collection,
            list(request.path),
            filter_from_holder(request),
            request.search_term,
            request.offset,
            request.page_size,
            request.count_only,
        )
        return pb.GetFieldValuesResponse(values_json=page.values_json, total=page.total)

    @unary
    async def GetFieldRange(self, request: pb.GetFieldRangeRequest, context: Context) -> pb.GetFieldRangeResponse:
        route_reads(request.consistency)
        found = await self._documents.field_range(request.collection, list(request.path), filter_from_holder(request))
        if found is None:
            return pb.GetFieldRangeResponse(found=False)
        return pb.GetFieldRangeResponse(found=True, min_json=found.min_json, max_json=found.max_json)
