"""Documents: vectors, documents and the requests that read, change or describe them by selection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from pgvector_grpc_common.metadata_json import metadata_json

from pgvector_grpc._convert.decoding import floats, json_value, known
from pgvector_grpc.filters import FilterLike, to_filter_pb
from pgvector_grpc.types import Document, Embedding
from pgvector_grpc.v1 import document_pb2, document_service_pb2

DocumentLike = Document | Mapping[str, Any]
FieldPath = str | Sequence[str]
RequestT = TypeVar("RequestT")

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


def vector_to_pb(value: Any) -> document_pb2.Vector:
    """A packed little-endian float32 Vector."""
    return document_pb2.Vector(packed=np.asarray(value, dtype="<f4").reshape(-1).tobytes())


def vector_from_pb(pb: document_pb2.Vector, what: str = "an embedding") -> Embedding | None:
    """The values of a Vector (float64 when the server kept them exactly), or None when it is empty."""
    if pb.packed_f64:
        return floats(pb.packed_f64, "<f8", what).astype(np.float64)
    if pb.packed:
        return floats(pb.packed, "<f4", what).astype(np.float32)
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
        json_value(pb.metadata_json, f"the metadata of document {pb.id!r}") if pb.metadata_json else {},
        vector_from_pb(pb.embedding, f"the embedding of document {pb.id!r}") if pb.HasField("embedding") else None,
    )


def include_pb(content: bool, metadata: bool, embedding: bool) -> document_pb2.Include:
    """An Include message."""
    return document_pb2.Include(content=content, metadata=metadata, embedding=embedding)


def with_filter(request: RequestT, filter: FilterLike | None) -> RequestT:
    """``request`` with its ``filter`` field set from ``filter`` (left unset for None)."""
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
    return with_filter(request, filter)


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
    return with_filter(request, filter)


def count_request(collection: str, filter: FilterLike | None) -> document_service_pb2.CountDocumentsRequest:
    """A CountDocumentsRequest."""
    return with_filter(document_service_pb2.CountDocumentsRequest(collection=collection), filter)


def list_request(
    collection: str,
    filter: FilterLike | None,
    page_size: int,
    include: document_pb2.Include,
    order: str = "id",
) -> document_service_pb2.ListDocumentsRequest:
    """The first ListDocumentsRequest (set page_token for the next pages)."""
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {sorted(_ORDERS)}, got {order!r}")
    request = document_service_pb2.ListDocumentsRequest(
        collection=collection,
        page_size=page_size,
        include=include,
        order=_ORDERS[order],
    )
    return with_filter(request, filter)


def describe_request(collection: str, filter: FilterLike | None) -> document_service_pb2.DescribeMetadataRequest:
    """A DescribeMetadataRequest."""
    return with_filter(document_service_pb2.DescribeMetadataRequest(collection=collection), filter)


def fields_from_pb(response: document_service_pb2.DescribeMetadataResponse) -> dict[str, dict[str, int]]:
    """{field: {value type: documents}}, types most frequent first."""
    return {f.name: {known(_VALUE_TYPE_NAMES, t.type, "value type"): t.count for t in f.types} for f in response.fields}


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
    return with_filter(request, filter)


def field_values_from_pb(response: document_service_pb2.GetFieldValuesResponse) -> tuple[list[Any], int]:
    """(values, total)."""
    return [json_value(v, "a field value") for v in response.values_json], response.total


def field_range_request(
    collection: str, field: FieldPath, filter: FilterLike | None
) -> document_service_pb2.GetFieldRangeRequest:
    """A GetFieldRangeRequest."""
    request = document_service_pb2.GetFieldRangeRequest(collection=collection, path=field_path(field))
    return with_filter(request, filter)


def field_range_from_pb(response: document_service_pb2.GetFieldRangeResponse) -> tuple[Any, Any] | None:
    """(min, max), or None when no document has a value."""
    if not response.found:
        return None
    return json_value(response.min_json, "the field's minimum"), json_value(response.max_json, "the field's maximum")
