"""PgvectorGrpcDocumentStore: a Haystack DocumentStore on a pgvector-grpc server.

Defined under Haystack's integration namespace, which Haystack's pipeline loader trusts;
``pgvector_grpc.haystack`` re-exports it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from haystack import default_from_dict, default_to_dict, logging
from haystack.dataclasses import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.utils import Secret, deserialize_secrets_inplace

from pgvector_grpc.aio import AsyncClient
from pgvector_grpc.errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError
from pgvector_grpc.haystack._documents import check_documents, from_client_documents, from_hit
from pgvector_grpc.haystack.filters import meta_key, to_filter
from pgvector_grpc.sync import Client
from pgvector_grpc.types import HnswIndex, IngestSummary, Metric, OnConflict

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:50051"
_POLICIES: dict[DuplicatePolicy, OnConflict] = {
    DuplicatePolicy.NONE: "fail",
    DuplicatePolicy.FAIL: "fail",
    DuplicatePolicy.SKIP: "skip",
    DuplicatePolicy.OVERWRITE: "upsert",
}
# get_metadata_fields_info names types as Haystack's InMemoryDocumentStore does.
_FIELD_TYPES = {
    "string": "keyword",
    "integer": "int",
    "float": "float",
    "boolean": "boolean",
    "array": "keyword",
    "object": "keyword",
}
MAX_VALUES_PAGE = 1000
ADDRESS_FROM_ENV = Secret.from_env_var("PGVECTOR_GRPC_ADDRESS", strict=False)


@contextmanager
def _haystack_errors() -> Iterator[None]:
    """Server errors as the exceptions Haystack's callers expect."""
    try:
        yield
    except AlreadyExistsError as exc:
        raise DuplicateDocumentError(exc.message) from exc
    except InvalidArgumentError as exc:
        if any(v.field.startswith("filter") for v in exc.field_violations):
            raise FilterError(exc.message) from exc
        raise


def _written(summary: IngestSummary, policy: OnConflict) -> int:
    return summary.inserted + (summary.updated if policy == "upsert" else 0)


def _min_max(found: tuple[Any, Any] | None) -> dict[str, Any]:
    return {"min": None, "max": None} if found is None else {"min": found[0], "max": found[1]}


