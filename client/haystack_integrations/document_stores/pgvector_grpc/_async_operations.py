"""The DocumentStore operations, asyncio flavour (Haystack's ``*_async`` methods).

The source of the blocking ones too: ``_sync_operations.py`` is generated from this file by
``scripts/async_to_sync.py`` (``make generate``), so both carry the same code and docstrings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from haystack import logging
from haystack.dataclasses import Document
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.document_stores.pgvector_grpc._connections import StoreConnections
from haystack_integrations.document_stores.pgvector_grpc.converters import (
    POLICIES,
    check_documents,
    fields_info,
    from_client_documents,
    from_hit,
    haystack_errors,
    min_max,
    written_count,
)
from haystack_integrations.document_stores.pgvector_grpc.filters import meta_key, to_filter

from pgvector_grpc.errors import FailedPreconditionError

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_VALUES_PAGE = 1000


class AsyncStoreOperations(StoreConnections):
    """The DocumentStore protocol and Haystack's extended operations, on the store's collection."""

    async def count_documents_async(self) -> int:
        """The number of documents."""
        client = await self.async_client()
        return await client.count(self.collection, read_from_primary=self.read_from_primary)

    async def filter_documents_async(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """The documents matching ``filters`` (all without), in the order they were first written."""
        client = await self.async_client()
        with haystack_errors():
            server_filter = to_filter(filters)
            documents = client.list(
                self.collection,
                filter=server_filter,
                page_size=1000,
                include_embedding=True,
                order="insertion",
                read_from_primary=self.read_from_primary,
            )
            return from_client_documents([d async for d in documents])

    async def write_documents_async(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """Write documents; the number written. NONE and FAIL raise DuplicateDocumentError when an
        id exists (the batch holding it is not written) or repeats within ``documents`` (nothing is
        written); SKIP keeps stored documents (and the first of repeated ones); OVERWRITE replaces
        them (the last of repeated ones wins). Each batch of ``write_batch_size`` is one transaction."""
        on_conflict = POLICIES[policy]
        docs = check_documents(documents, on_conflict)
        client = await self.async_client()
        with haystack_errors():
            summary = await client.ingest(
                self.collection, docs, batch_size=self.write_batch_size, on_conflict=on_conflict
            )
        return written_count(summary, on_conflict)

    async def delete_documents_async(self, document_ids: list[str]) -> None:
        """Delete documents by id; unknown ids are ignored."""
        if document_ids:
            client = await self.async_client()
            await client.delete(self.collection, document_ids)

    async def delete_all_documents_async(self, recreate_index: bool = False) -> None:
        """Delete every document; ``recreate_index`` drops and re-creates the collection (and its
        indexes) with the same settings instead."""
        client = await self.async_client()
        if recreate_index:
            spec = await client.get_collection(self.collection, read_from_primary=self.read_from_primary)
            await client.delete_collection(self.collection)
            await client.create_collection(
                spec.name, spec.dimension, metric=spec.metric, index=spec.index, text_search=spec.text_search
            )
        else:
            await client.delete(self.collection, all_documents=True)

    async def delete_by_filter_async(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching ``filters``; their number."""
        client = await self.async_client()
        with haystack_errors():
            return await client.delete(self.collection, **self._selection(filters))

    async def update_by_filter_async(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Set the keys of ``meta`` on the documents matching ``filters`` (other keys kept); their number."""
        client = await self.async_client()
        with haystack_errors():
            return await client.update_metadata(self.collection, meta, **self._selection(filters))

    async def count_documents_by_filter_async(self, filters: dict[str, Any]) -> int:
        """The number of documents matching ``filters``."""
        client = await self.async_client()
        with haystack_errors():
            return await client.count(self.collection, to_filter(filters), read_from_primary=self.read_from_primary)

    async def count_unique_metadata_by_filter_async(
        self, filters: dict[str, Any], metadata_fields: list[str]
    ) -> dict[str, int]:
        """For each field (with or without "meta."), the number of distinct non-null values among
        the documents matching ``filters``."""
        client = await self.async_client()
        with haystack_errors():
            server_filter = to_filter(filters)
            return {
                meta_key(f): await client.count_distinct(
                    self.collection, meta_key(f), filter=server_filter, read_from_primary=self.read_from_primary
                )
                for f in metadata_fields
            }

    async def get_metadata_fields_info_async(self) -> dict[str, dict[str, str]]:
        """``{field: {"type": ...}}`` with types keyword, int, float and boolean (of the most
        frequent non-null type of each field)."""
        client = await self.async_client()
        return fields_info(await client.describe_metadata(self.collection, read_from_primary=self.read_from_primary))

    async def get_metadata_field_min_max_async(self, metadata_field: str) -> dict[str, Any]:
        """``{"min": ..., "max": ...}`` of a field; None and None when no document has a value or
        when its values mix numbers, strings and booleans (as Haystack's in-memory store does)."""
        client = await self.async_client()
        try:
            field_range = await client.field_range(
                self.collection, meta_key(metadata_field), read_from_primary=self.read_from_primary
            )
            return min_max(field_range)
        except FailedPreconditionError as exc:
            logger.warning("No min/max for {field}: {error}", field=metadata_field, error=exc.message)
            return min_max(None)

    async def get_metadata_field_unique_values_async(
        self,
        metadata_field: str,
        search_term: str | None = None,
        from_: int = 0,
        size: int = 10,
        filters: dict[str, Any] | None = None,
    ) -> tuple[list[Any], int]:
        """A page of a field's distinct values (ordered by their text, types kept apart) and their
        total; ``search_term`` keeps values containing it, ignoring case."""
        client = await self.async_client()
        with haystack_errors():
            server_filter = to_filter(filters)

            async def page(offset: int, limit: int) -> tuple[list[Any], int]:
                return await client.field_values(
                    self.collection,
                    meta_key(metadata_field),
                    filter=server_filter,
                    search_term=search_term or "",
                    offset=offset,
                    page_size=limit,
                    read_from_primary=self.read_from_primary,
                )

            return await _collect_pages_async(page, from_, size)

    async def _embedding_retrieval_async(
        self,
        query_embedding: list[float],
        *,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        return_embedding: bool = False,
    ) -> list[Document]:
        """The ``top_k`` nearest documents with their scores (higher is closer)."""
        client = await self.async_client()
        with haystack_errors():
            hits = await client.search(
                self.collection,
                query_embedding,
                top_k=top_k,
                filter=to_filter(filters),
                include_embedding=return_embedding,
                read_from_primary=self.read_from_primary,
            )
        return [from_hit(h) for h in hits]

    async def _hybrid_retrieval_async(
        self,
        query: str,
        query_embedding: list[float],
        *,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        return_embedding: bool = False,
        rrf_k: int | None = None,
        vector_weight: float | None = None,
        keyword_weight: float | None = None,
    ) -> list[Document]:
        """The ``top_k`` documents best by the fusion of the vector ranking and the keyword ranking
        of ``query`` (reciprocal rank fusion), with their fused scores. The collection needs a
        full-text index (the store's ``text_search``)."""
        client = await self.async_client()
        with haystack_errors():
            hits = await client.search(
                self.collection,
                query_embedding,
                query_text=query,
                mode="hybrid",
                top_k=top_k,
                filter=to_filter(filters),
                include_embedding=return_embedding,
                rrf_k=rrf_k,
                vector_weight=vector_weight,
                keyword_weight=keyword_weight,
                read_from_primary=self.read_from_primary,
            )
        return [from_hit(h) for h in hits]


async def _collect_pages_async(
    page: Callable[[int, int], Awaitable[tuple[list[T], int]]], start: int, size: int
) -> tuple[list[T], int]:
    """Up to ``size`` values from ``start``, at most MAX_VALUES_PAGE per call (at least one value
    is asked for, so that ``size`` 0 still gets the total)."""
    values: list[T] = []
    while True:
        limit = min(size - len(values), MAX_VALUES_PAGE)
        chunk, total = await page(start + len(values), max(limit, 1))
        values.extend(chunk[:limit])
        if len(values) >= size or len(chunk) < limit:
            return values, total
