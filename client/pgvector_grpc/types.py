"""The client's public value types (metrics and indexes come from the shared vocabulary)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from pgvector_grpc_common.vocabulary import HnswIndex, Index, IvfflatIndex, Metric, NoIndex, VectorStorage

__all__ = [
    "Collection",
    "Document",
    "DocumentColumns",
    "Embedding",
    "HnswIndex",
    "Index",
    "IngestAck",
    "IngestSummary",
    "IvfflatIndex",
    "Metric",
    "NoIndex",
    "OnConflict",
    "SearchHit",
    "SearchMode",
    "SearchResults",
    "VectorStorage",
    "as_embedding",
]

OnConflict = Literal["upsert", "skip", "fail"]
Embedding: TypeAlias = npt.NDArray[np.float32] | npt.NDArray[np.float64]


def as_embedding(value: Any) -> Embedding | None:
    """A 1-d array from a list, tuple or array (None stays None): float64 when given float64
    values (Python floats included), which the server keeps exactly; float32 otherwise."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype == np.float64:
        return array.reshape(-1)
    return array.astype(np.float32, copy=False).reshape(-1)


@dataclass(slots=True)
class Document:
    """A document: id, optional text, a metadata object and an optional embedding."""

    id: str
    content: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: Embedding | None = None

    def __post_init__(self) -> None:
        self.embedding = as_embedding(self.embedding)

    @classmethod
    def from_value(cls, value: Document | Mapping[str, Any]) -> Document:
        """A Document from itself or from a dict with keys id, content, metadata, embedding."""
        if isinstance(value, Document):
            return value
        return cls(value["id"], value.get("content"), dict(value.get("metadata") or {}), value.get("embedding"))


@dataclass(frozen=True)
class DocumentColumns:
    """Documents as columns, for ``ingest``: entry i of each column belongs to ``ids[i]``. They travel
    as columns too (all embeddings of a batch in one matrix), the cheapest form to send.

    ``embeddings`` is an (n, dimension) array (float64 values the server keeps exactly, as for
    :class:`Document`); ``contents`` entries may be None (no text); ``metadatas`` entries are
    dicts (None = {}). A column left None means no document has that part."""

    ids: Sequence[str]
    embeddings: Any = None
    contents: Sequence[str | None] | None = None
    metadatas: Sequence[Mapping[str, Any] | None] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.embeddings is not None:
            matrix = np.asarray(self.embeddings)
            if matrix.dtype != np.float64:
                matrix = matrix.astype(np.float32, copy=False)
            if matrix.ndim != 2 or matrix.shape[0] != n:
                raise ValueError(f"embeddings must be an array of shape ({n}, dimension), got {matrix.shape}")
            object.__setattr__(self, "embeddings", matrix)
        for name in ("contents", "metadatas"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise ValueError(f"{name} has {len(column)} entries for {n} ids")

    def __len__(self) -> int:
        return len(self.ids)


SearchMode = Literal["vector", "keyword", "hybrid"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result. ``score`` is what hits are ordered by, higher first: the similarity in a
    vector search (higher is closer), ``fused_score`` in a hybrid search, the keyword relevance in a
    keyword search. ``distance`` is pgvector's (0.0 when ``vector_score`` is None).

    ``vector_score`` is the similarity to the query embedding (None without one, or when the document
    has no embedding); ``keyword_rank`` the place in the keyword ranking from 1 (None: the document
    does not match the query text); ``fused_score`` the reciprocal rank fusion score of a hybrid search."""

    id: str
    score: float
    distance: float
    content: str | None
    metadata: dict[str, Any]
    embedding: Embedding | None = None
    vector_score: float | None = None
    keyword_rank: int | None = None
    fused_score: float | None = None


class SearchResults(list[SearchHit]):
    """The hits of one search, closest first: a plain list of ``SearchHit`` with one more attribute.

    ``exhaustive`` is True when the hits are the exact answer - the server computed the distance of
    every document matching the filter (``exact=True``, a collection without a vector index, or a
    filter matching so few documents that scanning them beat the index) - and False when the vector
    index chose them (approximate: high recall, not guaranteed)."""

    __slots__ = ("exhaustive",)

    def __init__(self, hits: Iterable[SearchHit] = (), exhaustive: bool = False) -> None:
        super().__init__(hits)
        self.exhaustive = exhaustive

    def __repr__(self) -> str:
        return f"SearchResults({list.__repr__(self)}, exhaustive={self.exhaustive})"


@dataclass(frozen=True, slots=True)
class Collection:
    """A collection as the server reports it."""

    name: str
    dimension: int
    metric: Metric
    index: Index
    # In a multi-tenant collection: the calling tenant's documents.
    document_count: int = 0
    # Each tenant's documents kept apart by PostgreSQL row-level security (fixed on create).
    multi_tenant: bool = False
    # The text-search configuration of the content's full-text index (None: no keyword search).
    text_search: str | None = None
    # The vector index waits for build_index (created with defer_index, or IVFFlat): searches are
    # exact scans meanwhile.
    index_pending: bool = False


@dataclass(frozen=True, slots=True)
class IngestAck:
    """One committed batch."""

    sequence: int
    inserted: int
    updated: int
    skipped: int


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What an ingest did, summed over its acknowledged batches."""

    batches: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0

    @property
    def documents(self) -> int:
        """Documents acknowledged (inserted + updated + skipped)."""
        return self.inserted + self.updated + self.skipped

    def add(self, ack: IngestAck) -> IngestSummary:
        """This summary with one more batch."""
        return IngestSummary(
            self.batches + 1, self.inserted + ack.inserted, self.updated + ack.updated, self.skipped + ack.skipped
        )
