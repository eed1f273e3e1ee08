"""The RPC metrics: started, handled (by the code the client sees), messages received and sent (each
message of a stream), and handling time, measured around each method's handler.

Wrap outside authentication, so that refused calls are counted with their code."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeAlias

import grpc

from pgvector_grpc_server.observability.metrics import RpcMetrics
from pgvector_grpc_server.transport.wrapping import Handler, behaviour_of, same_shape

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

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


class RpcMeasures:
    """Measures every call of every method whose handler it wraps into ``metrics``."""

    def __init__(self, metrics: RpcMetrics, response_observers: Mapping[str, ResponseObserver] | None = None) -> None:
        self._metrics = metrics
        self._observers = dict(response_observers or {})

    def wrap(self, method: str, handler: Handler) -> Handler:
        """``handler`` of ``method`` (its full name), measured."""
        grpc_type = GRPC_TYPES[(handler.request_streaming, handler.response_streaming)]
        return _measured(handler, _MethodSeries(self._metrics, method, grpc_type), self._observers.get(method))


def _measured(handler: Handler, series: _MethodSeries, observe: ResponseObserver | None) -> Handler:
    behaviour = _measure(behaviour_of(handler), series, observe, request_streaming=handler.request_streaming)
    return same_shape(handler, behaviour)


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
