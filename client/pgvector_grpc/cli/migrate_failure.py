"""How a failed ``migrate`` reports itself, in both its forms (``--from-chroma``, ``--from-haystack``):
one line on stderr and the ``error`` of its JSON record."""

from __future__ import annotations

from typing import Any, TextIO

from pgvector_grpc_common.migration.events import MigrationError

from pgvector_grpc.cli.output import call_error_message, report
from pgvector_grpc.errors import PgvectorGrpcError


def error_record(error: MigrationError | PgvectorGrpcError) -> dict[str, Any]:
    """Why a migration failed: the status code (null when it failed on this side), reason, message."""
    code = error.code.name if isinstance(error, PgvectorGrpcError) else None
    return {"code": code, "reason": error.reason, "message": str(error)}


def report_failure(error: MigrationError | PgvectorGrpcError, err: TextIO, collection: str | None = None) -> None:
    """The one-line error report of a failed migration: the status code of a server's refusal, or
    the reason of a failure found on this side (e.g. ``CHROMA_LEGACY_FORMAT``), then the collection."""
    if isinstance(error, PgvectorGrpcError):
        code, message = error.code.name, call_error_message(error)
    else:
        code, message = error.reason, str(error)
    report(code, f"{collection}: {message}" if collection is not None else message, err)
