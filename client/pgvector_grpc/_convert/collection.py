"""Collections: metric, index and collection messages."""

from __future__ import annotations

from pgvector_grpc._convert.decoding import known
from pgvector_grpc.types import Collection, HnswIndex, Index, IvfflatIndex, Metric, NoIndex, VectorStorage
from pgvector_grpc.v1 import collection_pb2

_METRICS: dict[str, int] = {
    "cosine": collection_pb2.METRIC_COSINE,
    "l2": collection_pb2.METRIC_L2,
    "inner_product": collection_pb2.METRIC_INNER_PRODUCT,
}
_METRIC_NAMES: dict[int, Metric] = {v: k for k, v in _METRICS.items()}  # type: ignore[misc]
_STORAGES: dict[str, int] = {
    "vector": collection_pb2.VECTOR_STORAGE_FULL,
    "halfvec": collection_pb2.VECTOR_STORAGE_HALF,
    "bit": collection_pb2.VECTOR_STORAGE_BIT,
}
_STORAGE_NAMES: dict[int, VectorStorage] = {v: k for k, v in _STORAGES.items()}  # type: ignore[misc]
_STORAGE_NAMES[collection_pb2.VECTOR_STORAGE_UNSPECIFIED] = "vector"


def metric_from_pb(value: int) -> Metric:
    """The metric name of a Metric value."""
    return known(_METRIC_NAMES, value, "metric")


def index_to_pb(index: Index | None) -> collection_pb2.IndexSpec:
    """An IndexSpec (None = HNSW with defaults)."""
    if isinstance(index, NoIndex):
        return collection_pb2.IndexSpec(none=collection_pb2.NoIndex())
    index = index or HnswIndex()
    if index.storage not in _STORAGES:
        raise ValueError(f"storage must be one of {sorted(_STORAGES)}, got {index.storage!r}")
    pb = collection_pb2.IndexSpec(storage=_STORAGES[index.storage], rerank_factor=index.rerank_factor)  # type: ignore[arg-type]
    if isinstance(index, IvfflatIndex):
        pb.ivfflat.lists = index.lists
    else:
        pb.hnsw.CopyFrom(collection_pb2.HnswIndex(m=index.m, ef_construction=index.ef_construction))
    return pb


def collection_to_pb(
    name: str,
    dimension: int,
    metric: Metric,
    index: Index | None,
    *,
    multi_tenant: bool = False,
    text_search: str | None = None,
) -> collection_pb2.Collection:
    """A Collection message to create."""
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    return collection_pb2.Collection(
        name=name,
        dimension=dimension,
        metric=_METRICS[metric],  # type: ignore[arg-type]
        index=index_to_pb(index),
        multi_tenant=multi_tenant,
        text_search=None if text_search is None else collection_pb2.TextSearch(configuration=text_search),
    )


def collection_from_pb(pb: collection_pb2.Collection) -> Collection:
    """A Collection from its message."""
    kind = pb.index.WhichOneof("kind")
    index: Index
    if kind == "none":
        index = NoIndex()
    else:
        storage = known(_STORAGE_NAMES, pb.index.storage, "index.storage")
        if kind == "ivfflat":
            index = IvfflatIndex(pb.index.ivfflat.lists, storage, pb.index.rerank_factor)
        else:
            index = HnswIndex(pb.index.hnsw.m, pb.index.hnsw.ef_construction, storage, pb.index.rerank_factor)
    text_search = pb.text_search.configuration if pb.HasField("text_search") else None
    return Collection(
        pb.name,
        pb.dimension,
        metric_from_pb(pb.metric),
        index,
        pb.document_count,
        pb.multi_tenant,
        text_search,
        pb.index_pending,
    )
