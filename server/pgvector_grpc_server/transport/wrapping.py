"""Every method handler the server registers, wrapped once, when it is registered.

The wrapping used to be done by server interceptors, which grpc.aio runs on every call, each
building its wrapper anew. A handler is the same object call after call, so here it is wrapped
once: ``Registration`` stands in for the server while the services add their handlers, and hands
it each handler wrapped. (Measured with make bench ARGS="--only transport", the server's CPU per
Search stayed within the run-to-run noise; the whole wrapped chain - metrics, authentication,
decoding, grants - takes about 6 us a call when timed alone.)"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
# (full method name, handler) -> the handler to serve it with.
Wrap: TypeAlias = Callable[[str, Handler], Handler]

if TYPE_CHECKING:
    GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:  # not generic at run time
    GenericHandler = grpc.GenericRpcHandler

HANDLER_FACTORIES: dict[tuple[bool, bool], Callable[..., Handler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def same_shape(handler: Handler, behaviour: Callable[..., Any], *, raw_requests: bool = False) -> Handler:
    """A handler of the same kind as ``handler`` that runs ``behaviour``, with its serialisers (with
    ``raw_requests``, none for requests: ``behaviour`` gets their bytes)."""
    factory = HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(
        behaviour,
        request_deserializer=None if raw_requests else handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def preceded(inner: Callable[..., Any], before: Callable[[Any, Any], Awaitable[Any]]) -> Callable[..., Any]:
    """``inner`` run on what ``await before(request, context)`` returns (``before`` may end the call
    instead), of the same kind as ``inner``: grpc.aio tells generator handlers from coroutine ones by
    their function."""
    if inspect.isasyncgenfunction(inner):

        async def responses(request: Any, context: Any) -> AsyncIterator[Any]:
            async for response in inner(await before(request, context), context):
                yield response

        return responses

    async def response(request: Any, context: Any) -> Any:
        return await inner(await before(request, context), context)

    return response


def behaviour_of(handler: Handler) -> Callable[..., Any]:
    """The function a handler runs, whatever its kind."""
    function = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    assert function is not None
    return function


class _Wrapped(GenericHandler):
    """A generic handler whose handlers come wrapped."""

    def __init__(self, inner: GenericHandler, registration: Registration) -> None:
        self._inner = inner
        self._registration = registration

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:  # an unknown method: UNIMPLEMENTED, as without wrapping
            return None
        return self._registration.wrapped(handler_call_details.method, handler)


class Registration:
    """Takes the place of ``server`` for the ``add_*_to_server`` functions, registering each handler
    with ``wrap`` applied, once per method."""

    def __init__(self, server: grpc.aio.Server, wrap: Wrap) -> None:
        self._server = server
        self._wrap = wrap
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def wrapped(self, method: str, handler: Handler) -> Handler:
        """``handler`` of ``method`` wrapped: the same wrapped handler for the same handler."""
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self._wrap(method, handler))
        return known[1]

    @property
    def as_server(self) -> grpc.aio.Server:
        """This, as the ``add_*_to_server`` functions are typed to take it (they call only the two
        methods below)."""
        return cast(grpc.aio.Server, self)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self._server.add_generic_rpc_handlers([_Wrapped(h, self) for h in generic_rpc_handlers])

    def add_registered_method_handlers(self, service_name: str, method_handlers: Mapping[str, Handler]) -> None:
        self._server.add_registered_method_handlers(  # type: ignore[attr-defined]  # grpc 1.63+, not in the stubs
            service_name,
            {name: self.wrapped(f"/{service_name}/{name}", h) for name, h in method_handlers.items()},
        )
