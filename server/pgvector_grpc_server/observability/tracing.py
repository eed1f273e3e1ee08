"""OpenTelemetry traces (the optional ``[otel]`` extra): a tracer provider exporting over OTLP/gRPC,
and a span per database statement."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

SERVICE_NAME = "pgvector-grpc"


class TracingUnavailable(RuntimeError):
    """Traces were asked for, but the opentelemetry packages are not installed."""


def ensure_available(endpoint: str) -> None:
    """Raise TracingUnavailable unless the packages that send traces to ``endpoint`` are installed."""
    import importlib.util

    for module in (
        "opentelemetry.sdk.trace",
        "opentelemetry.exporter.otlp.proto.grpc",
        "opentelemetry.instrumentation.grpc",
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise TracingUnavailable(
                f"traces to {endpoint} need the opentelemetry packages: pip install 'pgvector-grpc[otel]'"
            )


def otlp_tracer_provider(endpoint: str) -> TracerProvider:
    """A provider that batches spans to the OTLP/gRPC collector at ``endpoint`` (http:// = no TLS)."""
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(
            f"traces to {endpoint} need the opentelemetry packages: pip install 'pgvector-grpc[otel]'"
        ) from exc
    provider = SdkTracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://")))
    )
    return provider


def statement_spans(provider: TracerProvider) -> Callable[[str], AbstractContextManager[object]]:
    """A span per statement, named by its first keyword (SELECT, INSERT, COPY ...), child of the RPC's span."""
    from opentelemetry.trace import SpanKind

    tracer = provider.get_tracer("pgvector_grpc_server.storage")

    def span(statement: str) -> AbstractContextManager[object]:
        words = statement.split(None, 1)
        operation = words[0].upper() if words else "statement"
        return tracer.start_as_current_span(
            operation,
            kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.operation": operation, "db.statement": statement},
        )

    return span


def shutdown(provider: TracerProvider) -> None:
    """Flush and stop the provider's exporters (the SDK's provider has ``shutdown``; the API's does not)."""
    stop = getattr(provider, "shutdown", None)
    if callable(stop):
        stop()
