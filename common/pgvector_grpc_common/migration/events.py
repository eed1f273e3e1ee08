"""What a migration reports: the source summary, progress and the verification report.

Both paths produce these: the server's Migrate RPC (converted to and from protobuf on the wire)
and the client-side paths that write through Ingest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pgvector_grpc_common.vocabulary import Index, Metric

Phase = Literal["reading", "writing", "mirroring", "indexing", "verifying", "done"]


class MigrationError(Exception):
    """A migration cannot proceed; ``reason`` is a stable code such as ``CHROMA_LEGACY_FORMAT``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SourceSummary:
    """The source collection and the target it maps to (the whole answer of a dry run)."""

    collection: str
    count: int
    dimension: int
    metric: Metric
    metadata_keys: list[str]
    target: str
    index: Index
    target_exists: bool


@dataclass(frozen=True)
class Progress:
    """How far a phase is; ``done`` counts documents, including those of earlier resumed runs."""

    phase: Phase
    done: int
    total: int
    rate: float = 0.0
    eta_seconds: float = 0.0
    resumed_from: int = 0


@dataclass
class Report:
    """Source and target compared after the copy. ``sampled`` documents were compared field by
    field, ``differing_count`` of them differ (``mismatches`` lists the first problems found).
    ``extra_count`` target documents have ids the source does not hold (``extra_ids`` lists the
    first); a mirror run deleted ``deleted_count`` such documents before the comparison."""

    source_count: int = 0
    target_count: int = 0
    missing_ids: list[str] = field(default_factory=list)
    missing_count: int = 0
    sampled: int = 0
    mismatches: list[str] = field(default_factory=list)
    queries_compared: int = 0
    queries_matching: int = 0
    differing_count: int = 0
    extra_ids: list[str] = field(default_factory=list)
    extra_count: int = 0
    deleted_count: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing differs (what a mirror run deleted is not a difference)."""
        return (
            self.source_count == self.target_count
            and self.missing_count == 0
            and self.extra_count == 0
            and not self.mismatches
            and self.queries_matching == self.queries_compared
        )


Event = SourceSummary | Progress | Report
