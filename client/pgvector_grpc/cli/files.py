"""Document files of ``ingest`` and ``export``: JSON Lines and Parquet, read and written one
record at a time (constant memory).

A record is ``{"id", "content", "metadata", "embedding"}``. In Parquet, ``metadata`` is a string
column of JSON text (so integers and floats stay apart, and nested values stay as they are) and
``embedding`` a list of float64; a float32 value widened to float64 is the same number, so the
file holds exactly what the server holds either way."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import numpy as np
from pgvector_grpc_common.metadata_json import metadata_json

from pgvector_grpc.cli.output import FAILED, CliError, dumps, embedding_values, usage_error
from pgvector_grpc.types import Document, as_embedding

Format = Literal["jsonl", "parquet"]
FIELDS = ("id", "content", "metadata", "embedding")
STDIO = "-"

_EXTENSIONS: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def file_format(path: str, given: Format | None) -> Format:
    """``given``, else the format of the file's extension (``-``, stdin / stdout, is JSON Lines)."""
    if given is not None:
        return given
    if path == STDIO:
        return "jsonl"
    found = _EXTENSIONS.get(Path(path).suffix.lower())
    if found is None:
        raise usage_error(f"{path}: cannot tell the format from the extension; use .jsonl or .parquet, or --format")
    return found


def invalid_record(where: str, message: str) -> CliError:
    """A record the file cannot be ingested with (exit 1: the run stops there)."""
    return CliError("INVALID_RECORD", f"{where}: {message}", FAILED)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise usage_error("Parquet needs pyarrow: pip install 'pgvector-grpc[parquet]'") from None
    return pyarrow


def document_of(record: Any, where: str) -> Document:
    """The document of one record, checked field by field."""
    if not isinstance(record, dict):
        raise invalid_record(where, f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise invalid_record(where, f"unknown field(s) {', '.join(unknown)} (expected {', '.join(FIELDS)})")
    doc_id, content = record.get("id"), record.get("content")
    metadata, embedding = record.get("metadata"), record.get("embedding")
    if not isinstance(doc_id, str) or not doc_id:
        raise invalid_record(where, "id must be a non-empty string")
    if content is not None and not isinstance(content, str):
        raise invalid_record(where, "content must be a string or null")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise invalid_record(where, "metadata must be an object")
    if embedding is not None and not (isinstance(embedding, list) and all(_is_number(v) for v in embedding)):
        raise invalid_record(where, "embedding must be an array of numbers or null")
    return Document(doc_id, content, metadata, as_embedding(embedding))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.floating) and not isinstance(value, bool)


class DocumentReader(Protocol):
    """Records of a file in order; ``total`` is their number when it can be known up front."""

    total: int | None

    def documents(self, skip: int) -> Iterator[tuple[Document, str]]:
        """Each document after the first ``skip`` records, with where it is (``file:line`` / ``file row n``)."""
        ...


class JsonLinesReader:
    """One JSON object per line; blank lines are not records."""

    def __init__(self, path: str) -> None:
        self._path = path
        self.total = None if path == STDIO else _count_records(Path(path))

    def _lines(self) -> Iterator[bytes]:
        if self._path == STDIO:
            yield from sys.stdin.buffer
            return
        with open(self._path, "rb") as file:
            yield from file

    def documents(self, skip: int) -> Iterator[tuple[Document, str]]:
        records = 0
        for line_number, line in enumerate(self._lines(), start=1):
            if not line.strip():
                continue
            records += 1
            if records <= skip:
                continue
            where = f"{self._path}:{line_number}"
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise invalid_record(where, f"not JSON: {exc}") from None
            yield document_of(record, where), where


def _count_records(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for line in file if line.strip())
    except OSError as exc:
        raise usage_error(f"cannot read {str(path)!r}: {exc.strerror}") from None


class ParquetReader:
    """Rows of a Parquet file, read a row group slice at a time. ``metadata`` may be JSON text or a
    struct / map column."""

    ROWS_PER_READ = 1024

    def __init__(self, path: str) -> None:
        pyarrow = _pyarrow()
        self._path = path
        try:
            self._file = pyarrow.parquet.ParquetFile(path)
        except (OSError, pyarrow.ArrowException) as exc:
            raise usage_error(f"cannot read {path!r} as Parquet: {exc}") from None
        columns = set(self._file.schema_arrow.names)
        if "id" not in columns:
            raise usage_error(f"{path}: no 'id' column (columns: {', '.join(sorted(columns))})")
        unknown = sorted(columns - set(FIELDS))
        if unknown:
            raise usage_error(f"{path}: unknown column(s) {', '.join(unknown)} (expected {', '.join(FIELDS)})")
        self._columns = [c for c in FIELDS if c in columns]
        self.total: int | None = self._file.metadata.num_rows

    def documents(self, skip: int) -> Iterator[tuple[Document, str]]:
        row = 0
        for batch in self._file.iter_batches(batch_size=self.ROWS_PER_READ, columns=self._columns):
            if row + batch.num_rows <= skip:
                row += batch.num_rows
                continue
            values = {name: batch.column(name).to_pylist() for name in self._columns}
            for i in range(batch.num_rows):
                row += 1
                if row <= skip:
                    continue
                where = f"{self._path} row {row}"
                record = {name: values[name][i] for name in self._columns}
                record["metadata"] = _metadata_value(record.get("metadata"), where)
                yield document_of(record, where), where


def _metadata_value(value: Any, where: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise invalid_record(where, f"metadata is not JSON: {exc}") from None
    if isinstance(value, list):  # a map column reads as (key, value) pairs
        return dict(value)
    return value


def open_reader(path: str, given: Format | None) -> DocumentReader:
    """The reader of a document file."""
    if path != STDIO and not Path(path).is_file():
        raise usage_error(f"{path}: no such file")
    if file_format(path, given) == "parquet":
        return ParquetReader(path)
    return JsonLinesReader(path)


class DocumentWriter(Protocol):
    """Writes documents one at a time; ``close`` finishes the file."""

    def write(self, doc: Document) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    """One JSON object per line, every field present (``content`` null when absent)."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    def write(self, doc: Document) -> None:
        record = {
            "id": doc.id,
            "content": doc.content,
            "metadata": doc.metadata,
            "embedding": embedding_values(doc.embedding),
        }
        self._file.write(dumps(record) + "\n")

    def close(self) -> None:
        self._file.flush()


class ParquetWriter:
    """Rows buffered up to one row group, then written."""

    ROWS_PER_GROUP = 2048

    def __init__(self, path: Path) -> None:
        pyarrow = _pyarrow()
        self._pa = pyarrow
        self._schema = pyarrow.schema(
            [
                pyarrow.field("id", pyarrow.string(), nullable=False),
                pyarrow.field("content", pyarrow.string()),
                pyarrow.field("metadata", pyarrow.string(), nullable=False),
                pyarrow.field("embedding", pyarrow.list_(pyarrow.float64())),
            ]
        )
        self._writer = pyarrow.parquet.ParquetWriter(str(path), self._schema)
        self._rows: dict[str, list[Any]] = {name: [] for name in FIELDS}

    def write(self, doc: Document) -> None:
        self._rows["id"].append(doc.id)
        self._rows["content"].append(doc.content)
        self._rows["metadata"].append(metadata_json(doc.metadata))
        self._rows["embedding"].append(embedding_values(doc.embedding))
        if len(self._rows["id"]) >= self.ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows["id"]:
            self._writer.write_table(self._pa.table(self._rows, schema=self._schema))
            self._rows = {name: [] for name in FIELDS}

    def close(self) -> None:
        self._flush()
        self._writer.close()
