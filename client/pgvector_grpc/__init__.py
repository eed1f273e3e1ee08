"""pgvector-grpc client: ``Client`` / ``AsyncClient`` for a pgvector-grpc server.

Names are imported on first use, so that importing one part (the generated ``pgvector_grpc.v1``
code the server uses, or ``pgvector_grpc.filters``) does not load the clients."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgvector_grpc.aio import AsyncClient
    from pgvector_grpc.errors import (
        AlreadyExistsError,
        DeadlineExceededError,
        FailedPreconditionError,
        FieldViolation,
        InternalError,
        InvalidArgumentError,
        MalformedResponseError,
        NotFoundError,
        PermissionDeniedError,
        PgvectorGrpcError,
        ResourceExhaustedError,
        RpcCancelledError,
        UnauthenticatedError,
        UnavailableError,
        UnimplementedError,
    )
    from pgvector_grpc.filters import And, Field, Filter, Not, Or, from_chroma_where
    from pgvector_grpc.sync import Client
    from pgvector_grpc.types import (
        Collection,
        Document,
        DocumentColumns,
        HnswIndex,
        IngestAck,
        IngestSummary,
        IvfflatIndex,
        NoIndex,
        SearchHit,
        SearchMode,
        SearchResults,
    )

__version__ = "0.1.0"

_MODULE_OF = {
    "AsyncClient": "aio",
    "Client": "sync",
    **dict.fromkeys(("And", "Field", "Filter", "Not", "Or", "from_chroma_where"), "filters"),
    **dict.fromkeys(
        (
            "Collection",
            "Document",
            "DocumentColumns",
            "HnswIndex",
            "IngestAck",
            "IngestSummary",
            "IvfflatIndex",
            "NoIndex",
            "SearchHit",
            "SearchMode",
            "SearchResults",
        ),
        "types",
    ),
    **dict.fromkeys(
        (
            "AlreadyExistsError",
            "DeadlineExceededError",
            "FailedPreconditionError",
            "FieldViolation",
            "InternalError",
            "InvalidArgumentError",
            "MalformedResponseError",
            "NotFoundError",
            "PermissionDeniedError",
            "PgvectorGrpcError",
            "ResourceExhaustedError",
            "RpcCancelledError",
            "UnauthenticatedError",
            "UnavailableError",
            "UnimplementedError",
        ),
        "errors",
    ),
}

__all__ = [
    "AlreadyExistsError",
    "And",
    "AsyncClient",
    "Client",
    "Collection",
    "DeadlineExceededError",
    "Document",
    "DocumentColumns",
    "FailedPreconditionError",
    "Field",
    "FieldViolation",
    "Filter",
    "HnswIndex",
    "IngestAck",
    "IngestSummary",
    "InternalError",
    "InvalidArgumentError",
    "IvfflatIndex",
    "MalformedResponseError",
    "NoIndex",
    "Not",
    "NotFoundError",
    "Or",
    "PermissionDeniedError",
    "PgvectorGrpcError",
    "ResourceExhaustedError",
    "RpcCancelledError",
    "SearchHit",
    "SearchMode",
    "SearchResults",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "__version__",
    "from_chroma_where",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
