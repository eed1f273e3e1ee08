"""How to run one migration, with the limits the engine accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pgvector_grpc_common.migration.events import MigrationError
from pgvector_grpc_common.vocabulary import Index, Metric

DEFAULT_BATCH_SIZE = 1000
DEFAULT_SAMPLE_SIZE = 100
MAX_BATCH_SIZE = 10_000

Verification = Literal["sample", "every_document", "counts_only"]


@dataclass(frozen=True)
class MigrationOptions:
    """How to migrate one collection.

    ``index`` and ``metric`` are those of a target collection the migration creates (default: the
    source's). ``verification`` decides what is compared after the copy: a sample of
    ``verify_sample_size`` documents field by field plus exact top-10 queries, every document
    field by field, or only the counts. ``mirror`` deletes, after the copy, the target documents
    whose ids the source does not hold (whoever wrote them)."""

    target: str = ""
    dry_run: bool = False
    restart: bool = False
    index: Index | None = None
    metric: Metric | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    verify_sample_size: int = DEFAULT_SAMPLE_SIZE
    verification: Verification = "sample"
    mirror: bool = False


def check_options(options: MigrationOptions) -> None:
    """Reject options out of range, naming the field."""
    if not 1 <= options.batch_size <= MAX_BATCH_SIZE:
        raise MigrationError(
            f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {options.batch_size}", "BAD_BATCH_SIZE"
        )
    if options.verify_sample_size < 0:
        raise MigrationError(
            f"verify_sample_size must not be negative, got {options.verify_sample_size}", "BAD_SAMPLE_SIZE"
        )
