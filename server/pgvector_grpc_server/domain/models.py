"""Domain values: collections, documents, selections, queries and the filter tree (metrics,
indexes and document records are the shared vocabulary's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from pgvector_grpc_common.vocabulary import DEFAULT_INDEX, DEFAULT_METRIC, DocumentRecord, Index, Metric, Vector

ConflictPolicy = Literal["upsert", "skip", "fail"]
DocumentOrder = Literal["id", "insertion"]
DocumentField = Literal["metadata", "id", "content"]
ValueType = Literal["string", "integer", "float", "boolean", "null", "array", "object"]


@dataclass(frozen=True)
class CollectionSpec:
    """What defines a collection. A multi-tenant collection keeps each tenant's documents apart:
    every call on it acts as one tenant and sees only that tenant's documents."""

    name: str
    dimension: int
    metric: Metric = DEFAULT_METRIC
    index: Index = DEFAULT_INDEX
    multi_tenant: bool = False


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as stored, with its document count."""

    spec: CollectionSpec
    document_count: int


@dataclass(frozen=True)
class Include:
    """Optional parts of a document to return."""

    content: bool = True
    metadata: bool = True
    embedding: bool = False


@dataclass(slots=True)
class Hit:
    """One search result."""

    document: DocumentRecord
    score: float
    distance: float


@dataclass(frozen=True)
class SearchResult:
    """The hits of a search, closest first. ``exhaustive``: they are the exact answer (every
    matching document's distance was computed), not the vector index's approximation."""

    hits: list[Hit]
    exhaustive: bool


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
    # Candidates per result a compact index returns for re-ranking; None: the collection's.
    rerank_factor: int | None = None


@dataclass(frozen=True)
class Selection:
    """The documents a request reads or changes: those with ``ids`` (when given) that match
    ``filter`` (when given). ``all_documents`` says that selecting every document is meant."""

    ids: Sequence[str] | None = None
    filter: Filter | None = None
    all_documents: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """A resumable loader's position, saved with the batch it follows."""

    key: str
    value: str


@dataclass(frozen=True)
class IngestBatch:
    """One batch of an Ingest stream, as received (collection and policy may be empty after the first)."""

    collection: str
    policy: ConflictPolicy | None
    documents: list[DocumentRecord]
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class IngestTarget:
    """Where an Ingest stream writes and how it treats existing ids, fixed by its first batch."""

    collection: str
    policy: ConflictPolicy


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
