"""The two sides of a migration as the engine sees them: a Source read page by page and a
Target written page by page, each page with its checkpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from pgvector_grpc_common.vocabulary import DocumentRecord, Index, Metric, Vector


@dataclass(frozen=True)
class Cursor:
    """Where reading continues: after ``offset`` documents, the last of which was ``last_id``.
    A source pages by whichever of the two it can seek to."""

    offset: int = 0
    last_id: str | None = None


@dataclass(frozen=True)
class Page:
    """Documents read from the source, in its stable order, starting at ``offset``."""

    offset: int
    records: list[DocumentRecord]

    @property
    def ids(self) -> list[str]:
        """The ids of the page's documents, in order."""
        return [record.id for record in self.records]

    def end(self) -> Cursor:
        """The cursor just after this page."""
        return Cursor(self.offset + len(self.records), self.records[-1].id if self.records else None)


@dataclass(frozen=True)
class SourceCollection:
    """What the source collection holds and how it maps onto ours."""

    name: str
    count: int
    dimension: int
    metric: Metric
    index: Index
    metadata_keys: list[str]


class Source(Protocol):
    """A store documents are read from; blocking calls (the engine runs them in a worker thread)."""

    def describe(self) -> SourceCollection:
        """Name, count, dimension, metric, index settings and metadata keys."""

    def count(self) -> int:
        """The number of documents."""

    def continues_after(self, cursor: Cursor) -> bool:
        """Whether reading can resume at ``cursor`` (a saved checkpoint) and still see every document."""

    def page(self, start: Cursor, size: int, fields: bool = True) -> Page:
        """Up to ``size`` documents from ``start``; only ids and embeddings unless ``fields``."""

    def get(self, ids: Sequence[str]) -> list[DocumentRecord]:
        """The documents with these ids that exist."""

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids the source holds."""

    def embedding_at(self, offset: int) -> Vector | None:
        """The embedding of the document at a position (None when it has none)."""


class Target(Protocol):
    """The collection being written, as the engine needs it."""

    async def describe(self, name: str) -> tuple[int, Metric] | None:
        """(dimension, metric) of an existing collection, or None."""

    async def create(self, name: str, dimension: int, metric: Metric, index: Index) -> None:
        """Create the collection with its vector index deferred."""

    async def checkpoint(self, name: str, key: str) -> str | None:
        """The checkpoint saved under ``key``."""

    async def write(self, name: str, page: Page, key: str, checkpoint: str) -> None:
        """Upsert the page and save the checkpoint in one transaction."""

    async def build_index(self, name: str) -> None:
        """Build the deferred vector index (no-op when built)."""

    async def count(self, name: str) -> int:
        """The number of documents."""

    def ids(self, name: str, page_size: int) -> AsyncIterator[list[str]]:
        """Every document id, page by page in id order; deleting ids of a page already yielded
        does not make the next pages skip or repeat any."""

    async def delete(self, name: str, ids: Sequence[str]) -> int:
        """Delete the documents with these ids; how many there were."""

    async def fetch(self, name: str, ids: Sequence[str], fields: bool) -> dict[str, DocumentRecord]:
        """The documents with these ids that exist (with content, metadata and embedding if ``fields``)."""

    async def nearest(self, name: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        """The exact k nearest (id, distance), closest first."""
