"""Metrics scraped over HTTP move as calls are made; traces have a span per RPC and per statement;
reflection describes the error detail types, so generic tools can decode them."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pgvector_grpc import AlreadyExistsError, Client, Document, NotFoundError, UnauthenticatedError
from prometheus_client.parser import text_string_to_metric_families

from tests.fix_server import ServerThread

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: ServerThread) -> Samples:
    endpoint = server.running.metrics_endpoint
    assert endpoint is not None
    with urllib.request.urlopen(endpoint.url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_once_handled(server: ServerThread, before: Samples, labels: dict[str, str], calls: int) -> Samples:
    """A scrape taken once ``calls`` more calls of ``labels`` are counted as handled: the server
    counts a call as it finishes, which can come after its caller already has the answer."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(server)
        handled = value(samples, "grpc_server_handling_seconds_count", **labels)
        if handled - value(before, "grpc_server_handling_seconds_count", **labels) >= calls:
            return samples
        assert time.monotonic() < deadline, f"{calls} calls of {labels} were not counted within 10 s"
        time.sleep(0.05)


def rpc(service: str, method: str, grpc_type: str = "unary") -> dict[str, str]:
    return {"grpc_service": f"pgvector_grpc.v1.{service}", "grpc_method": method, "grpc_type": grpc_type}


@pytest.fixture(scope="module")
def measured(database: str) -> Iterator[ServerThread]:
    running = ServerThread(database, metrics_listen="127.0.0.1:0")
    yield running
    running.stop()


@pytest.fixture
def measured_client(measured: ServerThread) -> Iterator[Client]:
    with Client(measured.address, timeout=30) as c:
        yield c


def test_unary_calls_are_counted_by_the_code_the_client_sees(measured: ServerThread, measured_client: Client) -> None:
    get = rpc("CollectionService", "GetCollection")
    before = scrape(measured)
    measured_client.create_collection("observed_unary", 3)
    measured_client.get_collection("observed_unary")
    with pytest.raises(NotFoundError):
        measured_client.get_collection("observed_nowhere")
    after = scrape_once_handled(measured, before, get, 2)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("grpc_server_started_total", **get) == 2
    assert moved("grpc_server_handled_total", **get, grpc_code="OK") == 1
    assert moved("grpc_server_handled_total", **get, grpc_code="NOT_FOUND") == 1
    assert moved("grpc_server_msg_received_total", **get) == 2
    assert moved("grpc_server_msg_sent_total", **get) == 1  # a failed unary call sends no message
    assert moved("grpc_server_handling_seconds_count", **get) == 2
    assert moved("grpc_server_handling_seconds_bucket", **get, le="+Inf") == 2
    create = rpc("CollectionService", "CreateCollection")
    assert moved("grpc_server_handled_total", **create, grpc_code="OK") == 1


def test_streams_count_each_message_and_ingest_counts_documents(
    measured: ServerThread, measured_client: Client
) -> None:
    ingest = rpc("DocumentService", "Ingest", "bidi_stream")
    measured_client.create_collection("observed_stream", 2)
    documents = [Document(f"d{i}", f"text {i}", {"i": i}, [1.0, float(i)]) for i in range(25)]
    before = scrape(measured)
    measured_client.ingest("observed_stream", documents, batch_size=10)  # 3 batches, 3 acks
    measured_client.ingest("observed_stream", documents[:5], batch_size=10, on_conflict="skip")
    measured_client.ingest("observed_stream", documents[:4], batch_size=10, on_conflict="upsert")
    with pytest.raises(AlreadyExistsError):
        measured_client.ingest("observed_stream", documents[:1], on_conflict="fail")
    after = scrape_once_handled(measured, before, ingest, 4)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("grpc_server_started_total", **ingest) == 4
    assert moved("grpc_server_msg_received_total", **ingest) == 3 + 1 + 1 + 1
    assert moved("grpc_server_msg_sent_total", **ingest) == 3 + 1 + 1
    assert moved("grpc_server_handled_total", **ingest, grpc_code="OK") == 3
    assert moved("grpc_server_handled_total", **ingest, grpc_code="ALREADY_EXISTS") == 1
    assert moved("pgvector_grpc_documents_ingested_total", outcome="inserted") == 25
    assert moved("pgvector_grpc_documents_ingested_total", outcome="skipped") == 5
    assert moved("pgvector_grpc_documents_ingested_total", outcome="updated") == 4
    # the refused duplicate id is a unique violation: SQLSTATE class 23
    assert moved("pgvector_grpc_database_errors_total", sqlstate_class="23") >= 1


