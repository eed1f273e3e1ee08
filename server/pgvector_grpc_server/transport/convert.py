"""Pure protobuf <-> domain conversions. Malformed messages raise InvalidArgument naming the field."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pgvector_grpc.v1 import collection_pb2, document_pb2, document_service_pb2
from pgvector_grpc_common.vocabulary import (
    DEFAULT_METRIC,
    DocumentRecord,
    Index,
    IvfflatIndex,
    Metric,
    NoIndex,
    Vector,
    VectorStorage,
    index_of,
)

from pgvector_grpc_server.domain.errors import InvalidArgument
from pgvector_grpc_server.domain.models import (
    DEFAULT_RRF_K,
    AllOf,
    AnyOf,
    Checkpoint,
    CollectionInfo,
    CollectionSpec,
    Condition,
    ConflictPolicy,
    DocumentField,
    DocumentOrder,
    FieldInfo,
    Filter,
    Fusion,
    Hit,
    Include,
    IngestBatch,
    Not,
    Operator,
    Scalar,
    SearchMode,
    SearchQuery,
    Timestamp,
    ValueType,
)
from pgvector_grpc_server.domain.validation import parse_timestamp, scalar_list
from pgvector_grpc_server.transport.columns import documents_from_columns

_METRICS: dict[int, Metric] = {
    collection_pb2.METRIC_UNSPECIFIED: DEFAULT_METRIC,
    collection_pb2.METRIC_COSINE: "cosine",
    collection_pb2.METRIC_L2: "l2",
    collection_pb2.METRIC_INNER_PRODUCT: "inner_product",
}
_METRIC_PB = {
    "cosine": collection_pb2.METRIC_COSINE,
    "l2": collection_pb2.METRIC_L2,
    "inner_product": collection_pb2.METRIC_INNER_PRODUCT,
}
_STORAGES: dict[int, VectorStorage] = {
    collection_pb2.VECTOR_STORAGE_UNSPECIFIED: "vector",
    collection_pb2.VECTOR_STORAGE_FULL: "vector",
    collection_pb2.VECTOR_STORAGE_HALF: "halfvec",
    collection_pb2.VECTOR_STORAGE_BIT: "bit",
}
_STORAGE_PB = {
    "vector": collection_pb2.VECTOR_STORAGE_FULL,
    "halfvec": collection_pb2.VECTOR_STORAGE_HALF,
    "bit": collection_pb2.VECTOR_STORAGE_BIT,
}
_POLICIES: dict[int, ConflictPolicy | None] = {
    document_service_pb2.CONFLICT_POLICY_UNSPECIFIED: None,
    document_service_pb2.CONFLICT_POLICY_UPSERT: "upsert",
    document_service_pb2.CONFLICT_POLICY_SKIP: "skip",
    document_service_pb2.CONFLICT_POLICY_FAIL: "fail",
}
_OPERATORS: dict[int, Operator] = {
    document_pb2.OPERATOR_EQ: "eq",
    document_pb2.OPERATOR_NE: "ne",
    document_pb2.OPERATOR_GT: "gt",
    document_pb2.OPERATOR_GTE: "gte",
    document_pb2.OPERATOR_LT: "lt",
    document_pb2.OPERATOR_LTE: "lte",
    document_pb2.OPERATOR_IN: "in",
    document_pb2.OPERATOR_NIN: "nin",
    document_pb2.OPERATOR_EXISTS: "exists",
    document_pb2.OPERATOR_CONTAINS: "contains",
}
_DOCUMENT_FIELDS: dict[int, DocumentField] = {
    document_pb2.DOCUMENT_FIELD_UNSPECIFIED: "metadata",
    document_pb2.DOCUMENT_FIELD_ID: "id",
    document_pb2.DOCUMENT_FIELD_CONTENT: "content",
}
_ORDERS: dict[int, DocumentOrder] = {
    document_service_pb2.DOCUMENT_ORDER_UNSPECIFIED: "id",
    document_service_pb2.DOCUMENT_ORDER_ID: "id",
    document_service_pb2.DOCUMENT_ORDER_INSERTION: "insertion",
}
_VALUE_TYPES: dict[ValueType, document_service_pb2.ValueType.ValueType] = {
    "string": document_service_pb2.VALUE_TYPE_STRING,
    "integer": document_service_pb2.VALUE_TYPE_INTEGER,
    "float": document_service_pb2.VALUE_TYPE_FLOAT,
    "boolean": document_service_pb2.VALUE_TYPE_BOOLEAN,
    "null": document_service_pb2.VALUE_TYPE_NULL,
    "array": document_service_pb2.VALUE_TYPE_ARRAY,
    "object": document_service_pb2.VALUE_TYPE_OBJECT,
}
_SEARCH_MODES: dict[int, SearchMode | None] = {
    document_service_pb2.SEARCH_MODE_UNSPECIFIED: None,
    document_service_pb2.SEARCH_MODE_VECTOR: "vector",
    document_service_pb2.SEARCH_MODE_KEYWORD: "keyword",
    document_service_pb2.SEARCH_MODE_HYBRID: "hybrid",
}
DEFAULT_INCLUDE = Include(content=True, metadata=True, embedding=False)
DEFAULT_TEXT_SEARCH = "simple"


def _bad(field: str, description: str, reason: str = "BAD_REQUEST") -> InvalidArgument:
    return InvalidArgument.of(field, description, reason)


# -- collections ------------------------------------------------------------------------------


def metric_to_pb(metric: Metric) -> collection_pb2.Metric.ValueType:
    """The Metric enum value."""
    return _METRIC_PB[metric]


def metric_from_pb(value: int, field: str = "collection.metric") -> Metric:
    """The metric of an enum value (unspecified = the default metric)."""
    if value not in _METRICS:
        raise _bad(field, f"unknown metric {value}", "BAD_METRIC")
    return _METRICS[value]


def index_from_pb(pb: collection_pb2.IndexSpec, field: str = "collection.index") -> Index:
    """The index of an IndexSpec (unset = HNSW; parameters left 0 take the vocabulary's defaults)."""
    if pb.storage not in _STORAGES:
        raise _bad(f"{field}.storage", f"unknown storage {pb.storage}", "BAD_INDEX")
    storage = _STORAGES[pb.storage]
    kind = pb.WhichOneof("kind")
    if kind == "ivfflat":
        return index_of("ivfflat", lists=pb.ivfflat.lists, storage=storage, rerank_factor=pb.rerank_factor)
    if kind == "none":
        if storage != "vector" or pb.rerank_factor:
            which = "storage" if storage != "vector" else "rerank_factor"
            raise _bad(f"{field}.{which}", "applies to hnsw and ivfflat indexes only", "BAD_INDEX")
        return NoIndex()
    return index_of(
        "hnsw", m=pb.hnsw.m, ef_construction=pb.hnsw.ef_construction, storage=storage, rerank_factor=pb.rerank_factor
    )


def index_to_pb(index: Index) -> collection_pb2.IndexSpec:
    """The IndexSpec of an index."""
    if isinstance(index, NoIndex):
        return collection_pb2.IndexSpec(none=collection_pb2.NoIndex())
    pb = collection_pb2.IndexSpec(storage=_STORAGE_PB[index.storage], rerank_factor=index.rerank_factor)
    if isinstance(index, IvfflatIndex):
        pb.ivfflat.lists = index.lists
    else:
        pb.hnsw.CopyFrom(collection_pb2.HnswIndex(m=index.m, ef_construction=index.ef_construction))
    return pb


def collection_spec_from_pb(pb: collection_pb2.Collection) -> CollectionSpec:
    """The definition a Collection message asks for (text_search set with no configuration: simple)."""
    text_search = (pb.text_search.configuration or DEFAULT_TEXT_SEARCH) if pb.HasField("text_search") else None
    return CollectionSpec(
        pb.name,
        pb.dimension,
        metric_from_pb(pb.metric),
        index_from_pb(pb.index),
        multi_tenant=pb.multi_tenant,
        text_search=text_search,
    )


def collection_to_pb(info: CollectionInfo) -> collection_pb2.Collection:
    """A Collection message."""
    spec = info.spec
    return collection_pb2.Collection(
        name=spec.name,
        dimension=spec.dimension,
        metric=_METRIC_PB[spec.metric],
        index=index_to_pb(spec.index),
        document_count=info.document_count,
        multi_tenant=spec.multi_tenant,
        text_search=None if spec.text_search is None else collection_pb2.TextSearch(configuration=spec.text_search),
        index_pending=info.index_pending,
    )


# -- documents --------------------------------------------------------------------------------


def vector_from_pb(pb: document_pb2.Vector, field: str) -> Vector:
    """The float32 values of a Vector (packed little-endian bytes, float64 bytes or repeated float)."""
    if sum(map(bool, (pb.packed, len(pb.values), pb.packed_f64))) > 1:
        raise _bad(field, "set one of packed, values or packed_f64", "BAD_VECTOR")
    if pb.packed_f64:
        if len(pb.packed_f64) % 8:
            raise _bad(f"{field}.packed_f64", f"length {len(pb.packed_f64)} is not a multiple of 8 bytes", "BAD_VECTOR")
        with np.errstate(over="ignore"):  # too large for float32: infinite, rejected as non-finite
            return np.frombuffer(pb.packed_f64, dtype="<f8").astype(np.float32)
    if pb.packed:
        if len(pb.packed) % 4:
            raise _bad(f"{field}.packed", f"length {len(pb.packed)} is not a multiple of 4 bytes", "BAD_VECTOR")
        return np.frombuffer(pb.packed, dtype="<f4")
    return np.array(pb.values, dtype=np.float32)


def documents_from_pb(docs: Sequence[document_pb2.Document], field: str = "documents") -> list[DocumentRecord]:
    """The documents of a batch. When every embedding is packed and of one length, they are
    decoded as one matrix (one numpy call per batch instead of one per document)."""
    records = [
        DocumentRecord(doc.id, doc.content if doc.HasField("content") else None, doc.metadata_json or "{}", None)
        for doc in docs
    ]
    with_vectors = [i for i, doc in enumerate(docs) if doc.HasField("embedding")]
    packed = [docs[i].embedding.packed for i in with_vectors]
    width = len(packed[0]) if packed else 0
    uniform = all(len(p) == width for p in packed) and not any(
        len(docs[i].embedding.values) or docs[i].embedding.packed_f64 for i in with_vectors
    )
    if width and width % 4 == 0 and uniform:
        matrix = np.frombuffer(b"".join(packed), dtype="<f4").reshape(len(packed), width // 4)
        for row, i in enumerate(with_vectors):
            records[i].embedding = matrix[row]
    else:
        for i in with_vectors:
            vector = records[i].embedding = vector_from_pb(docs[i].embedding, f"{field}[{i}].embedding")
            exact = docs[i].embedding.packed_f64
            if exact and not np.array_equal(np.frombuffer(exact, dtype="<f8"), vector):
                records[i].embedding_exact = exact
    return records


def ingest_batch_from_pb(pb: document_service_pb2.IngestRequest) -> IngestBatch:
    """One batch of an Ingest stream, per-document or columnar; field paths are relative to the batch."""
    if pb.HasField("columns"):
        if len(pb.documents):
            raise _bad("columns", "set documents or columns, not both")
        documents = documents_from_columns(pb.columns)
    else:
        documents = documents_from_pb(pb.documents)
    return IngestBatch(
        pb.collection,
        policy_from_pb(pb.on_conflict),
        documents,
        Checkpoint(pb.checkpoint.key, pb.checkpoint.value) if pb.HasField("checkpoint") else None,
    )


def stored_to_pb(doc: DocumentRecord) -> document_pb2.Document:
    """A Document message with the parts that were read."""
    pb = document_pb2.Document(id=doc.id, metadata_json=doc.metadata_json)
    if doc.content is not None:
        pb.content = doc.content
    if doc.embedding_exact is not None:
        pb.embedding.packed_f64 = doc.embedding_exact
    elif doc.embedding is not None:
        pb.embedding.packed = doc.embedding.astype("<f4", copy=False).tobytes()
    return pb


def order_from_pb(value: int, field: str = "order") -> DocumentOrder:
    """The order of a listing (unspecified = by id)."""
    if value not in _ORDERS:
        raise _bad(field, f"unknown order {value}", "BAD_ORDER")
    return _ORDERS[value]


def field_info_to_pb(info: FieldInfo) -> document_service_pb2.MetadataField:
    """A MetadataField message."""
    return document_service_pb2.MetadataField(
        name=info.name,
        types=[document_service_pb2.ValueTypeCount(type=_VALUE_TYPES[t], count=n) for t, n in info.types],
    )


def include_from_pb(holder: object, field: str = "include") -> Include:
    """The Include of a request; unset returns content and metadata, not the embedding."""
    if not holder.HasField(field):  # type: ignore[attr-defined]
        return DEFAULT_INCLUDE
    pb = getattr(holder, field)
    return Include(pb.content, pb.metadata, pb.embedding)


def policy_from_pb(value: int, field: str = "on_conflict") -> ConflictPolicy | None:
    """The conflict policy (None = unspecified)."""
    if value not in _POLICIES:
        raise _bad(field, f"unknown conflict policy {value}", "BAD_POLICY")
    return _POLICIES[value]


# -- filters ----------------------------------------------------------------------------------


def filter_from_holder(holder: object, field: str = "filter") -> Filter | None:
    """The filter of a request, or None when unset."""
    if not holder.HasField("filter"):  # type: ignore[attr-defined]
        return None
    return filter_from_pb(holder.filter, field)  # type: ignore[attr-defined]


def filter_from_pb(pb: document_pb2.Filter, field: str = "filter") -> Filter:
    """The filter tree of a Filter message (its depth is a domain rule, checked with the rest)."""
    kind = pb.WhichOneof("kind")
    if kind == "condition":
        return _condition_from_pb(pb.condition, f"{field}.condition")
    if kind in ("all_of", "any_of"):
        operands = tuple(
            filter_from_pb(f, f"{field}.{kind}.filters[{i}]") for i, f in enumerate(getattr(pb, kind).filters)
        )
        return AllOf(operands) if kind == "all_of" else AnyOf(operands)
    if kind == "not":
        return Not(filter_from_pb(getattr(pb, "not"), f"{field}.not"))
    raise _bad(field, "set one of condition, all_of, any_of or not", "BAD_FILTER")


def _condition_from_pb(pb: document_pb2.Condition, field: str) -> Condition:
    if pb.operator not in _OPERATORS:
        raise _bad(f"{field}.operator", "set an operator", "BAD_FILTER")
    if not pb.HasField("value"):
        raise _bad(f"{field}.value", "set a value", "BAD_FILTER")
    if pb.field not in _DOCUMENT_FIELDS:
        raise _bad(f"{field}.field", f"unknown document field {pb.field}", "BAD_FILTER")
    value = _value_from_pb(pb.value, f"{field}.value")
    return Condition(tuple(pb.path), _OPERATORS[pb.operator], value, _DOCUMENT_FIELDS[pb.field])


def _value_from_pb(pb: document_pb2.Value, field: str) -> Scalar | Timestamp | tuple[Scalar, ...]:
    kind = pb.WhichOneof("kind")
    if kind == "list_value":
        items = f"{field}.list_value.values"
        return scalar_list([_value_from_pb(v, f"{items}[{i}]") for i, v in enumerate(pb.list_value.values)], items)
    if kind is None:
        raise _bad(field, "set one kind of value", "BAD_FILTER")
    if kind == "null_value":
        return None
    if kind == "datetime_value":
        return parse_timestamp(pb.datetime_value, f"{field}.datetime_value")
    scalar: Scalar = getattr(pb, kind)
    return scalar


# -- search -----------------------------------------------------------------------------------


def search_query_from_pb(pb: document_service_pb2.SearchRequest) -> SearchQuery:
    """A search query (validated later against the collection; which of embedding and query_text
    a mode needs too)."""
    hybrid = pb.hybrid
    if hybrid.mode not in _SEARCH_MODES:
        raise _bad("hybrid.mode", f"unknown search mode {hybrid.mode}", "BAD_MODE")
    fusion = Fusion(
        rrf_k=hybrid.rrf_k if hybrid.HasField("rrf_k") else DEFAULT_RRF_K,
        vector_weight=hybrid.vector_weight if hybrid.HasField("vector_weight") else 1.0,
        keyword_weight=hybrid.keyword_weight if hybrid.HasField("keyword_weight") else 1.0,
        candidates=hybrid.candidates or None,
    )
    return SearchQuery(
        collection=pb.collection,
        embedding=vector_from_pb(pb.embedding, "embedding") if pb.HasField("embedding") else None,
        top_k=pb.top_k,
        filter=filter_from_holder(pb),
        min_similarity=pb.min_similarity if pb.HasField("min_similarity") else None,
        include=include_from_pb(pb),
        ef_search=pb.ef_search or None,
        exact=pb.exact,
        query_text=pb.query_text or None,
        mode=_SEARCH_MODES[hybrid.mode],
        fusion=fusion,
        rerank_factor=pb.rerank_factor or None,
        probes=pb.probes or None,
    )


def hit_to_pb(hit: Hit) -> document_service_pb2.SearchHit:
    """A SearchHit message (the optional scores set when the hit has them)."""
    pb = document_service_pb2.SearchHit(document=stored_to_pb(hit.document), score=hit.score, distance=hit.distance)
    if hit.vector_score is not None:
        pb.vector_score = hit.vector_score
    if hit.keyword_rank is not None:
        pb.keyword_rank = hit.keyword_rank
    if hit.fused_score is not None:
        pb.fused_score = hit.fused_score
    return pb
