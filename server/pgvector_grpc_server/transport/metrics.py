"""The server interceptor behind the RPC metrics: started, handled (by the code the client sees),
messages received and sent (each message of a stream), and handling time.

Put it before the authorisation interceptor so that refused calls are counted with their code."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from pgvector_grpc_server.observability.metrics import RpcMetrics

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
if TYPE_CHECKING:
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # not generic at run time
    ServerInterceptor = grpc.aio.ServerInterceptor

GRPC_TYPES = {
    (False, False): "unary",
    (True, False): "client_stream",
    (False, True): "server_stream",
    (True, True): "bidi_stream",
}
# Told of each response a method sends (e.g. Ingest's acknowledgements, to count documents).
ResponseObserver = Callable[[Any], None]


class _MethodSeries:
    """The labelled series of one method, looked up once instead of on every call."""

    def __init__(self, metrics: RpcMetrics, method: str, grpc_type: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        labels = {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": name}
        self.started = metrics.started.labels(**labels)
        self.received = metrics.received.labels(**labels)
        self.sent = metrics.sent.labels(**labels)
        self.seconds = metrics.handling_seconds.labels(**labels)
        self._handled = metrics.handled
        self._labels = labels
        self._handled_by_code: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode, started_at: float) -> None:
        self.seconds.observe(time.perf_counter() - started_at)
        counter = self._handled_by_code.get(code)
        if counter is None:
            counter = self._handled_by_code[code] = self._handled.labels(**self._labels, grpc_code=code.name)
        counter.inc()


def _code_set(context: Context) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # the C core's integer code when the servicer used set_code / abort
        return _CODES_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.OK


_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def _code_of_failure(exc: BaseException, context: Context) -> grpc.StatusCode:
    """The code a client sees when the handler raised ``exc``."""
    if isinstance(exc, grpc.aio.AbortError):
        return _code_set(context)
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        remaining = context.time_remaining()
        expired = remaining is not None and remaining <= 0
        return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN  # grpc.aio's answer to an exception a handler let escape


class MetricsInterceptor(ServerInterceptor):
    """Measures every call of every known method into ``metrics``."""

    def __init__(self, metrics: RpcMetrics, response_observers: Mapping[str, ResponseObserver] | None = None) -> None:
        self._metrics = metrics
        self._observers = dict(response_observers or {})
        self._series: dict[str, _MethodSeries] = {}

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Handler:
        handler = await continuation(details)
        if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED, not counted (as in Go)
            return handler
        series = self._series.get(details.method)
        if series is None:
            grpc_type = GRPC_TYPES[(handler.request_streaming, handler.response_streaming)]
            series = self._series[details.method] = _MethodSeries(self._metrics, details.method, grpc_type)
        return _measured(handler, series, self._observers.get(details.method))


def _measured(handler: Handler, series: _MethodSeries, observe: ResponseObserver | None) -> Handler:
    if handler.unary_unary is not None:
        behaviour = _measure(handler.unary_unary, series, observe, request_streaming=False)
        factory = grpc.unary_unary_rpc_method_handler
    elif handler.unary_stream is not None:
        behaviour = _measure(handler.unary_stream, series, observe, request_streaming=False)
        factory = grpc.unary_stream_rpc_method_handler
    elif handler.stream_unary is not None:
        behaviour = _measure(handler.stream_unary, series, observe, request_streaming=True)
        factory = grpc.stream_unary_rpc_method_handler
    else:
        assert handler.stream_stream is not None
        behaviour = _measure(handler.stream_stream, series, observe, request_streaming=True)
        factory = grpc.stream_stream_rpc_method_handler
    return factory(
        behaviour, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


def _measure(
    inner: Callable[..., Any], series: _MethodSeries, observe: ResponseObserver | None, *, request_streaming: bool
) -> Callable[..., Any]:
    """``inner`` measured; keeps its kind (grpc.aio tells generator handlers from coroutine ones by the function)."""

    def counted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async def each() -> AsyncIterator[Any]:
            async for request in requests:
                series.received.inc()
                yield request

        return each()

    def begin(request: Any) -> Any:
        series.started.inc()
        if request_streaming:
            return counted(request)
        series.received.inc()
        return request

    def sent(response: Any) -> None:
        series.sent.inc()
        if observe is not None:
            observe(response)

    if inspect.isasyncgenfunction(inner):

        async def responses(request: Any, context: Context) -> AsyncIterator[Any]:
            started_at = time.perf_counter()
            request = begin(request)
            try:
                async for response in inner(request, context):
                    sent(response)
                    yield response
            except BaseException as exc:
                series.handled(_code_of_failure(exc, context), started_at)
                raise
            series.handled(_code_set(context), started_at)

        return responses

    async def response(request: Any, context: Context) -> Any:
        started_at = time.perf_counter()
        request = begin(request)
        try:
            result = await inner(request, context)
        except BaseException as exc:
            series.handled(_code_of_failure(exc, context), started_at)
            raise
        if result is not None:
            sent(result)
        series.handled(_code_set(context), started_at)
        return result

    return response
