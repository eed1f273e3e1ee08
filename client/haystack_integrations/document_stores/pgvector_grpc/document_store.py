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
from pgvector_grpc_common.vocabulary import MAX_RERANK_FACTOR, VECTOR_STORAGES

from pgvector_grpc.types import Metric, VectorStorage

ADDRESS_FROM_ENV = Secret.from_env_var("PGVECTOR_GRPC_ADDRESS", strict=False)
API_KEY_FROM_ENV = Secret.from_env_var("PGVECTOR_GRPC_API_KEY", strict=False)


class PgvectorGrpcDocumentStore(StoreOperations, AsyncStoreOperations):
    """A Haystack DocumentStore whose documents live in a collection of a pgvector-grpc server.

    The caller needs only the server's address (a Secret, by default the env var
    ``PGVECTOR_GRPC_ADDRESS``, else 127.0.0.1:50051) and, when the server requires authentication,
    an API key or JWT (a Secret, by default the env var ``PGVECTOR_GRPC_API_KEY``): no database
    driver, no database credentials. Secrets are serialised as the names of their environment
    variables, never as values. The collection is created on first use when missing (which needs
    an admin key; with a reader or writer key, create it beforehand and pass
    ``create_collection=False``). Filters follow Haystack's grammar and
    semantics, NOT included. A created collection's HNSW index may store compact vectors
    (``vector_storage``, re-ranked by exact distance); reads and searches may insist on the primary
    when the server has read replicas (``read_from_primary``). Embeddings, ids, content and
    metadata come back exactly as written (float64 embeddings too). ``blob`` and
    ``sparse_embedding`` are refused with a ValueError. ``filter_documents`` returns documents in
    the order they were first written.
    """

    def __init__(
        self,
        *,
        address: Secret = ADDRESS_FROM_ENV,
        api_key: Secret = API_KEY_FROM_ENV,
        tls: bool = False,
        tls_ca_file: str | None = None,
        tls_client_cert_file: str | None = None,
        tls_client_key_file: str | None = None,
        collection: str = "haystack",
        embedding_dimension: int = 768,
        metric: Metric = "cosine",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        vector_storage: VectorStorage = "vector",
        rerank_factor: int | None = None,
        read_from_primary: bool = False,
        create_collection: bool = True,
        text_search: str | None = None,
        write_batch_size: int = 500,
        timeout: float = 30.0,
    ) -> None:
        """
        :param address: host:port of the server, as a Secret.
        :param api_key: the API key (or a JWT) sent as ``authorization: Bearer``, as a Secret; none
            when it resolves to nothing.
        :param tls: use TLS, trusting the system's root certificates.
        :param tls_ca_file: use TLS, trusting the CA certificates in this PEM file.
        :param tls_client_cert_file: a client certificate (PEM) for servers that require one (mTLS).
        :param tls_client_key_file: the private key (PEM) of ``tls_client_cert_file``.
        :param collection: the server collection holding the documents.
        :param embedding_dimension: the dimension of the embeddings (used when creating the collection).
        :param metric: "cosine", "l2" or "inner_product"; scores are 1 - cosine distance, -L2 distance
            or the inner product.
        :param hnsw_m: HNSW ``m`` of a created collection.
        :param hnsw_ef_construction: HNSW ``ef_construction`` of a created collection.
        :param vector_storage: what the HNSW index of a created collection stores: "vector" (the
            vectors), "halfvec" (half-precision copies, half the size) or "bit" (sign bits, cosine
            metric only); the table keeps the full vectors and searches re-rank by exact distance.
        :param rerank_factor: candidates re-ranked per result wanted, for a created collection with
            halfvec or bit storage (1-100; None: the server's default, 2 for halfvec, 10 for bit).
        :param read_from_primary: every read and search goes to the primary database, never to a
            read replica (which may lag behind the writes).
        :param create_collection: create the collection when it does not exist (else NOT_FOUND).
        :param text_search: index the content of a created collection for keyword search with this
            PostgreSQL text-search configuration (e.g. "simple" or "english"), which
            PgvectorGrpcHybridRetriever needs; None: no full-text index.
        :param write_batch_size: documents per Ingest batch (each batch is one transaction).
        :param timeout: seconds per call.
        """
        if (tls_client_cert_file is None) != (tls_client_key_file is None):
            raise ValueError("tls_client_cert_file and tls_client_key_file go together")
        _check_compact_storage(vector_storage, rerank_factor, metric)
        if not isinstance(read_from_primary, bool):
            raise ValueError(f"read_from_primary must be True or False, got {read_from_primary!r}")
        self.address = address
        self.api_key = api_key
        self.tls = tls
        self.tls_ca_file = tls_ca_file
        self.tls_client_cert_file = tls_client_cert_file
        self.tls_client_key_file = tls_client_key_file
        self.collection = collection
        self.embedding_dimension = embedding_dimension
        self.metric: Metric = metric
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.vector_storage: VectorStorage = vector_storage
        self.rerank_factor = rerank_factor
        self.read_from_primary = read_from_primary
        self.create_collection = create_collection
        self.text_search = text_search
        self.write_batch_size = write_batch_size
        self.timeout = timeout
        self._client = None
        self._async_client = None
        self._async_loop = None
        self._async_ready = False

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Serialises the store (the address and the API key stay Secret references: an API key given
        as a token refuses to be serialised)."""
        return default_to_dict(
            self,
            address=self.address.to_dict(),
            api_key=self.api_key.to_dict(),
            tls=self.tls,
            tls_ca_file=self.tls_ca_file,
            tls_client_cert_file=self.tls_client_cert_file,
            tls_client_key_file=self.tls_client_key_file,
            collection=self.collection,
            embedding_dimension=self.embedding_dimension,
            metric=self.metric,
            hnsw_m=self.hnsw_m,
            hnsw_ef_construction=self.hnsw_ef_construction,
            vector_storage=self.vector_storage,
            rerank_factor=self.rerank_factor,
            read_from_primary=self.read_from_primary,
            create_collection=self.create_collection,
            text_search=self.text_search,
            write_batch_size=self.write_batch_size,
            timeout=self.timeout,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PgvectorGrpcDocumentStore:
        """Deserialises a store written by :meth:`to_dict`."""
        deserialize_secrets_inplace(data["init_parameters"], keys=["address", "api_key"])
        return default_from_dict(cls, data)


def _check_compact_storage(vector_storage: str, rerank_factor: int | None, metric: str) -> None:
    """The storage of a created collection's index and its rerank factor, as the server accepts them."""
    if vector_storage not in VECTOR_STORAGES:
        raise ValueError(f"vector_storage must be one of {', '.join(VECTOR_STORAGES)}, got {vector_storage!r}")
    if vector_storage == "bit" and metric != "cosine":
        raise ValueError(f"vector_storage 'bit' needs metric 'cosine', not {metric!r} (sign bits keep no length)")
    if rerank_factor is None:
        return
    if isinstance(rerank_factor, bool) or not isinstance(rerank_factor, int):
        raise ValueError(f"rerank_factor must be an integer or None, got {rerank_factor!r}")
    if not 1 <= rerank_factor <= MAX_RERANK_FACTOR:
        raise ValueError(f"rerank_factor must be between 1 and {MAX_RERANK_FACTOR}, got {rerank_factor}")
    if vector_storage == "vector" and rerank_factor != 1:
        raise ValueError(
            "rerank_factor applies to vector_storage 'halfvec' or 'bit' only (full vectors' distances are exact)"
        )
