"""PgvectorGrpcHybridRetriever: documents ranked by a query's keywords and its embedding together.

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
class PgvectorGrpcHybridRetriever:
    """Retrieves the ``top_k`` best documents of a PgvectorGrpcDocumentStore by hybrid search: the
    server ranks the documents by similarity to the query embedding and by the keyword relevance of
    the query text, and fuses the two rankings in one statement (reciprocal rank fusion: a document
    scores ``vector_weight / (rrf_k + vector rank) + keyword_weight / (rrf_k + keyword rank)``, a
    term counting only for a ranking that holds it). Each document's ``score`` is that fused score.

    Exact terms that embeddings miss - product codes, names, error strings - come up through the
    keywords; paraphrases through the embedding. The store's collection needs a full-text index:
    create the store with ``text_search="simple"`` (or a language's configuration, e.g. "english").
    The query text is read as a web search box is: words, "quoted phrases", OR, -excluded.

    ``filter_policy`` says how run-time filters combine with the ones given here: REPLACE (the
    default) uses the run-time filters when given, MERGE combines both with AND. Filters restrict
    both rankings.
    """

    def __init__(
        self,
        *,
        document_store: PgvectorGrpcDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        filter_policy: str | FilterPolicy = FilterPolicy.REPLACE,
        return_embedding: bool = False,
        rrf_k: int = 60,
        vector_weight: float = 1.0,
        keyword_weight: float = 1.0,
    ) -> None:
        self.filter_policy = checked_filter_policy(document_store, top_k, filter_policy)
        self.document_store = document_store
        self.filters = filters or {}
        self.top_k = top_k
        self.return_embedding = return_embedding
        self.rrf_k = rrf_k
        self.vector_weight = vector_weight
        self.keyword_weight = keyword_weight

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component with its document store."""
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            filters=self.filters,
            top_k=self.top_k,
            filter_policy=self.filter_policy.value,
            return_embedding=self.return_embedding,
            rrf_k=self.rrf_k,
            vector_weight=self.vector_weight,
            keyword_weight=self.keyword_weight,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PgvectorGrpcHybridRetriever:
        """Deserialises a component written by :meth:`to_dict`."""
        return retriever_from_dict(cls, data)

    def _arguments(self, filters: dict[str, Any] | None, top_k: int | None) -> dict[str, Any]:
        return {
            **retrieval_arguments(self, filters, top_k),
            "rrf_k": self.rrf_k,
            "vector_weight": self.vector_weight,
            "keyword_weight": self.keyword_weight,
        }

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        """
        :param query: the query text, searched in the documents' content by keywords.
        :param query_embedding: the query's embedding.
        :param filters: filters applied with this retriever's ``filter_policy``.
        :param top_k: the number of documents wanted (default: the one given at init).
        :returns: ``{"documents": [...]}``, best fused score first.
        """
        docs = self.document_store._hybrid_retrieval(query, query_embedding, **self._arguments(filters, top_k))
        return {"documents": docs}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        """See :meth:`run`."""
        docs = await self.document_store._hybrid_retrieval_async(
            query, query_embedding, **self._arguments(filters, top_k)
        )
        return {"documents": docs}
