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

Vector: TypeAlias = npt.NDArray[np.float32]

DEFAULT_HNSW_M: Final = 16
DEFAULT_HNSW_EF_CONSTRUCTION: Final = 64
DEFAULT_IVFFLAT_LISTS: Final = 100


@dataclass(frozen=True, slots=True)
class HnswIndex:
    """An HNSW index: ``m`` links per node, ``ef_construction`` candidates while building."""

    m: int = DEFAULT_HNSW_M
    ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION

    @property
    def type(self) -> IndexType:
        """``"hnsw"``."""
        return "hnsw"


@dataclass(frozen=True, slots=True)
class IvfflatIndex:
    """An IVFFlat index with ``lists`` inverted lists."""

    lists: int = DEFAULT_IVFFLAT_LISTS

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


Index: TypeAlias = HnswIndex | IvfflatIndex | NoIndex
DEFAULT_INDEX: Final[Index] = HnswIndex()


def index_of(
    type: IndexType, m: int | None = None, ef_construction: int | None = None, lists: int | None = None
) -> Index:
    """The index of a type, with the defaults above for the parameters not given (``None`` or 0)."""
    if type == "hnsw":
        return HnswIndex(m or DEFAULT_HNSW_M, ef_construction or DEFAULT_HNSW_EF_CONSTRUCTION)
    if type == "ivfflat":
        return IvfflatIndex(lists or DEFAULT_IVFFLAT_LISTS)
    if type == "none":
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
