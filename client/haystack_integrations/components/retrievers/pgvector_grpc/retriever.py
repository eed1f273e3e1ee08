"""PgvectorGrpcEmbeddingRetriever: nearest documents to a query embedding.

Defined under Haystack's integration namespace, which Haystack's pipeline loader trusts, so that
pipelines holding it load without extending the allowlist."""

from __future__ import annotations

from typing import Any

from haystack import component, default_to_dict
from haystack.dataclasses import Document
from haystack.document_stores.types import FilterPolicy
from haystack_integrations.components.retrievers.pgvector_grpc._settings import (
    checked_filter_policy,
    retrieval_arguments,
    retriever_from_dict,
)
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore


@component
class PgvectorGrpcEmbeddingRetriever:
    """Retrieves the ``top_k`` documents nearest to a query embedding from a PgvectorGrpcDocumentStore,
    each with its ``score`` (higher is closer: 1 - cosine distance, -L2 distance or the inner product).

    ``filter_policy`` says how run-time filters combine with the ones given here: REPLACE (the
    default) uses the run-time filters when given, MERGE combines both with AND.
    """

    def __init__(
        self,
        *,
        document_store: PgvectorGrpcDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        filter_policy: str | FilterPolicy = FilterPolicy.REPLACE,
        return_embedding: bool = False,
    ) -> None:
        self.filter_policy = checked_filter_policy(document_store, top_k, filter_policy)
        self.document_store = document_store
        self.filters = filters or {}
        self.top_k = top_k
        self.return_embedding = return_embedding

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component with its document store."""
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            filters=self.filters,
            top_k=self.top_k,
            filter_policy=self.filter_policy.value,
            return_embedding=self.return_embedding,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PgvectorGrpcEmbeddingRetriever:
        """Deserialises a component written by :meth:`to_dict`."""
        return retriever_from_dict(cls, data)

    def _arguments(self, filters: dict[str, Any] | None, top_k: int | None) -> dict[str, Any]:
        return retrieval_arguments(self, filters, top_k)

    @component.output_types(documents=list[Document])
    def run(
        self, query_embedding: list[float], filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """
        :param query_embedding: the query's embedding.
        :param filters: filters applied with this retriever's ``filter_policy``.
        :param top_k: the number of documents wanted (default: the one given at init).
        :returns: ``{"documents": [...]}``, closest first, with scores.
        """
        docs = self.document_store._embedding_retrieval(query_embedding, **self._arguments(filters, top_k))
        return {"documents": docs}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query_embedding: list[float], filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """See :meth:`run`."""
        docs = await self.document_store._embedding_retrieval_async(query_embedding, **self._arguments(filters, top_k))
        return {"documents": docs}
