"""Search and SearchStream: requests and hits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pgvector_grpc._convert.consistency import consistency_pb
from pgvector_grpc._convert.document import document_from_pb, include_pb, vector_to_pb, with_filter
from pgvector_grpc.errors import from_status
from pgvector_grpc.filters import FilterLike
from pgvector_grpc.types import SearchHit, SearchMode, SearchResults
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
    query_text: str | None = None,
    mode: SearchMode | None = None,
    rrf_k: int | None = None,
    vector_weight: float | None = None,
    keyword_weight: float | None = None,
    candidates: int | None = None,
    read_from_primary: bool = False,
    rerank_factor: int | None = None,
    probes: int | None = None,
) -> document_service_pb2.SearchRequest:
    """A SearchRequest (without an embedding for a keyword search)."""
    if mode is not None and mode not in _MODES:
        raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
    request = document_service_pb2.SearchRequest(
        collection=collection,
        top_k=top_k,
        include=include_pb(include_content, include_metadata, include_embedding),
        ef_search=ef_search or 0,
        exact=exact,
        query_text=query_text or "",
        consistency=consistency_pb(read_from_primary),
        rerank_factor=rerank_factor or 0,
        probes=probes or 0,
    )
    if embedding is not None:
        request.embedding.CopyFrom(vector_to_pb(embedding))
    with_filter(request, filter)
    if min_similarity is not None:
        request.min_similarity = min_similarity
    hybrid = request.hybrid
    hybrid.mode = _MODES[mode] if mode is not None else document_service_pb2.SEARCH_MODE_UNSPECIFIED
    if rrf_k is not None:
        hybrid.rrf_k = rrf_k
    if vector_weight is not None:
        hybrid.vector_weight = vector_weight
    if keyword_weight is not None:
        hybrid.keyword_weight = keyword_weight
    hybrid.candidates = candidates or 0
    if hybrid.ByteSize() == 0:
        request.ClearField("hybrid")
    return request


_MODES: dict[str, document_service_pb2.SearchMode.ValueType] = {
    "vector": document_service_pb2.SEARCH_MODE_VECTOR,
    "keyword": document_service_pb2.SEARCH_MODE_KEYWORD,
    "hybrid": document_service_pb2.SEARCH_MODE_HYBRID,
}


SEARCH_DEFAULTS: dict[str, Any] = {
    "top_k": 10,
    "filter": None,
    "min_similarity": None,
    "include_content": True,
    "include_metadata": True,
    "include_embedding": False,
    "ef_search": None,
    "exact": False,
    "read_from_primary": False,
    "rerank_factor": None,
    "probes": None,
    "mode": None,
    "rrf_k": None,
    "vector_weight": None,
    "keyword_weight": None,
    "candidates": None,
}


def search_stream_requests(
    collection: str,
    embeddings: Iterable[Any],
    options: Mapping[str, Any],
    query_texts: Iterable[str | None] | None = None,
) -> Iterator[document_service_pb2.SearchStreamRequest]:
    """SearchStreamRequests numbered from 0, with ``search``'s options (defaults for the rest);
    with ``query_texts``, query i searches ``query_texts[i]`` too (None: by its embedding alone).
    Bad options, or texts that do not pair with the embeddings, raise before the stream starts."""
    unknown = set(options) - set(SEARCH_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown search options: {sorted(unknown)}")
    merged = {**SEARCH_DEFAULTS, **options}
    queries: Iterable[tuple[Any, str | None]]
    if query_texts is None:
        queries = ((embedding, None) for embedding in embeddings)
    else:
        vectors, texts = list(embeddings), list(query_texts)
        if len(vectors) != len(texts):
            raise ValueError(f"query_texts has {len(texts)} entries for {len(vectors)} embeddings")
        queries = zip(vectors, texts, strict=True)
    return (
        document_service_pb2.SearchStreamRequest(
            request_id=str(i), query=search_request(collection, embedding, query_text=query_text, **merged)
        )
        for i, (embedding, query_text) in enumerate(queries)
    )


def results_from_pb(
    response: document_service_pb2.SearchResponse | document_service_pb2.SearchStreamResponse,
) -> SearchResults:
    """The hits of an answer, with its exhaustive flag."""
    hits = []
    for hit in response.hits:
        doc = document_from_pb(hit.document)
        hits.append(
            SearchHit(
                doc.id,
                hit.score,
                hit.distance,
                doc.content,
                doc.metadata,
                doc.embedding,
                hit.vector_score if hit.HasField("vector_score") else None,
                hit.keyword_rank if hit.HasField("keyword_rank") else None,
                hit.fused_score if hit.HasField("fused_score") else None,
            )
        )
    return SearchResults(hits, response.exhaustive)


def search_stream_result(response: document_service_pb2.SearchStreamResponse) -> SearchResults:
    """The hits of one SearchStream answer; its error, typed and with its details, if the query failed."""
    if response.HasField("status") and response.status.code:
        raise from_status(response.status)
    return results_from_pb(response)
