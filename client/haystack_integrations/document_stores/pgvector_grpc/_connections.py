"""The connections of a PgvectorGrpcDocumentStore: a blocking and an asyncio client, each with the
collection made ready on first use."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from haystack.utils import Secret
from haystack_integrations.document_stores.pgvector_grpc.filters import to_filter

from pgvector_grpc.aio import AsyncClient
from pgvector_grpc.errors import PermissionDeniedError
from pgvector_grpc.sync import Client
from pgvector_grpc.types import HnswIndex, Metric, VectorStorage

DEFAULT_ADDRESS = "127.0.0.1:50051"


class StoreConnections:
    """The store's settings and its clients; the store's operations build on this."""

    address: Secret
    api_key: Secret
    tls: bool
    tls_ca_file: str | None
    tls_client_cert_file: str | None
    tls_client_key_file: str | None
    collection: str
    embedding_dimension: int
    metric: Metric
    hnsw_m: int
    hnsw_ef_construction: int
    vector_storage: VectorStorage
    rerank_factor: int | None
    read_from_primary: bool
    create_collection: bool
    text_search: str | None
    write_batch_size: int
    timeout: float
    _client: Client | None
    _async_client: AsyncClient | None
    _async_loop: asyncio.AbstractEventLoop | None
    _async_ready: bool

    def _address(self) -> str:
        return self.address.resolve_value() or DEFAULT_ADDRESS

    def _connection(self) -> dict[str, Any]:
        """Client arguments: the server, its credential and TLS."""
        return {
            "address": self._address(),
            "api_key": self.api_key.resolve_value() or None,
            "tls": self.tls_ca_file or self.tls,
            "client_cert": self.tls_client_cert_file,
            "client_key": self.tls_client_key_file,
        }

    def _create_args(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "index": HnswIndex(
                self.hnsw_m,
                self.hnsw_ef_construction,
                storage=self.vector_storage,
                rerank_factor=self.rerank_factor or 0,
            ),
            "text_search": self.text_search,
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
            client = Client(**self._connection(), timeout=self.timeout)
            created = False
            if self.create_collection:
                # Creating needs an admin key; a reader's or writer's store uses the existing collection.
                with contextlib.suppress(PermissionDeniedError):
                    client.create_collection(
                        self.collection, self.embedding_dimension, defer_index=defer_index, **self._create_args()
                    )
                    created = True
            if not created:
                client.get_collection(self.collection, read_from_primary=self.read_from_primary)
            self._client = client
        return self._client

    async def async_client(self) -> AsyncClient:
        """The asyncio client of the running event loop, with the collection ready."""
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client, self._async_loop, self._async_ready = AsyncClient(**self._connection()), loop, False
        if not self._async_ready:
            created = False
            if self.create_collection:
                with contextlib.suppress(PermissionDeniedError):
                    await self._async_client.create_collection(
                        self.collection, self.embedding_dimension, **self._create_args()
                    )
                    created = True
            if not created:
                await self._async_client.get_collection(self.collection, read_from_primary=self.read_from_primary)
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

    @staticmethod
    def _selection(filters: dict[str, Any]) -> dict[str, Any]:
        """Matching documents; empty filters select every document, as in Haystack."""
        server_filter = to_filter(filters)
        return {"all_documents": True} if server_filter is None else {"filter": server_filter}
