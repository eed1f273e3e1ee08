"""Domain errors -> gRPC status codes with google.rpc rich details (one table)."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from pgvector_grpc_server.domain import errors
from pgvector_grpc_server.domain.deadline import set_remaining

DOMAIN = "pgvector-grpc"
log = logging.getLogger(__name__)

CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.LimitExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def code_of(exc: errors.DomainError) -> grpc.StatusCode:
    """The status code of a domain error (INTERNAL for the base class)."""
    return CODES.get(type(exc), grpc.StatusCode.INTERNAL)


def status_of(exc: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a domain error: code, message, ErrorInfo and (for bad input) BadRequest."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata))]
    if isinstance(exc, errors.InvalidArgument) and exc.violations:
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in exc.violations
        ]
        details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
    return status_pb2.Status(code=getattr(code_pb2, code_of(exc).name), message=exc.message, details=details)


def rich_status(exc: errors.DomainError) -> grpc.Status:
    """The grpc.Status that ends a call failed with a domain error (see :func:`status_of`)."""
    return rpc_status.to_status(status_of(exc))


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def as_domain_error(exc: Exception) -> errors.DomainError:
    """Domain errors as they are; anything else becomes a logged, generic INTERNAL error."""
    if isinstance(exc, errors.DomainError):
        return exc
    log.exception("unexpected error", exc_info=exc)
    return errors.DomainError("internal error", "INTERNAL")


async def abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
    """End the call with the status of ``exc``."""
    status = rich_status(as_domain_error(exc))
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]


def unary(
    method: Callable[[S, Req, Context], Awaitable[Resp]],
) -> Callable[[S, Req, Context], Awaitable[Resp]]:
    """Map the errors of a unary servicer method to statuses."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: Context) -> Resp:
        set_remaining(context.time_remaining())
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort(context, exc)
            raise AssertionError("unreachable: abort raises") from exc

    return wrapper


def streaming(
    method: Callable[[S, Req, Context], AsyncIterator[Resp]],
) -> Callable[[S, Req, Context], AsyncIterator[Resp]]:
    """Map the errors of a response-streaming servicer method to statuses."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: Context) -> AsyncIterator[Resp]:
        set_remaining(context.time_remaining())
        try:
            async for response in method(self, request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort(context, exc)

    return wrapper
