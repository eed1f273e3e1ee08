"""The client-side path: read a source here and write through Ingest, when the server cannot see it.

Same engine, mapping, checkpoints and verification as the server's Migrate RPC; the checkpoint
rides on each Ingest batch, so it is committed with the page it describes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from pgvector_grpc_common.migration.engine import migrate
from pgvector_grpc_common.migration.events import Event
from pgvector_grpc_common.migration.options import MigrationOptions
from pgvector_grpc_common.migration.protocols import Page
from pgvector_grpc_common.migration.sources.chroma import ChromaLocation, ChromaSource
from pgvector_grpc_common.vocabulary import DocumentRecord, Index, Metric, Vector

from pgvector_grpc.aio import AsyncClient
from pgvector_grpc.errors import NotFoundError
from pgvector_grpc.types import Document


def client_document(record: DocumentRecord) -> Document:
    """The client document of a record, with its exact float64 values where it has them."""
    embedding: Any = record.embedding
    if record.embedding_exact is not None:
        embedding = np.frombuffer(record.embedding_exact, dtype="<f8")
    return Document(record.id, record.content, json.loads(record.metadata_json), embedding)


def stored_record(doc: Document) -> DocumentRecord:
    """The record of a document read back (float64 values, when the server kept them, as exact bytes)."""
    metadata = json.dumps(doc.metadata, ensure_ascii=False)
    if doc.embedding is None:
        return DocumentRecord(doc.id, doc.content, metadata, None)
    exact = doc.embedding.astype("<f8").tobytes() if doc.embedding.dtype == np.float64 else None
    return DocumentRecord(doc.id, doc.content, metadata, doc.embedding.astype(np.float32, copy=False), exact)


class ClientTarget:
    """The engine's Target over the asyncio client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def describe(self, name: str) -> tuple[int, Metric] | None:
        try:
            collection = await self._client.get_collection(name)
        except NotFoundError:
            return None
        return collection.dimension, collection.metric

    async def create(self, name: str, dimension: int, metric: Metric, index: Index) -> None:
        await self._client.create_collection(
            name, dimension, metric=metric, index=index, if_not_exists=True, defer_index=True
        )

    async def checkpoint(self, name: str, key: str) -> str | None:
        return await self._client.get_checkpoint(name, key)

    async def write(self, name: str, page: Page, key: str, checkpoint: str) -> None:
        documents = [client_document(record) for record in page.records]
        await self._client.ingest(name, documents, batch_size=len(documents), checkpoint=(key, checkpoint))

    async def build_index(self, name: str) -> None:
        await self._client.build_index(name)

    async def count(self, name: str) -> int:
        return await self._client.count(name)

    async def ids(self, name: str, page_size: int) -> AsyncIterator[list[str]]:
        page: list[str] = []
        async for doc in self._client.list(name, page_size=page_size, include_content=False, include_metadata=False):
            page.append(doc.id)
            if len(page) == page_size:
                yield page
                page = []
        if page:
            yield page

    async def delete(self, name: str, ids: Sequence[str]) -> int:
        return await self._client.delete(name, ids)

    async def fetch(self, name: str, ids: Sequence[str], fields: bool) -> dict[str, DocumentRecord]:
        docs = await self._client.get(name, ids, include_embedding=fields)
        return {d.id: stored_record(d) for d in docs}

    async def nearest(self, name: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        hits = await self._client.search(
            name, vector, top_k=k, exact=True, include_content=False, include_metadata=False
        )
        return [(hit.id, hit.distance) for hit in hits]


async def migrate_locally(
    client: AsyncClient, location: ChromaLocation, collection: str, options: MigrationOptions
) -> AsyncIterator[Event]:
    """Read a Chroma collection on this machine and write it through ``client``."""
    source = await asyncio.to_thread(ChromaSource, location)
    try:
        handle = await asyncio.to_thread(source.collection, collection)
        async for event in migrate(handle, location.key(collection), ClientTarget(client), options):
            yield event
    finally:
        await asyncio.to_thread(source.close)
