"""Request messages that do not decode end the call with INVALID_ARGUMENT, on every RPC.

Left to grpc.aio, a decoding failure would surface as UNKNOWN with protobuf's internal text, or
inside whatever task reads the stream; and grpc decodes a request before anything else runs, where
a refused caller's bytes should never be parsed at all. So the wrapped handler takes its requests
as bytes and decodes them itself, when it runs (after authentication, which wraps it): an
undecodable request ends the call with INVALID_ARGUMENT, and a request stream raises it as bad
input."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc

from pgvector_grpc_server.domain.errors import InvalidArgument
from pgvector_grpc_server.transport.status import Context, abort
from pgvector_grpc_server.transport.wrapping import Handler, behaviour_of, preceded, same_shape

log = logging.getLogger(__name__)


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


def decoding(method: str, handler: Handler) -> Handler:
    """``handler`` taking its requests as bytes and decoding them itself (see above)."""
    deserialize = handler.request_deserializer
    if deserialize is None:  # a method of raw bytes
        return handler
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    message_type = descriptor.full_name if descriptor is not None else "request message"

    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception:  # protobuf's DecodeError and whatever else a parser raises on bad bytes
            log.info("undecodable %s (%d bytes) on %s", message_type, len(raw), method)
            return _UNDECODABLE

    inner = behaviour_of(handler)
    if handler.request_streaming:
        behaviour = _request_stream(inner, decode, message_type)
    else:
        behaviour = _unary_request(inner, decode, message_type)
    return same_shape(handler, behaviour, raw_requests=True)


def _unary_request(inner: Callable[..., Any], decode: Callable[[bytes], Any], message_type: str) -> Callable[..., Any]:
    """``inner`` run on the decoded request."""

    async def decoded(raw: bytes, context: Context) -> Any:
        request = decode(raw)
        if request is _UNDECODABLE:
            await abort(context, undecodable(message_type))
        return request

    return preceded(inner, decoded)


class _DecodedRequests:
    """A request stream that raises the undecodable error at the first undecodable request, and
    remembers it, so the call ends with it even if the servicer let it escape unmapped."""

    def __init__(self, requests: AsyncIterator[bytes], decode: Callable[[bytes], Any], message_type: str) -> None:
        self._requests = requests
        self._decode = decode
        self._message_type = message_type
        self.failure: InvalidArgument | None = None

    async def __aiter__(self) -> AsyncIterator[Any]:
        index = 0
        async for raw in self._requests:
            request = self._decode(raw)
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


def _request_stream(inner: Callable[..., Any], decode: Callable[[bytes], Any], message_type: str) -> Callable[..., Any]:
    """``inner`` run on the decoded request stream, keeping the kind of ``inner`` (see above)."""
    if inspect.isasyncgenfunction(inner):

        async def responses(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[Any]:
            decoded = _DecodedRequests(requests, decode, message_type)
            try:
                async for response in inner(decoded.__aiter__(), context):
                    yield response
            except Exception as exc:
                await decoded.end_with_failure(context, exc)
            await decoded.end_if_failed(context)

        return responses

    async def response(requests: AsyncIterator[bytes], context: Context) -> Any:
        decoded = _DecodedRequests(requests, decode, message_type)
        try:
            result = await inner(decoded.__aiter__(), context)
        except Exception as exc:
            await decoded.end_with_failure(context, exc)
        await decoded.end_if_failed(context)
        return result

    return response
