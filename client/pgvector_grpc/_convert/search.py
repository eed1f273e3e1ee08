"""Search and SearchStream: requests and hits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pgvector_grpc._convert.document import document_from_pb, include_pb, vector_to_pb, with_filter
from pgvector_grpc.errors import from_status
from pgvector_grpc.filters import FilterLike
from pgvector_grpc.types import SearchHit, SearchResults
from pgvector_grpc.v1 import document_service_pb2


def search_request(
    collection: str,
    embedding: Any,
    *,
    top_k: int,
    filter: FilterLike | None,
    min_similarity: float | None,
    include_content: bool,
    include_metadata: bool,
    include_embedding: bool,
    ef_search: int | None,
    exact: bool = False,
    rerank_factor: int | None = None,
) -> document_service_pb2.SearchRequest:
    """A SearchRequest."""
    request = document_service_pb2.SearchRequest(
        collection=collection,
        embedding=vector_to_pb(embedding),
        top_k=top_k,
        include=include_pb(include_content, include_metadata, include_embedding),
        ef_search=ef_search or 0,
        exact=exact,
        rerank_factor=rerank_factor or 0,
    )
    with_filter(request, filter)
    if min_similarity is not None:
        request.min_similarity = min_similarity
    return request


SEARCH_DEFAULTS: dict[str, Any] = {
    "top_k": 10,
    "filter": None,
    "min_similarity": None,
    "include_content": True,
    "include_metadata": True,
    "include_embedding": False,
    "ef_search": None,
    "exact": False,
    "rerank_factor": None,
}


def search_stream_requests(
    collection: str, embeddings: Iterable[Any], options: Mapping[str, Any]
) -> Iterator[document_service_pb2.SearchStreamRequest]:
    """SearchStreamRequests numbered from 0, with ``search``'s options (defaults for the rest)."""
    unknown = set(options) - set(SEARCH_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown search options: {sorted(unknown)}")
    merged = {**SEARCH_DEFAULTS, **options}
    for i, embedding in enumerate(embeddings):
        yield document_service_pb2.SearchStreamRequest(
            request_id=str(i), query=search_request(collection, embedding, **merged)
        )


def results_from_pb(
    response: document_service_pb2.SearchResponse | document_service_pb2.SearchStreamResponse,
) -> SearchResults:
    """The hits of an answer, with its exhaustive flag."""
    hits = []
    for hit in response.hits:
        doc = document_from_pb(hit.document)
        hits.append(SearchHit(doc.id, hit.score, hit.distance, doc.content, doc.metadata, doc.embedding))
    return SearchResults(hits, response.exhaustive)


def search_stream_result(response: document_service_pb2.SearchStreamResponse) -> SearchResults:
    """The hits of one SearchStream answer; its error, typed and with its details, if the query failed."""
    if response.HasField("status") and response.status.code:
        raise from_status(response.status)
    return results_from_pb(response)
