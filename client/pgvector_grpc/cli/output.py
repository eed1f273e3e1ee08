"""What every client verb shares: exit statuses, the one-line error report, ``--json`` documents
and aligned tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TextIO

import grpc
import numpy as np

from pgvector_grpc.errors import PgvectorGrpcError
from pgvector_grpc.types import Collection, Document, Index, SearchHit

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
NOT_FOUND: Final = 3

EXIT_STATUSES = """exit status:
  0  success
  1  the operation failed: the server refused or failed it, an input record is invalid, or a
     verification found differences
  2  usage or configuration error: bad arguments, an unreadable file, a TLS option that does not
     fit, missing or rejected credentials (UNAUTHENTICATED)
  3  not found: the collection, a document id or the embedded database does not exist

errors are one line on stderr: pgvector-grpc: <CODE>: <message>"""


class CliError(Exception):
    """A verb cannot do what was asked: reported as ``pgvector-grpc: CODE: message``, exit ``status``."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def usage_error(message: str) -> CliError:
    """Bad arguments or configuration (exit 2)."""
    return CliError("USAGE", message, USAGE)


def not_found(message: str) -> CliError:
    """Something named does not exist (exit 3)."""
    return CliError("NOT_FOUND", message, NOT_FOUND)


def status_of(error: PgvectorGrpcError) -> int:
    """The exit status of a failed call."""
    if error.code == grpc.StatusCode.NOT_FOUND:
        return NOT_FOUND
    if error.code == grpc.StatusCode.UNAUTHENTICATED:
        return USAGE
    return FAILED


def report(code: str, message: str, err: TextIO = sys.stderr) -> None:
    """The one-line error report."""
    print(f"pgvector-grpc: {code}: {' '.join(message.split())}", file=err, flush=True)


def call_error_message(error: PgvectorGrpcError) -> str:
    """The message of a failed call, with the fields the server named that it does not mention."""
    details = "".join(
        f"; {v.field}: {v.description}" for v in error.field_violations if v.description not in error.message
    )
    return error.message + details


def run_reporting_errors(verb: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a verb; its failures become one line on stderr and an exit status, never a traceback."""
    try:
        return verb(args)
    except CliError as exc:
        report(exc.code, exc.message)
        return exc.status
    except PgvectorGrpcError as exc:
        report(exc.code.name, call_error_message(exc))
        return status_of(exc)
    except KeyboardInterrupt:
        report("CANCELLED", "interrupted")
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): nothing more to say
        return OK


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: machine output instead of a table."""
    parser.add_argument(
        "--json", action="store_true", help="machine output: one JSON document (JSON Lines where the output streams)"
    )


def parse_json_option(text: str, option: str) -> Any:
    """The value of an option given as JSON, or a usage error naming the option."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise usage_error(f"{option} is not valid JSON: {exc}") from None


def dumps(value: Any) -> str:
    """Compact JSON text (non-ASCII kept as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write_json(value: Any, out: TextIO = sys.stdout) -> None:
    """One JSON document on its own line."""
    out.write(dumps(value) + "\n")


def embedding_values(embedding: Any) -> list[float] | None:
    """The values of an embedding as Python floats: a float32 value widened to float64 is the same
    number, so the text reads back to exactly what the server holds."""
    if embedding is None:
        return None
    return [float(v) for v in np.asarray(embedding, dtype=np.float64)]


def document_record(doc: Document, *, with_embedding: bool = True) -> dict[str, Any]:
    """A document as one JSON Lines record of ``export`` / ``ingest``."""
    record: dict[str, Any] = {"id": doc.id, "content": doc.content, "metadata": doc.metadata}
    if with_embedding:
        record["embedding"] = embedding_values(doc.embedding)
    return record


def hit_record(hit: SearchHit, *, with_embedding: bool, with_text: bool = False) -> dict[str, Any]:
    """A search hit as a JSON object; ``with_text``: a hit of a search with a query text, with
    its vector score and keyword rank (null when it has none)."""
    record: dict[str, Any] = {
        "id": hit.id,
        "score": hit.score,
        "distance": hit.distance,
        "content": hit.content,
        "metadata": hit.metadata,
    }
    if with_text:
        record["vector_score"] = hit.vector_score
        record["keyword_rank"] = hit.keyword_rank
    if with_embedding:
        record["embedding"] = embedding_values(hit.embedding)
    return record


def index_record(index: Index) -> dict[str, Any]:
    """An index as a JSON object: its type and parameters."""
    record: dict[str, Any] = {"type": index.type}
    for name in ("m", "ef_construction", "lists"):
        if hasattr(index, name):
            record[name] = getattr(index, name)
    if index.storage != "vector":
        record.update(storage=index.storage, rerank_factor=index.rerank_factor)
    return record


def collection_record(collection: Collection) -> dict[str, Any]:
    """A collection as a JSON object (the index with its parameters; storage and rerank_factor when
    the index is compact)."""
    record = {
        "name": collection.name,
        "dimension": collection.dimension,
        "metric": collection.metric,
        "index": index_record(collection.index),
        "documents": collection.document_count,
    }
    if collection.text_search is not None:
        record["text_search"] = collection.text_search
    if collection.index_pending:
        record["index_pending"] = True
    return record


def index_text(index: Mapping[str, Any]) -> str:
    """``hnsw (m=16, ef_construction=64)``."""
    parameters = ", ".join(f"{k}={v}" for k, v in index.items() if k != "type")
    return f"{index['type']} ({parameters})" if parameters else str(index["type"])


def write_fields(pairs: Sequence[tuple[str, Any]], out: TextIO = sys.stdout) -> None:
    """``name:  value`` lines, names aligned (one object, like ``kubectl describe``)."""
    width = max(len(name) for name, _ in pairs) + 1
    for name, value in pairs:
        out.write(f"{(name + ':').ljust(width)}  {value}\n")