class PgvectorGrpcDocumentStore:
    """A Haystack DocumentStore whose documents live in a collection of a pgvector-grpc server.

    The caller needs only the server's address (a Secret, by default the env var
    ``PGVECTOR_GRPC_ADDRESS``, else 127.0.0.1:50051): no database driver, no credentials. The
    collection is created on first use when missing. Filters follow Haystack's grammar and
    semantics, NOT included. Embeddings, ids, content and metadata come back exactly as written
    (float64 embeddings too). ``blob`` and ``sparse_embedding`` are refused with a ValueError.
    ``filter_documents`` returns documents in the order they were first written.
    """

    def __init__(
        self,
        *,
        address: Secret = ADDRESS_FROM_ENV,
        collection: str = "haystack",
        embedding_dimension: int = 768,
        metric: Metric = "cosine",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        create_collection: bool = True,
        write_batch_size: int = 500,
        timeout: float = 30.0,
    ) -> None:
        """
        :param address: host:port of the server, as a Secret.
        :param collection: the server collection holding the documents.
        :param embedding_dimension: the dimension of the embeddings (used when creating the collection).
        :param metric: "cosine", "l2" or "inner_product"; scores are 1 - cosine distance, -L2 distance
            or the inner product.
        :param hnsw_m: HNSW ``m`` of a created collection.
        :param hnsw_ef_construction: HNSW ``ef_construction`` of a created collection.
        :param create_collection: create the collection when it does not exist (else NOT_FOUND).
        :param write_batch_size: documents per Ingest batch (each batch is one transaction).
        :param timeout: seconds per call.
        """
        self.address = address
        self.collection = collection
        self.embedding_dimension = embedding_dimension
        self.metric: Metric = metric
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.create_collection = create_collection
        self.write_batch_size = write_batch_size
        self.timeout = timeout
        self._client: Client | None = None
        self._async_client: AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._async_ready = False

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Serialises the store (the address stays a Secret reference)."""
        return default_to_dict(
            self,
            address=self.address.to_dict(),
            collection=self.collection,
            embedding_dimension=self.embedding_dimension,
            metric=self.metric,
            hnsw_m=self.hnsw_m,
            hnsw_ef_construction=self.hnsw_ef_construction,
            create_collection=self.create_collection,
            write_batch_size=self.write_batch_size,
            timeout=self.timeout,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PgvectorGrpcDocumentStore:
        """Deserialises a store written by :meth:`to_dict`."""
        deserialize_secrets_inplace(data["init_parameters"], keys=["address"])
        return default_from_dict(cls, data)

    # -- connections -----------------------------------------------------------------------------

    def _address(self) -> str:
        return self.address.resolve_value() or DEFAULT_ADDRESS

    def _create_args(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "index": HnswIndex(self.hnsw_m, self.hnsw_ef_construction),
            "if_not_exists": True,
        }

    @property
    def client(self) -> Client:
        """The synchronous client, connected and with the collection ready on first use."""
        return self.connect()

    def connect(self, *, defer_index: bool = False) -> Client:
        """The synchronous client; the first call creates the collection when missing, without its
        vector index when ``defer_index`` (for a bulk load that ends with ``client.build_index``)."""
        if self._client is None:
            client = Client(self._address(), timeout=self.timeout)
            if self.create_collection:
                client.create_collection(
                    self.collection, self.embedding_dimension, defer_index=defer_index, **self._create_args()
                )
            else:
                client.get_collection(self.collection)
            self._client = client
        return self._client

    async def async_client(self) -> AsyncClient:
        """The asyncio client of the running event loop, with the collection ready."""
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client, self._async_loop, self._async_ready = AsyncClient(self._address()), loop, False
        if not self._async_ready:
            if self.create_collection:
                await self._async_client.create_collection(
                    self.collection, self.embedding_dimension, **self._create_args()
                )
            else:
                await self._async_client.get_collection(self.collection)
            self._async_ready = True
        return self._async_client

    def close(self) -> None:
        """Close the synchronous connection (the asyncio one closes with :meth:`close_async`)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def close_async(self) -> None:
        """Close the asyncio connection."""
        if self._async_client is not None:
            await self._async_client.close()
            self._async_client = None

    # -- the DocumentStore protocol --------------------------------------------------------------

    def count_documents(self) -> int:
        """The number of documents."""
        return self.client.count(self.collection)

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """The documents matching ``filters`` (all without), in the order they were first written."""
        with _haystack_errors():
            server_filter = to_filter(filters)
            documents = self.client.list(
                self.collection, filter=server_filter, page_size=1000, include_embedding=True, order="insertion"
            )
            return from_client_documents(documents)

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Write documents; the number written. NONE and FAIL raise DuplicateDocumentError when an
        id exists (the batch holding it is not written) or repeats within ``documents`` (nothing is
        written); SKIP keeps stored documents (and the first of repeated ones); OVERWRITE replaces
        them (the last of repeated ones wins). Each batch of ``write_batch_size`` is one transaction."""
        on_conflict = _POLICIES[policy]
        docs = check_documents(documents, on_conflict)
        with _haystack_errors():
            summary = self.client.ingest(
                self.collection, docs, batch_size=self.write_batch_size, on_conflict=on_conflict
            )
        return _written(summary, on_conflict)

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete documents by id; unknown ids are ignored."""
        if document_ids:
            self.client.delete(self.collection, document_ids)

    # -- extended operations ---------------------------------------------------------------------

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        """Delete every document; ``recreate_index`` drops and re-creates the collection (and its
        indexes) with the same settings instead."""
        if recreate_index:
            client = self.client
            spec = client.get_collection(self.collection)
            client.delete_collection(self.collection)
            client.create_collection(spec.name, spec.dimension, metric=spec.metric, index=spec.index)
        else:
            self.client.delete(self.collection, all_documents=True)

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching ``filters``; their number."""
        with _haystack_errors():
            return self.client.delete(self.collection, **self._selection(filters))

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Set the keys of ``meta`` on the documents matching ``filters`` (other keys kept); their number."""
        with _haystack_errors():
            return self.client.update_metadata(self.collection, meta, **self._selection(filters))

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        """The number of documents matching ``filters``."""
        with _haystack_errors():
            return self.client.count(self.collection, to_filter(filters))

    def count_unique_metadata_by_filter(self, filters: dict[str, Any], metadata_fields: list[str]) -> dict[str, int]:
        """For each field (with or without "meta."), the number of distinct non-null values among
        the documents matching ``filters``."""
        with _haystack_errors():
            server_filter = to_filter(filters)
            return {
                meta_key(f): self.client.count_distinct(self.collection, meta_key(f), filter=server_filter)
                for f in metadata_fields
            }

    def get_metadata_fields_info(self) -> dict[str, dict[str, str]]:
        """``{field: {"type": ...}}`` with types keyword, int, float and boolean (of the most
        frequent non-null type of each field)."""
        return _fields_info(self.client.describe_metadata(self.collection))

    def get_metadata_field_min_max(self, metadata_field: str) -> dict[str, Any]:
        """``{"min": ..., "max": ...}`` of a field; None and None when no document has a value or
        when its values mix numbers, strings and booleans (as Haystack's in-memory store does)."""
        try:
            return _min_max(self.client.field_range(self.collection, meta_key(metadata_field)))
        except FailedPreconditionError as exc:
            logger.warning("No min/max for {field}: {error}", field=metadata_field, error=exc.message)
            return _min_max(None)

    def get_metadata_field_unique_values(
        self,
        metadata_field: str,
        search_term: str | None = None,
        from_: int = 0,
        size: int = 10,
        filters: dict[str, Any] | None = None,
    ) -> tuple[list[Any], int]:
        """A page of a field's distinct values (ordered by their text, types kept apart) and their
        total; ``search_term`` keeps values containing it, ignoring case."""
        with _haystack_errors():
            server_filter = to_filter(filters)

            def page(offset: int, limit: int) -> tuple[list[Any], int]:
                return self.client.field_values(
                    self.collection,
                    meta_key(metadata_field),
                    filter=server_filter,
                    search_term=search_term or "",
                    offset=offset,
                    page_size=limit,
                )

            return _collect_pages(page, from_, size)

    # -- retrieval -------------------------------------------------------------------------------

    def _embedding_retrieval(
        self,
        query_embedding: list[float],
        *,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        return_embedding: bool = False,
    ) -> list[Document]:
        """The ``top_k`` nearest documents with their scores (higher is closer)."""
        with _haystack_errors():
            hits = self.client.search(
                self.collection,
                query_embedding,
                top_k=top_k,
                filter=to_filter(filters),
                include_embedding=return_embedding,
            )
        return [from_hit(h) for h in hits]

    # -- async variants --------------------------------------------------------------------------

    async def count_documents_async(self) -> int:
        """See :meth:`count_documents`."""
        return await (await self.async_client()).count(self.collection)

    async def filter_documents_async(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """See :meth:`filter_documents`."""
        client = await self.async_client()
        with _haystack_errors():
            server_filter = to_filter(filters)
            documents = client.list(
                self.collection, filter=server_filter, page_size=1000, include_embedding=True, order="insertion"
            )
            return from_client_documents([d async for d in documents])

    async def write_documents_async(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """See :meth:`write_documents`."""
        on_conflict = _POLICIES[policy]
        docs = check_documents(documents, on_conflict)
        client = await self.async_client()
        with _haystack_errors():
            summary = await client.ingest(
                self.collection, docs, batch_size=self.write_batch_size, on_conflict=on_conflict
            )
        return _written(summary, on_conflict)

    async def delete_documents_async(self, document_ids: list[str]) -> None:
        """See :meth:`delete_documents`."""
        if document_ids:
            await (await self.async_client()).delete(self.collection, document_ids)

    async def delete_all_documents_async(self, recreate_index: bool = False) -> None:
        """See :meth:`delete_all_documents`."""
        client = await self.async_client()
        if recreate_index:
            spec = await client.get_collection(self.collection)
            await client.delete_collection(self.collection)
            await client.create_collection(spec.name, spec.dimension, metric=spec.metric, index=spec.index)
        else:
            await client.delete(self.collection, all_documents=True)

    async def delete_by_filter_async(self, filters: dict[str, Any]) -> int:
        """See :meth:`delete_by_filter`."""
        client = await self.async_client()
        with _haystack_errors():
            return await client.delete(self.collection, **self._selection(filters))

    async def update_by_filter_async(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """See :meth:`update_by_filter`."""
        client = await self.async_client()
        with _haystack_errors():
            return await client.update_metadata(self.collection, meta, **self._selection(filters))

    async def count_documents_by_filter_async(self, filters: dict[str, Any]) -> int:
        """See :meth:`count_documents_by_filter`."""
        client = await self.async_client()
        with _haystack_errors():
            return await client.count(self.collection, to_filter(filters))

    async def count_unique_metadata_by_filter_async(
        self, filters: dict[str, Any], metadata_fields: list[str]
    ) -> dict[str, int]:
        """See :meth:`count_unique_metadata_by_filter`."""
        client = await self.async_client()
        with _haystack_errors():
            server_filter = to_filter(filters)
            return {
                meta_key(f): await client.count_distinct(self.collection, meta_key(f), filter=server_filter)
                for f in metadata_fields
            }

    async def get_metadata_fields_info_async(self) -> dict[str, dict[str, str]]:
        """See :meth:`get_metadata_fields_info`."""
        return _fields_info(await (await self.async_client()).describe_metadata(self.collection))

    async def get_metadata_field_min_max_async(self, metadata_field: str) -> dict[str, Any]:
        """See :meth:`get_metadata_field_min_max`."""
        client = await self.async_client()
        try:
            return _min_max(await client.field_range(self.collection, meta_key(metadata_field)))
        except FailedPreconditionError as exc:
            logger.warning("No min/max for {field}: {error}", field=metadata_field, error=exc.message)
            return _min_max(None)

    async def get_metadata_field_unique_values_async(
        self,
        metadata_field: str,
        search_term: str | None = None,
        from_: int = 0,
        size: int = 10,
        filters: dict[str, Any] | None = None,
    ) -> tuple[list[Any], int]:
        """See :meth:`get_metadata_field_unique_values`."""
        client = await self.async_client()
        with _haystack_errors():
            server_filter = to_filter(filters)

            async def page(offset: int, limit: int) -> tuple[list[Any], int]:
                return await client.field_values(
                    self.collection,
                    meta_key(metadata_field),
                    filter=server_filter,
                    search_term=search_term or "",
                    offset=offset,
                    page_size=limit,
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
        """See :meth:`_embedding_retrieval`."""
        client = await self.async_client()
        with _haystack_errors():
            hits = await client.search(
                self.collection,
                query_embedding,
                top_k=top_k,
                filter=to_filter(filters),
                include_embedding=return_embedding,
            )
        return [from_hit(h) for h in hits]

    @staticmethod
    def _selection(filters: dict[str, Any]) -> dict[str, Any]:
        """Matching documents; empty filters select every document, as in Haystack."""
        server_filter = to_filter(filters)
        return {"all_documents": True} if server_filter is None else {"filter": server_filter}


def _fields_info(fields: dict[str, dict[str, int]]) -> dict[str, dict[str, str]]:
    info = {}
    for name, types in fields.items():
        kind = next((t for t in types if t != "null"), None)
        if kind is not None:
            info[name] = {"type": _FIELD_TYPES[kind]}
    return info


def _collect_pages(page: Callable[[int, int], tuple[list[T], int]], start: int, size: int) -> tuple[list[T], int]:
    """Up to ``size`` values from ``start``, at most MAX_VALUES_PAGE per call."""
    values: list[T] = []
    while True:
        limit = min(size - len(values), MAX_VALUES_PAGE)
        chunk, total = page(start + len(values), max(limit, 1))  # size 0 still asks for the total
        values.extend(chunk[:limit])
        if len(values) >= size or len(chunk) < limit:
            return values, total


async def _collect_pages_async(
    page: Callable[[int, int], Awaitable[tuple[list[T], int]]], start: int, size: int
) -> tuple[list[T], int]:
    """See :func:`_collect_pages`."""
    values: list[T] = []
    while True:
        limit = min(size - len(values), MAX_VALUES_PAGE)
        chunk, total = await page(start + len(values), max(limit, 1))
        values.extend(chunk[:limit])
        if len(values) >= size or len(chunk) < limit:
            return values, total
