"""What the retrievers share: checking their settings, the arguments of a retrieval, and loading
them back from a serialised pipeline."""

from __future__ import annotations

from typing import Any, TypeVar

from haystack import default_from_dict
from haystack.document_stores.types import FilterPolicy
from haystack.document_stores.types.filter_policy import apply_filter_policy
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

T = TypeVar("T")


def checked_filter_policy(document_store: Any, top_k: int, filter_policy: str | FilterPolicy) -> FilterPolicy:
    """The filter policy, once the store and ``top_k`` are found usable."""
    if not isinstance(document_store, PgvectorGrpcDocumentStore):
        raise ValueError("document_store must be a PgvectorGrpcDocumentStore")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    return filter_policy if isinstance(filter_policy, FilterPolicy) else FilterPolicy.from_str(filter_policy)


def retrieval_arguments(retriever: Any, filters: dict[str, Any] | None, top_k: int | None) -> dict[str, Any]:
    """The filters (the retriever's combined with the run's by its policy), top_k and return_embedding."""
    return {
        "filters": apply_filter_policy(retriever.filter_policy, retriever.filters, filters),
        "top_k": top_k or retriever.top_k,
        "return_embedding": retriever.return_embedding,
    }


def retriever_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """A retriever written by its ``to_dict``, its document store loaded first."""
    params = data["init_parameters"]
    params["document_store"] = PgvectorGrpcDocumentStore.from_dict(params["document_store"])
    if "filter_policy" in params:
        params["filter_policy"] = FilterPolicy.from_str(params["filter_policy"])
    return default_from_dict(cls, data)
