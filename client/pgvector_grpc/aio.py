"""The asyncio client, :class:`AsyncClient`.

The source of the blocking client too: ``sync.py`` is generated from this file by
``scripts/async_to_sync.py`` (``make generate``), so both carry the same methods and docstrings."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pgvector_grpc_common.migration.events import Event

from pgvector_grpc._base import DEFAULT, ClientBase, TokenSource, bearer_credential, default_address
from pgvector_grpc._channel import Pem, acall, aio_channel, channel_options, close_aio_channel, tls_credentials
from pgvector_grpc._convert.collection import collection_from_pb, collection_to_pb
from pgvector_grpc._convert.consistency import consistency_pb
from pgvector_grpc._convert.document import (
    FieldPath,
    count_request,
    delete_request,
    describe_request,
    document_from_pb,
    field_range_from_pb,
    field_range_request,
    field_values_from_pb,
    field_values_request,
    fields_from_pb,
    include_pb,
    list_request,
    update_request,
)
from pgvector_grpc._convert.ingest import ack_from_pb, ingest_requests_async
from pgvector_grpc._convert.migration import migrate_request, migration_event_from_pb
from pgvector_grpc._convert.search import results_from_pb, search_request, search_stream_requests, search_stream_result
from pgvector_grpc.errors import from_rpc_error
from pgvector_grpc.filters import FilterLike
from pgvector_grpc.types import (
    Collection,
    Document,
    DocumentColumns,
    Index,
    IngestAck,
    IngestSummary,
    Metric,
    OnConflict,
    SearchMode,
    SearchResults,
)
from pgvector_grpc.v1 import collection_service_pb2 as cs
from pgvector_grpc.v1 import collection_service_pb2_grpc, document_service_pb2_grpc, migration_service_pb2_grpc
from pgvector_grpc.v1 import document_service_pb2 as ds


class AsyncClient(ClientBase):
    """A connection to a pgvector-grpc server (``AsyncClient`` awaits, ``Client`` blocks: same methods).

    ``address`` defaults to ``$PGVECTOR_GRPC_ADDRESS``, else 127.0.0.1:50051.

    Credentials travel as ``authorization: Bearer …`` on every call, streams included: ``api_key``
    (default ``$PGVECTOR_GRPC_API_KEY``) or ``token``, a JWT or a function returning the current
    one (called before each call, so it can refresh; keep it cheap). Neither is ever shown by
    ``repr`` or in errors.

    ``tls``: False (plaintext), True (TLS trusting the system's root certificates), or the root
    certificates to trust as PEM bytes or a PEM file path. ``client_cert`` / ``client_key`` (PEM
    bytes or paths) present a client certificate (mTLS; implies TLS). ``tls_server_name`` is the
    name the server's certificate must carry when the address's host differs from it.
    ``credentials`` takes ready-made ``grpc.ChannelCredentials`` instead of the TLS arguments.

    ``timeout`` is the default deadline of every call in seconds (``None`` = none; ingest has
    none unless given); the server ends the call's statements in the database by then. Idempotent
    reads that fail with UNAVAILABLE are retried up to ``retries`` times, after waits of about 0.1,
    0.2, 0.4 s ... (at most 1 s, with jitter), and never later than 3 s after the first attempt:
    while the server's database is down such a read fails within about 3 s. Writes and streams
    are never retried. Errors are raised as :class:`pgvector_grpc.errors.PgvectorGrpcError`
    subclasses.

    Reads (search, get, count, list, the collection and metadata reads) may be answered by a read
    replica of the server's database, which may lack writes of the last few seconds (the server's
    ``--max-replica-lag``); ``read_from_primary=True`` reads the primary instead, which has every
    write acknowledged before the call (read your own writes)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        token: TokenSource | None = None,
        tls: bool | Pem = False,
        client_cert: Pem | None = None,
        client_key: Pem | None = None,
        tls_server_name: str | None = None,
        timeout: float | None = 30.0,
        max_message_bytes: int = 64 * 2**20,
        retries: int = 3,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        address = default_address(address)
        channel_credentials = tls_credentials(tls, client_cert, client_key, credentials)
        if tls_server_name and channel_credentials is None:
            raise ValueError("tls_server_name needs TLS (tls=, client_cert= or credentials=)")
        credential = bearer_credential(api_key, token, metadata)
        super().__init__(address, timeout, retries, metadata, credential, tls=channel_credentials is not None)
        self._channel = aio_channel(address, channel_options(max_message_bytes, tls_server_name), channel_credentials)
        self._collections = collection_service_pb2_grpc.CollectionServiceStub(self._channel)
        self._documents = document_service_pb2_grpc.DocumentServiceStub(self._channel)
        self._migration = migration_service_pb2_grpc.MigrationServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def health(self, service: str = "", *, timeout: float | None = DEFAULT) -> str:
        """The server's health (``service`` empty: the whole server) as grpc.health.v1 names it:
        SERVING or NOT_SERVING (the database is unreachable). Not retried; open without credentials."""
        request = health_pb2.HealthCheckRequest(service=service)
        response = await acall(lambda: self._health.Check(request, **self._kw(timeout)))
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def create_collection(
        self,
        name: str,
        dimension: int,
        *,
        metric: Metric = "cosine",
        index: Index | None = None,
        if_not_exists: bool = False,
        defer_index: bool = False,
        multi_tenant: bool = False,
        text_search: str | None = None,
        timeout: float | None = DEFAULT,
    ) -> Collection:
        """Create a collection (HNSW index unless ``index`` says otherwise). Raises AlreadyExistsError,
        or with ``if_not_exists`` returns the existing one (FailedPreconditionError if it differs).

        A compact index keeps the index small and the full vectors in the table for re-ranking:
        ``index=HnswIndex(storage="halfvec")`` (half precision) or ``HnswIndex(storage="bit",
        rerank_factor=10)`` (sign bits, cosine metric only).

        ``multi_tenant`` keeps each tenant's documents apart: every call on the collection sees,
        counts, changes and deletes only the documents of its credential's tenant, enforced by
        PostgreSQL row-level security; tenants may reuse each other's ids.

        ``text_search`` indexes the content for keyword search (``search(..., query_text=...)``)
        with a PostgreSQL text-search configuration: ``"simple"`` (every word, lowercased: codes,
        names, mixed languages) or a language's, such as ``"english"`` (stemmed, without stop words)."""
        request = cs.CreateCollectionRequest(
            collection=collection_to_pb(
                name, dimension, metric, index, multi_tenant=multi_tenant, text_search=text_search
            ),
            if_not_exists=if_not_exists,
            defer_index=defer_index,
        )
        response = await acall(lambda: self._collections.CreateCollection(request, **self._kw(timeout)))
        return collection_from_pb(response.collection)

    async def get_collection(
        self, name: str, *, read_from_primary: bool = False, timeout: float | None = DEFAULT
    ) -> Collection:
        """One collection with its document count. Raises NotFoundError."""
        request = cs.GetCollectionRequest(name=name, consistency=consistency_pb(read_from_primary))
        response = await acall(lambda: self._collections.GetCollection(request, **self._kw(timeout)), self._retries)
        return collection_from_pb(response.collection)

    async def list_collections(
        self, *, read_from_primary: bool = False, timeout: float | None = DEFAULT
    ) -> list[Collection]:
        """Every collection, by name."""
        request = cs.ListCollectionsRequest(consistency=consistency_pb(read_from_primary))
        response = await acall(lambda: self._collections.ListCollections(request, **self._kw(timeout)), self._retries)
        return [collection_from_pb(c) for c in response.collections]

    async def build_index(self, name: str, *, timeout: float | None = None) -> Collection:
        """Build the vector index of a collection created with ``defer_index=True`` (no-op when built)."""
        request = cs.BuildIndexRequest(name=name)
        response = await acall(lambda: self._collections.BuildIndex(request, **self._kw(timeout)), self._retries)
        return collection_from_pb(response.collection)

    async def get_checkpoint(self, collection: str, key: str, *, timeout: float | None = DEFAULT) -> str | None:
        """The checkpoint value an ``ingest(..., checkpoint=(key, value))`` saved, or None."""
        request = ds.GetCheckpointRequest(collection=collection, key=key)
        response = await acall(lambda: self._documents.GetCheckpoint(request, **self._kw(timeout)), self._retries)
        return response.checkpoint.value if response.found else None

    async def delete_collection(self, name: str, *, timeout: float | None = DEFAULT) -> None:
        """Drop a collection and its documents. Raises NotFoundError."""
        request = cs.DeleteCollectionRequest(name=name)
        await acall(lambda: self._collections.DeleteCollection(request, **self._kw(timeout)))

    async def ingest(
        self,
        collection: str,
        documents: Iterable[Document | dict[str, Any]] | AsyncIterable[Document | dict[str, Any]] | DocumentColumns,
        *,
        batch_size: int = 500,
        on_conflict: OnConflict = "upsert",
        on_ack: Callable[[IngestAck], None] | None = None,
        checkpoint: tuple[str, str] | None = None,
        timeout: float | None = None,
    ) -> IngestSummary:
        """Stream documents in batches; each batch is committed and acknowledged on its own.

        ``documents`` may be any iterable (a generator of millions is read lazily), and for
        ``AsyncClient`` an async iterable too; or :class:`DocumentColumns` (ids, an embedding
        matrix, ...), sent as columns: the fastest form when the data is in arrays already. On
        failure the raised error's ``acknowledged`` tells what was committed before it."""
        summary = IngestSummary()
        requests = ingest_requests_async(collection, documents, batch_size, on_conflict, checkpoint)
        try:
            async for response in self._documents.Ingest(requests, **self._kw(timeout)):
                ack = ack_from_pb(response)
                summary = summary.add(ack)
                if on_ack is not None:
                    on_ack(ack)
        except grpc.RpcError as exc:
            error = from_rpc_error(exc)
            error.acknowledged = summary
            raise error from None
        return summary

    async def search(
        self,
        collection: str,
        embedding: Any = None,
        *,
        top_k: int = 10,
        filter: FilterLike | None = None,
        min_similarity: float | None = None,
        include_content: bool = True,
        include_metadata: bool = True,
        include_embedding: bool = False,
        ef_search: int | None = None,
        exact: bool = False,
        query_text: str | None = None,
        mode: SearchMode | None = None,
        rrf_k: int | None = None,
        vector_weight: float | None = None,
        keyword_weight: float | None = None,
        candidates: int | None = None,
        read_from_primary: bool = False,
        rerank_factor: int | None = None,
        probes: int | None = None,
        timeout: float | None = DEFAULT,
    ) -> SearchResults:
        """The ``top_k`` nearest documents, closest first. ``filter`` is a dict
        (``{"year": {"$gte": 2020}}``) or a typed filter (``Field("year") >= 2020``).
        The list's ``exhaustive`` attribute says whether it is the exact answer (see SearchResults).

        ``query_text`` (on a collection created with ``text_search``) searches the content by
        keywords too - words, "quoted phrases", OR, -excluded - and fuses the two rankings by
        reciprocal rank fusion (hybrid search): a hit's score is ``vector_weight / (rrf_k + vector
        rank) + keyword_weight / (rrf_k + keyword rank)`` (defaults 1, 1 and 60), each ranking
        contributing ``candidates`` documents (default max(2 * top_k, 20)). Without an embedding,
        or with ``mode="keyword"``, the keywords alone rank. ``filter`` restricts both rankings.

        ``rerank_factor`` overrides the collection's for a compact (halfvec or bit) index: it returns
        ``rerank_factor * top_k`` candidates, re-ranked by exact distance. ``probes``: how many of an
        IVFFlat index's lists to visit first (default: the square root of its lists)."""
        request = search_request(
            collection,
            embedding,
            top_k=top_k,
            filter=filter,
            min_similarity=min_similarity,
            include_content=include_content,
            include_metadata=include_metadata,
            include_embedding=include_embedding,
            ef_search=ef_search,
            exact=exact,
            query_text=query_text,
            mode=mode,
            rrf_k=rrf_k,
            vector_weight=vector_weight,
            keyword_weight=keyword_weight,
            candidates=candidates,
            read_from_primary=read_from_primary,
            rerank_factor=rerank_factor,
            probes=probes,
        )
        response = await acall(lambda: self._documents.Search(request, **self._kw(timeout)), self._retries)
        return results_from_pb(response)

    async def search_many(
        self,
        collection: str,
        embeddings: Iterable[Any],
        *,
        query_texts: Iterable[str | None] | None = None,
        timeout: float | None = DEFAULT,
        **options: Any,
    ) -> list[SearchResults]:
        """Many queries on one SearchStream; results in input order. Takes ``search``'s options.
        ``query_texts`` (as many as embeddings) makes query i a hybrid search of ``query_texts[i]``
        (None: a vector search); an embedding of None with a text is a keyword search."""
        requests = search_stream_requests(collection, embeddings, options, query_texts)
        answers: dict[int, SearchResults] = {}
        try:
            async for response in self._documents.SearchStream(requests, **self._kw(timeout)):
                answers[int(response.request_id)] = search_stream_result(response)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return [answers[i] for i in range(len(answers))]

    async def get(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        include_embedding: bool = False,
        read_from_primary: bool = False,
        timeout: float | None = DEFAULT,
    ) -> list[Document]:
        """Documents by id, in the order asked; missing ids are left out."""
        request = ds.GetDocumentsRequest(
            collection=collection,
            ids=list(ids),
            include=include_pb(True, True, include_embedding),
            consistency=consistency_pb(read_from_primary),
        )
        response = await acall(lambda: self._documents.GetDocuments(request, **self._kw(timeout)), self._retries)
        return [document_from_pb(d) for d in response.documents]

    async def delete(
        self,
        collection: str,
        ids: Sequence[str] | None = None,
        *,
        filter: FilterLike | None = None,
        all_documents: bool = False,
        timeout: float | None = DEFAULT,
    ) -> int:
        """Delete by ids and/or filter (everything only with ``all_documents=True``); the number deleted."""
        request = delete_request(collection, ids, filter, all_documents)
        response = await acall(lambda: self._documents.DeleteDocuments(request, **self._kw(timeout)))
        return response.deleted

    async def count(
        self,
        collection: str,
        filter: FilterLike | None = None,
        *,
        read_from_primary: bool = False,
        timeout: float | None = DEFAULT,
    ) -> int:
        """The number of documents matching ``filter`` (all without one)."""
        request = count_request(collection, filter)
        request.consistency = consistency_pb(read_from_primary)
        response = await acall(lambda: self._documents.CountDocuments(request, **self._kw(timeout)), self._retries)
        return response.count

    async def list(
        self,
        collection: str,
        *,
        filter: FilterLike | None = None,
        page_size: int = 100,
        include_embedding: bool = False,
        order: Literal["id", "insertion"] = "id",
        include_content: bool = True,
        include_metadata: bool = True,
        read_from_primary: bool = False,
        timeout: float | None = DEFAULT,
    ) -> AsyncIterator[Document]:
        """Every matching document in id order (or in the order first written, with
        ``order="insertion"``), fetched page by page. Turn off ``include_content`` and
        ``include_metadata`` to list only ids (with embeddings if ``include_embedding``)."""
        include = include_pb(include_content, include_metadata, include_embedding)
        request = list_request(collection, filter, page_size, include, order)
        request.consistency = consistency_pb(read_from_primary)
        while True:
            page = await acall(lambda: self._documents.ListDocuments(request, **self._kw(timeout)), self._retries)
            for doc in page.documents:
                yield document_from_pb(doc)
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def update_metadata(
        self,
        collection: str,
        metadata: Mapping[str, Any],
        ids: Sequence[str] | None = None,
        *,
        filter: FilterLike | None = None,
        all_documents: bool = False,
        timeout: float | None = DEFAULT,
    ) -> int:
        """Set the top-level keys of ``metadata`` on the documents selected by ids and/or filter
        (every document only with ``all_documents=True``), keeping their other keys; the number updated."""
        request = update_request(collection, metadata, ids, filter, all_documents)
        return (await acall(lambda: self._documents.UpdateMetadata(request, **self._kw(timeout)))).updated

    async def describe_metadata(
        self,
        collection: str,
        filter: FilterLike | None = None,
        *,
        read_from_primary: bool = False,
        timeout: float | None = DEFAULT,
    ) -> dict[str, dict[str, int]]:
        """The top-level metadata fields of matching documents: ``{field: {value type: documents}}``
        with types string, integer, float, boolean, null, array, object, most frequent first."""
        request = describe_request(collection, filter)
        request.consistency = consistency_pb(read_from_primary)
        return fields_from_pb(
            await acall(lambda: self._documents.DescribeMetadata(request, **self._kw(timeout)), self._retries)
        )

    async def field_values(
        self,
        collection: str,
        field: FieldPath,
        *,
        filter: FilterLike | None = None,
        search_term: str = "",
        offset: int = 0,
        page_size: int = 100,
        read_from_primary: bool = False,
        timeout: float | None = DEFAULT,
    ) -> tuple[builtins.list[Any], int]:
        """A page of the distinct non-null values of a metadata field and their total number.
        ``field`` is a top-level key, or a sequence of keys for a nested one; values of different
        types stay apart; ``search_term`` keeps values containing it, ignoring case."""
        request = field_values_request(collection, field, filter, search_term, offset, page_size)
        request.consistency = consistency_pb(read_from_primary)
        response = await acall(lambda: self._documents.GetFieldValues(request, **self._kw(timeout)), self._retries)
        return field_values_from_pb(response)

    async def count_distinct(
        self,
        collection: str,
        field: FieldPath,
        *,
        filter: FilterLike | None = None,
        read_from_primary: bool = False,
        timeout: float | None = DEFAULT,
    ) -> int:
        """The number of distinct non-null values of a metadata field among matching documents."""
        request = field_values_request(collection, field, filter, "", 0, 0, count_only=True)
        request.consistency = consistency_pb(read_from_primary)
        response = await acall(lambda: self._documents.GetFieldValues(request, **self._kw(timeout)), self._retries)
        return response.total

    async def field_range(
        self,
        collection: str,
        field: FieldPath,
        *,
        filter: FilterLike | None = None,
        read_from_primary: bool = False,
        timeout: float | None = DEFAULT,
    ) -> tuple[Any, Any] | None:
        """(smallest, largest) value of a metadata field, None when no document has one.
        FAILED_PRECONDITION when its values mix numbers, strings and booleans."""
        request = field_range_request(collection, field, filter)
        request.consistency = consistency_pb(read_from_primary)
        response = await acall(lambda: self._documents.GetFieldRange(request, **self._kw(timeout)), self._retries)
        return field_range_from_pb(response)

    async def migrate(
        self,
        source: str,
        collection: str,
        *,
        target: str = "",
        tenant: str = "",
        database: str = "",
        headers: Mapping[str, str] | None = None,
        dry_run: bool = False,
        restart: bool = False,
        index: Index | None = None,
        batch_size: int = 0,
        verify_sample_size: int = 0,
        mirror: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[Event]:
        """Run the server's Migrate RPC: copy a ChromaDB collection the server can reach.

        ``source`` is a Chroma persistent directory on the server's machine or a Chroma server URL.
        Yields a SourceSummary, Progress events and, last, the verification Report. Re-running
        resumes from the checkpoint unless ``restart``; ``dry_run`` yields only the summary.
        ``mirror`` deletes, after the copy, the target documents whose ids the source does not
        hold (the Report's ``deleted_count``); without it they stay and the Report lists them as
        extra (``extra_ids``, ``extra_count``), which makes it not ``ok``."""
        request = migrate_request(
            source,
            collection,
            target=target,
            tenant=tenant,
            database=database,
            headers=headers,
            dry_run=dry_run,
            restart=restart,
            index=index,
            batch_size=batch_size,
            verify_sample_size=verify_sample_size,
            mirror=mirror,
        )
        try:
            async for response in self._migration.Migrate(request, **self._kw(timeout)):
                yield migration_event_from_pb(response, collection)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def close(self) -> None:
        """Close the channel."""
        await close_aio_channel(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
