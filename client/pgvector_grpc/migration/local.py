"""The client-side path: read Chroma here and write through Ingest, when the server cannot see the files.

Same engine, mapping, checkpoints and verification as the server's Migrate RPC; the checkpoint
rides on each Ingest batch, so it is committed with the page it describes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from pgvector_grpc_common.migration.engine import MigrationOptions, TargetDocument, migrate
from pgvector_grpc_common.migration.events import Event, IndexPlan, Metric
from pgvector_grpc_common.migration.sources.chroma import ChromaLocation, ChromaSource, Page

from pgvector_grpc.aio import AsyncClient
from pgvector_grpc.errors import NotFoundError
from pgvector_grpc.types import Document, HnswIndex, Index, IvfflatIndex, NoIndex


def index_of(plan: IndexPlan) -> Index:
    """The client's index type for a plan."""
    if plan.kind == "ivfflat":
        return IvfflatIndex(plan.lists or 100)
    if plan.kind == "none":
        return NoIndex()
    return HnswIndex(plan.m or 16, plan.ef_construction or 64)


class ClientTarget:
    """The engine's Target over the gRPC client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def describe(self, name: str) -> tuple[int, Metric] | None:
        try:
            collection = await self._client.get_collection(name)
        except NotFoundError:
            return None
        return collection.dimension, collection.metric

    async def create(self, name: str, dimension: int, metric: Metric, index: IndexPlan) -> None:
        await self._client.create_collection(
            name, dimension, metric=metric, index=index_of(index), if_not_exists=True, defer_index=True
        )

    async def checkpoint(self, name: str, key: str) -> str | None:
        return await self._client.get_checkpoint(name, key)

    async def write(self, name: str, page: Page, key: str, checkpoint: str) -> None:
        documents = [
            Document(page.ids[i], page.contents[i], json.loads(page.metadata_json[i]), page.embeddings[i])
            for i in range(len(page.ids))
        ]
        await self._client.ingest(name, documents, batch_size=len(documents), checkpoint=(key, checkpoint))

    async def build_index(self, name: str) -> None:
        await self._client.build_index(name)

    async def count(self, name: str) -> int:
        return await self._client.count(name)

    async def fetch(self, name: str, ids: Sequence[str], fields: bool) -> dict[str, TargetDocument]:
        docs = await self._client.get(name, ids, include_embedding=fields)
        return {
            d.id: TargetDocument(
                d.id,
                d.content,
                json.dumps(d.metadata, ensure_ascii=False),
                None if d.embedding is None else d.embedding.astype(np.float32, copy=False),
            )
            for d in docs
        }

    async def nearest(
        self, name: str, vector: np.ndarray[Any, np.dtype[np.float32]], k: int
    ) -> list[tuple[str, float]]:
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
