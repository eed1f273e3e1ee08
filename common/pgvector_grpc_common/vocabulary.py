"""The one vocabulary of metrics, vector indexes and stored documents, with their defaults.

The client's public types, the server's domain and the migration engine all use these values;
a new index parameter is added here (and in the proto and the catalogue), nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

Metric = Literal["cosine", "l2", "inner_product"]
METRICS: Final[tuple[Metric, ...]] = get_args(Metric)
DEFAULT_METRIC: Final[Metric] = "cosine"

IndexType = Literal["hnsw", "ivfflat", "none"]

# What a vector index stores: the vectors themselves, half-precision copies (half the size), or
# their sign bits (binary_quantize, 1/32 of the size, searched by Hamming distance). The table
# always keeps the full vectors, so compact indexes are re-ranked by the exact distance.
VectorStorage = Literal["vector", "halfvec", "bit"]
VECTOR_STORAGES: Final[tuple[VectorStorage, ...]] = get_args(VectorStorage)
DEFAULT_VECTOR_STORAGE: Final[VectorStorage] = "vector"
# How many candidates per result wanted a compact index returns for re-ranking (sql/030's
# default_rerank_factor says the same for collections created in SQL without one). A full-precision
# index needs no re-ranking: its distances are the exact ones.
DEFAULT_RERANK_FACTORS: Final[dict[VectorStorage, int]] = {"vector": 1, "halfvec": 2, "bit": 10}
MAX_RERANK_FACTOR: Final = 100

Vector: TypeAlias = npt.NDArray[np.float32]

DEFAULT_HNSW_M: Final = 16
DEFAULT_HNSW_EF_CONSTRUCTION: Final = 64
DEFAULT_IVFFLAT_LISTS: Final = 100


@dataclass(frozen=True, slots=True)
class HnswIndex:
    """An HNSW index: ``m`` links per node, ``ef_construction`` candidates while building; it stores
    ``storage`` values and a search re-ranks ``rerank_factor`` x top_k of its candidates (0: the
    storage's default)."""

    m: int = DEFAULT_HNSW_M
    ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION
    storage: VectorStorage = DEFAULT_VECTOR_STORAGE
    rerank_factor: int = 0

    def __post_init__(self) -> None:
        if not self.rerank_factor:
            object.__setattr__(self, "rerank_factor", DEFAULT_RERANK_FACTORS.get(self.storage, 1))

    @property
    def type(self) -> IndexType:
        """``"hnsw"``."""
        return "hnsw"


@dataclass(frozen=True, slots=True)
class IvfflatIndex:
    """An IVFFlat index with ``lists`` inverted lists; ``storage`` and ``rerank_factor`` as for
    :class:`HnswIndex`."""

    lists: int = DEFAULT_IVFFLAT_LISTS
    storage: VectorStorage = DEFAULT_VECTOR_STORAGE
    rerank_factor: int = 0

    def __post_init__(self) -> None:
        if not self.rerank_factor:
            object.__setattr__(self, "rerank_factor", DEFAULT_RERANK_FACTORS.get(self.storage, 1))

    @property
    def type(self) -> IndexType:
        """``"ivfflat"``."""
        return "ivfflat"


@dataclass(frozen=True, slots=True)
class NoIndex:
    """No vector index: every search is an exact scan."""

    @property
    def type(self) -> IndexType:
        """``"none"``."""
        return "none"

    @property
    def storage(self) -> VectorStorage:
        """``"vector"``: every search computes exact distances."""
        return "vector"

    @property
    def rerank_factor(self) -> int:
        """1: nothing to re-rank."""
        return 1


Index: TypeAlias = HnswIndex | IvfflatIndex | NoIndex
DEFAULT_INDEX: Final[Index] = HnswIndex()


def index_of(
    type: IndexType,
    m: int | None = None,
    ef_construction: int | None = None,
    lists: int | None = None,
    storage: VectorStorage | None = None,
    rerank_factor: int | None = None,
) -> Index:
    """The index of a type, with the defaults above for the parameters not given (``None`` or 0).
    A storage other than ``"vector"`` needs a vector index (ValueError for ``"none"``)."""
    storage = storage or DEFAULT_VECTOR_STORAGE
    if type == "hnsw":
        ef_construction = ef_construction or DEFAULT_HNSW_EF_CONSTRUCTION
        return HnswIndex(m or DEFAULT_HNSW_M, ef_construction, storage, rerank_factor or 0)
    if type == "ivfflat":
        return IvfflatIndex(lists or DEFAULT_IVFFLAT_LISTS, storage, rerank_factor or 0)
    if type == "none":
        if storage != DEFAULT_VECTOR_STORAGE:
            raise ValueError(f"storage {storage!r} needs a vector index")
        return NoIndex()
    raise ValueError(f"unknown index type {type!r}")


@dataclass(slots=True)
class DocumentRecord:
    """A document as stored: ``metadata_json`` is the JSON text of an object; ``embedding_exact``
    holds the caller's float64 values (little-endian) where float32 would round them. Parts a
    read did not ask for are ``None``."""

    id: str
    content: str | None
    metadata_json: str
    embedding: Vector | None
    embedding_exact: bytes | None = None
