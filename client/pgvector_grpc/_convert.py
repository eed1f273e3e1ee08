"""Pure conversions shared by both clients: request builders and response parsers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from pgvector_grpc_common.metadata_json import metadata_json
from pgvector_grpc_common.migration.events import Event, Phase, Progress, Report, SourceSummary

from pgvector_grpc.errors import error_for
from pgvector_grpc.filters import FilterLike, to_filter_pb
from pgvector_grpc.types import (
    Collection,
    Document,
    Embedding,
    HnswIndex,
    Index,
    IngestAck,
    IvfflatIndex,
    Metric,
    NoIndex,
    OnConflict,
    SearchHit,
)
from pgvector_grpc.v1 import collection_pb2, document_pb2, document_service_pb2, migration_service_pb2

DocumentLike = Document | Mapping[str, Any]
RequestT = TypeVar("RequestT")

_METRICS: dict[str, int] = {
    "cosine": collection_pb2.METRIC_COSINE,
    "l2": collection_pb2.METRIC_L2,
    "inner_product": collection_pb2.METRIC_INNER_PRODUCT,
}
_METRIC_NAMES = {v: k for k, v in _METRICS.items()}
_POLICIES = {
    "upsert": document_service_pb2.CONFLICT_POLICY_UPSERT,
    "skip": document_service_pb2.CONFLICT_POLICY_SKIP,
    "fail": document_service_pb2.CONFLICT_POLICY_FAIL,
}


def vector_to_pb(value: Any) -> document_pb2.Vector:
    """A packed little-endian float32 Vector."""
    return document_pb2.Vector(packed=np.asarray(value, dtype="<f4").reshape(-1).tobytes())


def vector_from_pb(pb: document_pb2.Vector) -> Embedding | None:
    """The values of a Vector (float64 when the server kept them exactly), or None when it is empty."""
    if pb.packed_f64:
        return np.frombuffer(pb.packed_f64, dtype="<f8").astype(np.float64)
    if pb.packed:
        return np.frombuffer(pb.packed, dtype="<f4").astype(np.float32)
    if len(pb.values):
        return np.array(pb.values, dtype=np.float32)
    return None


def document_to_pb(value: DocumentLike, pb: document_pb2.Document | None = None) -> document_pb2.Document:
    """A Document message (filled in place when ``pb`` is given); missing content and embedding stay unset."""
    doc = Document.from_value(value)
    pb = document_pb2.Document() if pb is None else pb
    pb.id = doc.id
    pb.metadata_json = metadata_json(doc.metadata)
    if doc.content is not None:
        pb.content = doc.content
    if doc.embedding is not None:
        single = doc.embedding.astype("<f4")
        if doc.embedding.dtype == np.float64 and not np.array_equal(single, doc.embedding):
            pb.embedding.packed_f64 = doc.embedding.astype("<f8", copy=False).tobytes()  # float32 would round
        else:
            pb.embedding.packed = single.tobytes()
    return pb


def document_from_pb(pb: document_pb2.Document) -> Document:
    """A Document from its message."""
    return Document(
        pb.id,
        pb.content if pb.HasField("content") else None,
        json.loads(pb.metadata_json) if pb.metadata_json else {},
        vector_from_pb(pb.embedding) if pb.HasField("embedding") else None,
    )


def index_to_pb(index: Index | None) -> collection_pb2.IndexSpec:
    """An IndexSpec (None = HNSW with defaults)."""
    if isinstance(index, IvfflatIndex):
        return collection_pb2.IndexSpec(ivfflat=collection_pb2.IvfflatIndex(lists=index.lists))
    if isinstance(index, NoIndex):
        return collection_pb2.IndexSpec(none=collection_pb2.NoIndex())
    index = index or HnswIndex()
    return collection_pb2.IndexSpec(hnsw=collection_pb2.HnswIndex(m=index.m, ef_construction=index.ef_construction))


def collection_to_pb(name: str, dimension: int, metric: Metric, index: Index | None) -> collection_pb2.Collection:
    """A Collection message to create."""
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    return collection_pb2.Collection(name=name, dimension=dimension, metric=_METRICS[metric], index=index_to_pb(index))  # type: ignore[arg-type]


def collection_from_pb(pb: collection_pb2.Collection) -> Collection:
    """A Collection from its message."""
    kind = pb.index.WhichOneof("kind")
    index: Index
    if kind == "ivfflat":
        index = IvfflatIndex(pb.index.ivfflat.lists)
    elif kind == "none":
        index = NoIndex()
    else:
        index = HnswIndex(pb.index.hnsw.m, pb.index.hnsw.ef_construction)
    return Collection(pb.name, pb.dimension, _METRIC_NAMES[pb.metric], index, pb.document_count)  # type: ignore[arg-type]


def include_pb(content: bool, metadata: bool, embedding: bool) -> document_pb2.Include:
    """An Include message."""
    return document_pb2.Include(content=content, metadata=metadata, embedding=embedding)


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
) -> document_service_pb2.SearchRequest:
    """A SearchRequest."""
    request = document_service_pb2.SearchRequest(
        collection=collection,
        embedding=vector_to_pb(embedding),
        top_k=top_k,
        include=include_pb(include_content, include_metadata, include_embedding),
        ef_search=ef_search or 0,
        exact=exact,
    )
    _with_filter(request, filter)
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


def hits_from_pb(hits: Iterable[document_service_pb2.SearchHit]) -> list[SearchHit]:
    """SearchHits from their messages."""
    result = []
    for hit in hits:
        doc = document_from_pb(hit.document)
        result.append(SearchHit(doc.id, hit.score, hit.distance, doc.content, doc.metadata, doc.embedding))
    return result


def search_stream_result(response: document_service_pb2.SearchStreamResponse) -> list[SearchHit]:
    """The hits of one SearchStream answer; its error, typed, if the query failed."""
    if response.error_code:
        import grpc

        raise error_for(grpc.StatusCode(_status_tuple(response.error_code)), response.error_message)
    return hits_from_pb(response.hits)


def _status_tuple(code: int) -> tuple[int, str]:
    import grpc

    values: list[tuple[int, str]] = [c.value for c in grpc.StatusCode if c.value[0] == code]
    return values[0]


def policy_pb(on_conflict: OnConflict) -> int:
    """The ConflictPolicy value."""
    if on_conflict not in _POLICIES:
        raise ValueError(f"on_conflict must be one of {sorted(_POLICIES)}, got {on_conflict!r}")
    return _POLICIES[on_conflict]


class _Batcher:
    """Collects documents into IngestRequests of ``batch_size``.

    With a checkpoint, one full request is held back so that the checkpoint can ride on the
    last request of the call."""

    def __init__(
        self, collection: str, batch_size: int, on_conflict: OnConflict, checkpoint: tuple[str, str] | None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._collection = collection
        self._policy = policy_pb(on_conflict)
        self._size = batch_size
        self._checkpoint = checkpoint
        self._held: document_service_pb2.IngestRequest | None = None
        self._request = self._new_request()

    def _new_request(self) -> document_service_pb2.IngestRequest:
        return document_service_pb2.IngestRequest(collection=self._collection, on_conflict=self._policy)  # type: ignore[arg-type]

    def add(self, doc: DocumentLike) -> document_service_pb2.IngestRequest | None:
        """A request ready to send once ``batch_size`` documents are in, else None."""
        document_to_pb(doc, self._request.documents.add())  # built in place: no per-document copy
        if len(self._request.documents) < self._size:
            return None
        full, self._request = self._request, self._new_request()
        if self._checkpoint is None:
            return full
        ready, self._held = self._held, full
        return ready

    def finish(self) -> list[document_service_pb2.IngestRequest]:
        """The requests still to send, the checkpoint set on the last one."""
        pending = [r for r in (self._held, self._request) if r is not None and r.documents]
        if pending and self._checkpoint is not None:
            pending[-1].checkpoint.key, pending[-1].checkpoint.value = self._checkpoint
        return pending


def ingest_requests(
    collection: str,
    documents: Iterable[DocumentLike],
    batch_size: int,
    on_conflict: OnConflict,
    checkpoint: tuple[str, str] | None = None,
) -> Iterator[document_service_pb2.IngestRequest]:
    """Lazily batch any iterable into IngestRequests (constant memory)."""
    batcher = _Batcher(collection, batch_size, on_conflict, checkpoint)
    for doc in documents:
        if request := batcher.add(doc):
            yield request
    yield from batcher.finish()


async def ingest_requests_async(
    collection: str,
    documents: Iterable[DocumentLike] | AsyncIterable[DocumentLike],
    batch_size: int,
    on_conflict: OnConflict,
    checkpoint: tuple[str, str] | None = None,
) -> AsyncIterator[document_service_pb2.IngestRequest]:
    """The asyncio twin of :func:`ingest_requests`, also for async iterables."""
    if not isinstance(documents, AsyncIterable):
        for each in ingest_requests(collection, documents, batch_size, on_conflict, checkpoint):
            yield each
        return
    batcher = _Batcher(collection, batch_size, on_conflict, checkpoint)
    async for doc in documents:
        if request := batcher.add(doc):
            yield request
    for each in batcher.finish():
        yield each


def ack_from_pb(pb: document_service_pb2.IngestResponse) -> IngestAck:
    """An IngestAck."""
    return IngestAck(pb.sequence, pb.inserted, pb.updated, pb.skipped)


FieldPath = str | Sequence[str]
_ORDERS = {"id": document_service_pb2.DOCUMENT_ORDER_ID, "insertion": document_service_pb2.DOCUMENT_ORDER_INSERTION}
_VALUE_TYPE_NAMES = {
    document_service_pb2.VALUE_TYPE_STRING: "string",
    document_service_pb2.VALUE_TYPE_INTEGER: "integer",
    document_service_pb2.VALUE_TYPE_FLOAT: "float",
    document_service_pb2.VALUE_TYPE_BOOLEAN: "boolean",
    document_service_pb2.VALUE_TYPE_NULL: "null",
    document_service_pb2.VALUE_TYPE_ARRAY: "array",
    document_service_pb2.VALUE_TYPE_OBJECT: "object",
}


def _with_filter(request: RequestT, filter: FilterLike | None) -> RequestT:
    filter_pb = to_filter_pb(filter)
    if filter_pb is not None:
        request.filter.CopyFrom(filter_pb)  # type: ignore[attr-defined]
    return request


def field_path(field: FieldPath) -> list[str]:
    """A metadata path: a string is one top-level key (dots included), a sequence is nested keys."""
    return [field] if isinstance(field, str) else list(field)


def delete_request(
    collection: str, ids: Sequence[str] | None, filter: FilterLike | None, all_documents: bool
) -> document_service_pb2.DeleteDocumentsRequest:
    """A DeleteDocumentsRequest."""
    request = document_service_pb2.DeleteDocumentsRequest(
        collection=collection, ids=list(ids or ()), all_documents=all_documents
    )
    return _with_filter(request, filter)


def update_request(
    collection: str,
    metadata: Mapping[str, Any],
    ids: Sequence[str] | None,
    filter: FilterLike | None,
    all_documents: bool,
) -> document_service_pb2.UpdateMetadataRequest:
    """An UpdateMetadataRequest."""
    request = document_service_pb2.UpdateMetadataRequest(
        collection=collection,
        ids=list(ids or ()),
        all_documents=all_documents,
        metadata_json=metadata_json(dict(metadata)),
    )
    return _with_filter(request, filter)


def count_request(collection: str, filter: FilterLike | None) -> document_service_pb2.CountDocumentsRequest:
    """A CountDocumentsRequest."""
    return _with_filter(document_service_pb2.CountDocumentsRequest(collection=collection), filter)


def list_request(
    collection: str, filter: FilterLike | None, page_size: int, include_embedding: bool, order: str = "id"
) -> document_service_pb2.ListDocumentsRequest:
    """The first ListDocumentsRequest (set page_token for the next pages)."""
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {sorted(_ORDERS)}, got {order!r}")
    request = document_service_pb2.ListDocumentsRequest(
        collection=collection,
        page_size=page_size,
        include=include_pb(True, True, include_embedding),
        order=_ORDERS[order],
    )
    return _with_filter(request, filter)


def describe_request(collection: str, filter: FilterLike | None) -> document_service_pb2.DescribeMetadataRequest:
    """A DescribeMetadataRequest."""
    return _with_filter(document_service_pb2.DescribeMetadataRequest(collection=collection), filter)


def fields_from_pb(response: document_service_pb2.DescribeMetadataResponse) -> dict[str, dict[str, int]]:
    """{field: {value type: documents}}, types most frequent first."""
    return {f.name: {_VALUE_TYPE_NAMES[t.type]: t.count for t in f.types} for f in response.fields}


def field_values_request(
    collection: str,
    field: FieldPath,
    filter: FilterLike | None,
    search_term: str,
    offset: int,
    page_size: int,
    count_only: bool = False,
) -> document_service_pb2.GetFieldValuesRequest:
    """A GetFieldValuesRequest."""
    request = document_service_pb2.GetFieldValuesRequest(
        collection=collection,
        path=field_path(field),
        search_term=search_term,
        offset=offset,
        page_size=page_size,
        count_only=count_only,
    )
    return _with_filter(request, filter)


def field_values_from_pb(response: document_service_pb2.GetFieldValuesResponse) -> tuple[list[Any], int]:
    """(values, total)."""
    return [json.loads(v) for v in response.values_json], response.total


def field_range_request(
    collection: str, field: FieldPath, filter: FilterLike | None
) -> document_service_pb2.GetFieldRangeRequest:
    """A GetFieldRangeRequest."""
    request = document_service_pb2.GetFieldRangeRequest(collection=collection, path=field_path(field))
    return _with_filter(request, filter)


def field_range_from_pb(response: document_service_pb2.GetFieldRangeResponse) -> tuple[Any, Any] | None:
    """(min, max), or None when no document has a value."""
    if not response.found:
        return None
    return json.loads(response.min_json), json.loads(response.max_json)


# -- migration ----------------------------------------------------------------------------------


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
    )
    if index is not None:
        request.index.CopyFrom(index_to_pb(index))
    return request


_PHASE_NAMES: dict[int, Phase] = {
    migration_service_pb2.MIGRATE_PHASE_READING: "reading",
    migration_service_pb2.MIGRATE_PHASE_WRITING: "writing",
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
            _METRIC_NAMES[s.metric],  # type: ignore[arg-type]
            list(s.metadata_keys),
            s.target.name,
            collection_from_pb(s.target).index,
            s.target_exists,
        )
    if kind == "progress":
        p = pb.progress
        return Progress(_PHASE_NAMES[p.phase], p.done, p.total, p.rate, p.eta_seconds, p.resumed_from)
    r = pb.report
    return Report(
        r.source_count,
        r.target_count,
        list(r.missing_ids),
        r.missing_count,
        r.sampled,
        list(r.mismatches),
        r.queries_compared,
        r.queries_matching,
    )
