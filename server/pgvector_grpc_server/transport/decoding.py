"""Request messages that do not decode end the call with INVALID_ARGUMENT, on every RPC.

grpc.aio decodes a request before (unary) or while (streams) the servicer runs, and a decoding
failure would surface as UNKNOWN with protobuf's internal text, or inside whatever task reads the
stream. Here each handler's deserialiser hands back a marker instead of raising; the handler ends
the call with INVALID_ARGUMENT when it meets one, and a request stream raises it as bad input."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeAlias

import grpc
from grpc.aio import ServerInterceptor

from pgvector_grpc_server.domain.errors import InvalidArgument
from pgvector_grpc_server.transport.status import Context, abort

log = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]"


class _Undecodable:
    """What the deserialiser returns for bytes that are not a message of its type."""


_UNDECODABLE = _Undecodable()


def undecodable(message_type: str, index: int | None = None) -> InvalidArgument:
    """The error of a request (the ``index``-th of a stream) that is not a ``message_type``."""
    which = "the request" if index is None else f"request {index} of the stream"
    metadata = {"message_type": message_type} | ({} if index is None else {"message_index": str(index)})
    return InvalidArgument(
        f"{which} is not a valid {message_type} (malformed bytes, or nested too deeply to decode)",
        "UNDECODABLE_MESSAGE",
        metadata,
    )


class DecodeErrorInterceptor(ServerInterceptor):  # type: ignore[type-arg]
    """Makes every handler answer undecodable requests with INVALID_ARGUMENT. Put it first, so
    that no later interceptor (authorisation looks at requests) sees an undecodable one."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Handler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:  # None: an unknown method
            return handler
        return _decoding(handler, details.method)


def _decoding(handler: Handler, method: str) -> Handler:
    deserialize = handler.request_deserializer
    assert deserialize is not None
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    message_type = descriptor.full_name if descriptor is not None else "request message"

    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception:  # protobuf's DecodeError and whatever else a parser raises on bad bytes
            log.info("undecodable %s (%d bytes) on %s", message_type, len(raw), method)
            return _UNDECODABLE

    if handler.unary_unary is not None:
        behaviour = _unary_request(handler.unary_unary, message_type)
    elif handler.unary_stream is not None:
        behaviour = _unary_request(handler.unary_stream, message_type)
    elif handler.stream_unary is not None:
        behaviour = _request_stream(handler.stream_unary, message_type)
    else:
        assert handler.stream_stream is not None
        behaviour = _request_stream(handler.stream_stream, message_type)
    factory = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return factory(behaviour, request_deserializer=decode, response_serializer=handler.response_serializer)


def _unary_request(inner: Callable[..., Any], message_type: str) -> Callable[..., Any]:
    """``inner`` run on a decoded request; grpc.aio tells generator handlers from coroutine ones by
    their function, so the wrapper keeps the kind of ``inner``."""
    if inspect.isasyncgenfunction(inner):

        async def responses(request: Any, context: Context) -> AsyncIterator[Any]:
            if request is _UNDECODABLE:
                await abort(context, undecodable(message_type))
            async for response in inner(request, context):
                yield response

        return responses

    async def response(request: Any, context: Context) -> Any:
        if request is _UNDECODABLE:
            await abort(context, undecodable(message_type))
        return await inner(request, context)

    return response


class _DecodedRequests:
    """A request stream that raises the undecodable error at the first undecodable request, and
    remembers it, so the call ends with it even if the servicer let it escape unmapped."""

    def __init__(self, requests: AsyncIterator[Any], message_type: str) -> None:
        self._requests = requests
        self._message_type = message_type
        self.failure: InvalidArgument | None = None

    async def __aiter__(self) -> AsyncIterator[Any]:
        index = 0
        async for request in self._requests:
            if request is _UNDECODABLE:
                self.failure = undecodable(self._message_type, index)
                raise self.failure
            yield request
            index += 1

    async def end_with_failure(self, context: Context, exc: BaseException) -> NoReturn:
        """End the call with the undecodable error, or re-raise ``exc`` when it is not about one."""
        if self.failure is None or isinstance(exc, grpc.aio.AbortError):
            raise exc
        await abort(context, self.failure)
        raise AssertionError("unreachable: abort raises")

    async def end_if_failed(self, context: Context) -> None:
        """End the call with the undecodable error if a servicer finished without reporting it."""
        if self.failure is not None:
            await abort(context, self.failure)


def _request_stream(inner: Callable[..., Any], message_type: str) -> Callable[..., Any]:
    """``inner`` run on the decoded request stream, keeping the kind of ``inner`` (see above)."""
    if inspect.isasyncgenfunction(inner):

        async def responses(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            decoded = _DecodedRequests(requests, message_type)
            try:
                async for response in inner(decoded.__aiter__(), context):
                    yield response
            except Exception as exc:
                await decoded.end_with_failure(context, exc)
            await decoded.end_if_failed(context)

        return responses

    async def response(requests: AsyncIterator[Any], context: Context) -> Any:
        decoded = _DecodedRequests(requests, message_type)
        try:
            result = await inner(decoded.__aiter__(), context)
        except Exception as exc:
            await decoded.end_with_failure(context, exc)
        await decoded.end_if_failed(context)
        return result

    return response
