"""Typed errors: one class per gRPC status code, carrying the google.rpc details the server sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from pgvector_grpc.types import IngestSummary

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """A bad request field, e.g. ``batches[2].documents[17].embedding``."""

    field: str
    description: str


class PlaintextCredentialWarning(UserWarning):
    """A credential is about to travel unencrypted to a host that is not this machine."""


class PgvectorGrpcError(Exception):
    """A failed call: ``code``, ``message``, ErrorInfo ``reason`` / ``metadata`` and ``field_violations``."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    acknowledged: IngestSummary | None = None
    """For a failed ingest: what was committed before the failure."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[FieldViolation] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.reason = reason
        self.metadata = metadata or {}
        self.field_violations = field_violations or []

    @property
    def field(self) -> str | None:
        """The first field at fault, if the server named one."""
        return self.field_violations[0].field if self.field_violations else None

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgumentError(PgvectorGrpcError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(PgvectorGrpcError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(PgvectorGrpcError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(PgvectorGrpcError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhaustedError(PgvectorGrpcError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(PgvectorGrpcError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(PgvectorGrpcError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class PermissionDeniedError(PgvectorGrpcError):
    code = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(PgvectorGrpcError):
    code = grpc.StatusCode.UNAUTHENTICATED


class RpcCancelledError(PgvectorGrpcError):
    code = grpc.StatusCode.CANCELLED


class UnimplementedError(PgvectorGrpcError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(PgvectorGrpcError):
    code = grpc.StatusCode.INTERNAL


class MalformedResponseError(InternalError):
    """The server answered with something this client cannot read: JSON that does not parse or
    nests too deeply (e.g. metadata stored before the server limited it, or written around it),
    a vector of a broken length, or a value this client does not know."""

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message, reason="MALFORMED_RESPONSE", metadata=metadata)


_BY_CODE: dict[grpc.StatusCode, type[PgvectorGrpcError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        PermissionDeniedError,
        UnauthenticatedError,
        RpcCancelledError,
        UnimplementedError,
        InternalError,
    )
}


def error_for(code: grpc.StatusCode, message: str, **details: Any) -> PgvectorGrpcError:
    """The typed error of a status code."""
    return _BY_CODE.get(code, PgvectorGrpcError)(message, code=code, **details)


def from_rpc_error(err: grpc.RpcError) -> PgvectorGrpcError:
    """The typed error of a failed call (sync or asyncio), with its rich details decoded when they
    decode (without them otherwise: the code and message still say what failed)."""
    trailers: Any = err.trailing_metadata() or ()
    for key, value in trailers:
        if key == _DETAILS_KEY:
            try:
                return from_status(status_pb2.Status.FromString(value))
            except DecodeError:
                break
    return error_for(err.code(), err.details() or "")


def from_status(status: status_pb2.Status) -> PgvectorGrpcError:
    """The typed error of a ``google.rpc.Status`` (a failed call's trailer, or a failed query of a
    SearchStream), with its ErrorInfo and BadRequest details decoded; a detail that does not
    decode is left out."""
    reason, metadata, violations = "", {}, []
    for detail in status.details:
        try:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
        except DecodeError:
            continue
    code = _CODES_BY_VALUE.get(status.code, grpc.StatusCode.UNKNOWN)
    return error_for(code, status.message, reason=reason, metadata=metadata, field_violations=violations)


_CODES_BY_VALUE: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}
