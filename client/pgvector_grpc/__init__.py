"""pgvector-grpc client: ``Client`` / ``AsyncClient`` for a pgvector-grpc server."""

from pgvector_grpc.aio import AsyncClient
from pgvector_grpc.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
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
    HnswIndex,
    IngestAck,
    IngestSummary,
    IvfflatIndex,
    NoIndex,
    SearchHit,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "And",
    "AsyncClient",
    "Client",
    "Collection",
    "DeadlineExceededError",
    "Document",
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
    "NoIndex",
    "Not",
    "NotFoundError",
    "Or",
    "PermissionDeniedError",
    "PgvectorGrpcError",
    "ResourceExhaustedError",
    "RpcCancelledError",
    "SearchHit",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "__version__",
    "from_chroma_where",
]
