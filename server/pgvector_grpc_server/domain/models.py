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
    # The text-search configuration of the content's full-text index (None: no such index).
    text_search: str | None = None


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as stored, with its document count."""

    spec: CollectionSpec
    document_count: int
    # The vector index waits for BuildIndex (deferred, or IVFFlat).
    index_pending: bool = False


@dataclass(frozen=True)
class Include:
    """Optional parts of a document to return."""

    content: bool = True
    metadata: bool = True
    embedding: bool = False


@dataclass(slots=True)
class Hit:
    """One search result. ``score`` is what the hits are ordered by: the vector similarity, the fused
    score of a hybrid search, or the keyword relevance of a keyword search. ``vector_score`` is the
    similarity to the query embedding (None without one, or for a document without an embedding),
    ``distance`` the matching pgvector distance (0 when vector_score is None); ``keyword_rank`` the
    document's place in the keyword ranking, from 1 (None: it matched no keyword); ``fused_score``
    the reciprocal rank fusion score of a hybrid search."""

    document: DocumentRecord
    score: float
    distance: float
    vector_score: float | None = None
    keyword_rank: int | None = None
    fused_score: float | None = None


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


SearchMode = Literal["vector", "keyword", "hybrid"]
DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class Fusion:
    """How a hybrid search combines its two rankings (reciprocal rank fusion): a document scores
    ``vector_weight / (rrf_k + its vector rank) + keyword_weight / (rrf_k + its keyword rank)``, a
    term counting only for a ranking that holds the document. Each ranking takes ``candidates``
    documents (None: max(2 * top_k, 20))."""

    rrf_k: int = DEFAULT_RRF_K
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    candidates: int | None = None

    def candidates_for(self, top_k: int) -> int:
        """The documents each ranking takes for an answer of ``top_k``."""
        return self.candidates or max(2 * top_k, 20)


@dataclass(frozen=True)
class SearchQuery:
    """One query: nearest neighbours of ``embedding``, documents matching ``query_text``, or both
    fused (``mode`` None: hybrid when both are given, else the one given)."""

    collection: str
    embedding: Vector | None
    top_k: int
    filter: Filter | None = None
    min_similarity: float | None = None
    include: Include = Include()
    ef_search: int | None = None
    exact: bool = False
    query_text: str | None = None
    mode: SearchMode | None = None
    fusion: Fusion = Fusion()
    # Candidates per result a compact index returns for re-ranking; None: the collection's.
    rerank_factor: int | None = None
    # IVFFlat lists visited first; None: the square root of the index's lists.
    probes: int | None = None


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
