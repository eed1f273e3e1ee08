"""Domain values: collections, documents, queries and the filter tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

Metric = Literal["cosine", "l2", "inner_product"]
IndexType = Literal["hnsw", "ivfflat", "none"]
ConflictPolicy = Literal["upsert", "skip", "fail"]
DocumentOrder = Literal["id", "insertion"]
DocumentField = Literal["metadata", "id", "content"]
ValueType = Literal["string", "integer", "float", "boolean", "null", "array", "object"]
Vector: TypeAlias = npt.NDArray[np.float32]


@dataclass(frozen=True)
class IndexConfig:
    """The vector index of a collection; ``None`` parameters mean pgvector's defaults."""

    type: IndexType = "hnsw"
    m: int | None = None
    ef_construction: int | None = None
    lists: int | None = None


@dataclass(frozen=True)
class CollectionSpec:
    """What defines a collection."""

    name: str
    dimension: int
    metric: Metric = "cosine"
    index: IndexConfig = IndexConfig()


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as stored, with its document count."""

    spec: CollectionSpec
    document_count: int


@dataclass(slots=True)
class DocumentRecord:
    """A document to store. ``metadata_json`` is the JSON text of an object. ``embedding_exact``
    holds the caller's float64 values (little-endian) when float32 would round them."""

    id: str
    content: str | None
    metadata_json: str
    embedding: Vector | None
    embedding_exact: bytes | None = None


@dataclass(frozen=True)
class Include:
    """Optional parts of a document to return."""

    content: bool = True
    metadata: bool = True
    embedding: bool = False


@dataclass(slots=True)
class StoredDocument:
    """A document read back; parts not asked for are ``None`` / empty."""

    id: str
    content: str | None
    metadata_json: str
    embedding: Vector | None
    embedding_exact: bytes | None = None


@dataclass(slots=True)
class Hit:
    """One search result."""

    document: StoredDocument
    score: float
    distance: float


Scalar: TypeAlias = str | int | float | bool | None
Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "contains"]


@dataclass(frozen=True)
class Timestamp:
    """A point in time to compare a field's ISO 8601 strings with (``iso`` is normalised)."""

    iso: str


@dataclass(frozen=True)
class Condition:
    """Compares the metadata field at ``path`` (or the id, or the content) with ``value``."""

    path: tuple[str, ...]
    operator: Operator
    value: Scalar | Timestamp | tuple[Scalar, ...]
    field: DocumentField = "metadata"


@dataclass(frozen=True)
class AllOf:
    """Matches when every operand matches."""

    operands: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    """Matches when any operand matches."""

    operands: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """Matches when the operand does not."""

    operand: Filter


Filter: TypeAlias = Condition | AllOf | AnyOf | Not


@dataclass(frozen=True)
class SearchQuery:
    """One nearest-neighbour query, validated."""

    collection: str
    embedding: Vector
    top_k: int
    filter: Filter | None = None
    min_similarity: float | None = None
    include: Include = Include()
    ef_search: int | None = None
    exact: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """A resumable loader's position, saved with the batch it follows."""

    key: str
    value: str


@dataclass(frozen=True)
class IngestResult:
    """What one committed batch did."""

    inserted: int
    updated: int
    skipped: int


@dataclass(frozen=True)
class FieldInfo:
    """A top-level metadata key and the number of documents per type of its value."""

    name: str
    types: tuple[tuple[ValueType, int], ...]


@dataclass(frozen=True)
class FieldValues:
    """A page of a field's distinct values (JSON text) and their total number."""

    values_json: list[str]
    total: int


@dataclass(frozen=True)
class FieldRange:
    """The smallest and largest value of a field, as JSON text."""

    min_json: str
    max_json: str
