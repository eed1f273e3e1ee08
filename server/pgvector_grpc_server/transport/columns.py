"""The columnar form of an Ingest batch (DocumentColumns) as documents. Malformed columns raise
InvalidArgument naming the column."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pgvector_grpc.v1 import document_service_pb2
from pgvector_grpc_common.vocabulary import DocumentRecord

from pgvector_grpc_server.domain.errors import InvalidArgument


def _column(values: Sequence[object], rows: int, field: str) -> bool:
    """Whether the column is given (one entry per id); INVALID_ARGUMENT for any other length."""
    if not values:
        return False
    if len(values) != rows:
        raise InvalidArgument.of(field, f"has {len(values)} entries for {rows} ids", "BAD_COLUMN")
    return True


def _matrix(
    pb: document_service_pb2.DocumentColumns, rows: int, field: str
) -> tuple[np.ndarray | None, list[bytes | None]]:
    """The float32 embeddings, and per row the float64 bytes when float32 does not hold them exactly."""
    exact: list[bytes | None] = [None] * rows
    if pb.embeddings and pb.embeddings_f64:
        raise InvalidArgument.of(field, "set embeddings or embeddings_f64, not both", "BAD_VECTOR")
    name, data, width = (
        ("embeddings_f64", pb.embeddings_f64, 8) if pb.embeddings_f64 else ("embeddings", pb.embeddings, 4)
    )
    if not data:
        return None, exact
    if pb.dimension < 1:
        raise InvalidArgument.of(f"{field}.dimension", f"must be at least 1 with {field}.{name}", "BAD_VECTOR")
    expected = rows * pb.dimension * width
    if len(data) != expected:
        raise InvalidArgument.of(
            f"{field}.{name}",
            f"has {len(data)} bytes; {rows} ids x dimension {pb.dimension} x {width} bytes is {expected}",
            "BAD_VECTOR",
        )
    if width == 4:
        return np.frombuffer(data, dtype="<f4").reshape(rows, pb.dimension), exact
    doubles = np.frombuffer(data, dtype="<f8").reshape(rows, pb.dimension)
    with np.errstate(over="ignore"):  # too large for float32: infinite, rejected as non-finite
        singles = doubles.astype(np.float32)
    for row in np.flatnonzero((singles != doubles).any(axis=1)):
        exact[row] = doubles[row].tobytes()
    return singles, exact


def documents_from_columns(pb: document_service_pb2.DocumentColumns, field: str = "columns") -> list[DocumentRecord]:
    """The documents of a columnar batch, in order."""
    rows = len(pb.ids)
    has_contents = _column(pb.contents, rows, f"{field}.contents")
    if _column(pb.content_missing, rows, f"{field}.content_missing") and not has_contents:
        raise InvalidArgument.of(f"{field}.content_missing", "is set without contents", "BAD_COLUMN")
    has_metadata = _column(pb.metadata_json, rows, f"{field}.metadata_json")
    matrix, exact = _matrix(pb, rows, field)
    contents: list[str | None] = list(pb.contents) if has_contents else [None] * rows
    for i, missing in enumerate(pb.content_missing):
        if not missing:
            continue
        if contents[i]:
            raise InvalidArgument.of(
                f"{field}.contents[{i}]", "must be empty where content_missing is set", "BAD_COLUMN"
            )
        contents[i] = None
    metadata = list(pb.metadata_json) if has_metadata else ["{}"] * rows
    return [
        DocumentRecord(
            doc_id,
            content,
            meta or "{}",
            None if matrix is None else matrix[i],
            exact[i],
        )
        for i, (doc_id, content, meta) in enumerate(zip(pb.ids, contents, metadata, strict=True))
    ]
