"""psycopg errors -> domain errors (one table, by class)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import errors as pg
from psycopg_pool import PoolTimeout, TooManyRequests

from pgvector_grpc_server.domain import errors as domain

log = logging.getLogger(__name__)
_KEY_DETAIL = re.compile(r"Key \(id\)=\((?P<id>.*)\) already exists", re.S)


def document_exists(doc_id: str) -> domain.AlreadyExists:
    """The error for a document id that is stored already."""
    return domain.AlreadyExists(f"document {doc_id!r} already exists", "DOCUMENT_EXISTS", {"id": doc_id})


def translate(exc: psycopg.Error) -> domain.DomainError:
    """The domain error a database error stands for; never carries SQL text to the caller."""
    if isinstance(exc, TooManyRequests):
        return domain.Overloaded("too many requests are waiting for a database connection", "POOL_SATURATED")
    if isinstance(exc, PoolTimeout):
        return domain.Unavailable("no database connection became free in time", "DATABASE_UNAVAILABLE")
    if isinstance(exc, pg.UniqueViolation):
        match = _KEY_DETAIL.search(exc.diag.message_detail or "")
        return document_exists(match.group("id") if match else "")
    if isinstance(exc, pg.QueryCanceled):
        return domain.DeadlineExceeded("the statement was cancelled by its time limit", "STATEMENT_TIMEOUT")
    if isinstance(exc, pg.InsufficientPrivilege):
        return domain.PermissionDenied("permission denied", "ROW_ACCESS_DENIED")
    if isinstance(exc, pg.NoDataFound | pg.UndefinedTable):
        return domain.NotFound("collection does not exist", "COLLECTION_NOT_FOUND")
    if isinstance(exc, pg.SerializationFailure | pg.DeadlockDetected):
        return domain.Unavailable("the transaction conflicted with another; retry it", "TRANSACTION_CONFLICT")
    if isinstance(exc, pg.ProgramLimitExceeded | pg.StatementTooComplex):
        # e.g. 54001 "stack depth limit exceeded" on a filter or metadata too deep for the database:
        # the request is at fault, and retrying it cannot help (never UNAVAILABLE)
        return domain.InvalidArgument(
            f"the request is too complex for the database: {exc.diag.message_primary}", "TOO_COMPLEX"
        )
    if isinstance(exc, pg.DataError | pg.IntegrityError):
        # Errors psycopg raises itself (e.g. a NUL in text) carry no diagnostics from the server.
        reason = exc.diag.message_primary or "a value it cannot store"
        return domain.InvalidArgument(f"the database rejected a value: {reason}", "BAD_VALUE")
    if isinstance(exc, psycopg.OperationalError):
        return domain.Unavailable("the database is unavailable", "DATABASE_UNAVAILABLE")
    log.error("unexpected database error: %s", exc, exc_info=exc)
    return domain.DomainError("internal database error", "INTERNAL")


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Re-raise psycopg errors as domain errors."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc
