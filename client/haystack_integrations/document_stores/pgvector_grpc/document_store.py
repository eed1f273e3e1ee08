"""PgvectorGrpcDocumentStore: a Haystack DocumentStore on a pgvector-grpc server.

Defined under Haystack's integration namespace, which Haystack's pipeline loader trusts. The
operations come in two flavours: the ``*_async`` ones in ``_async_operations.py`` and the blocking
ones generated from them (``_sync_operations.py``)."""

from __future__ import annotations

from typing import Any

from haystack import default_from_dict, default_to_dict
from haystack.utils import Secret, deserialize_secrets_inplace
from haystack_integrations.document_stores.pgvector_grpc._async_operations import AsyncStoreOperations
from haystack_integrations.document_stores.pgvector_grpc._sync_operations import StoreOperations

from pgvector_grpc.types import Metric

ADDRESS_FROM_ENV = Secret.from_env_var("PGVECTOR_GRPC_ADDRESS", strict=False)


class PgvectorGrpcDocumentStore(StoreOperations, AsyncStoreOperations):
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
        self._client = None
        self._async_client = None
        self._async_loop = None
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