def test_pool_gauges_are_present(measured: ServerThread) -> None:
    samples = scrape(measured)
    assert value(samples, "pgvector_grpc_pool_max_size") == measured.settings.pool_max_size
    assert value(samples, "pgvector_grpc_pool_size") >= 1
    assert value(samples, "pgvector_grpc_pool_in_use") >= 0
    assert ("pgvector_grpc_pool_waiting", frozenset()) in samples
    assert ("pgvector_grpc_pool_requests_failed_total", frozenset()) in samples
    # no supervisor: the server uses a PostgreSQL it did not start
    assert not any(name.startswith("pgvector_grpc_embedded_postgres") for name, _ in samples)


def test_refused_calls_are_counted_with_their_code(database: str) -> None:
    locked = ServerThread(database, metrics_listen="127.0.0.1:0", require_auth=True)
    try:
        with Client(locked.address, timeout=30) as anonymous, pytest.raises(UnauthenticatedError):
            anonymous.list_collections()
        listing = rpc("CollectionService", "ListCollections")
        samples = scrape_once_handled(locked, {}, listing, 1)
        assert value(samples, "grpc_server_handled_total", **listing, grpc_code="UNAUTHENTICATED") == 1
        assert value(samples, "grpc_server_handled_total", **listing, grpc_code="OK") == 0
    finally:
        locked.stop()


def test_each_server_has_its_own_registry(measured: ServerThread, database: str) -> None:
    other = ServerThread(database, metrics_listen="127.0.0.1:0")
    try:
        with Client(other.address, timeout=30) as c:
            c.list_collections()
        listing = rpc("CollectionService", "ListCollections")
        assert value(scrape(other), "grpc_server_started_total", **listing) == 1
    finally:
        other.stop()


def test_a_span_per_rpc_with_a_child_span_per_statement(database: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = ServerThread(database, tracer_provider=provider)
    try:
        with Client(traced.address, timeout=30) as c:
            c.create_collection("traced", 2)
            c.ingest("traced", [Document("a", "x", {}, [1.0, 0.0])])
            assert c.count("traced") == 1
        spans = exporter.get_finished_spans()
        count_rpc = next(s for s in spans if s.name == "/pgvector_grpc.v1.DocumentService/CountDocuments")
        assert count_rpc.kind == SpanKind.SERVER
        statements = [s for s in spans if s.parent is not None and s.parent.span_id == count_rpc.context.span_id]
        assert statements, [s.name for s in spans]
        assert all(s.attributes is not None and s.attributes["db.system"] == "postgresql" for s in statements)
        assert any(s.name == "SELECT" for s in statements)
        ingest_rpc = next(s for s in spans if s.name == "/pgvector_grpc.v1.DocumentService/Ingest")
        under_ingest = {
            s.name for s in spans if s.parent is not None and s.parent.span_id == ingest_rpc.context.span_id
        }
        assert "COPY" in under_ingest
    finally:
        traced.stop()
        provider.shutdown()


def _file_containing(address: str, symbol: str) -> descriptor_pb2.FileDescriptorProto:
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=30))
    assert response.WhichOneof("message_response") == "file_descriptor_response", response
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    return files[0]


@pytest.mark.parametrize(
    ("symbol", "file_name"),
    [
        ("google.rpc.ErrorInfo", "google/rpc/error_details.proto"),
        ("google.rpc.BadRequest", "google/rpc/error_details.proto"),
        ("google.rpc.Status", "google/rpc/status.proto"),
    ],
)
def test_reflection_describes_the_error_details(measured: ServerThread, symbol: str, file_name: str) -> None:
    described = _file_containing(measured.address, symbol)
    assert described.name == file_name
    assert symbol.rsplit(".", 1)[-1] in [message.name for message in described.message_type]
