"""Bytes that are not a request message end the call with INVALID_ARGUMENT, on unary calls and on
streams, without Python's internal text; the server goes on serving."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2
from pgvector_grpc import Client, Document
from pgvector_grpc.v1 import document_pb2, document_service_pb2

from tests.fix_server import ServerThread

GARBAGE = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # a field tag that overflows its varint
DOCUMENTS = "/pgvector_grpc.v1.DocumentService/"
NO_HANG = 10  # seconds: a deadline the call must beat by ending itself


def assert_undecodable(error: grpc.RpcError, message_type: str) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert message_type in details
    assert "Unexpected" not in details and "DecodeError" not in details and "Error parsing" not in details


@pytest.fixture
def collection(client: Client, collection_name: str) -> str:
    client.create_collection(collection_name, 2, metric="l2")
    client.ingest(collection_name, [Document("a", embedding=[1.0, 0.0])])
    return collection_name


@pytest.mark.parametrize(
    ("method", "message_type"),
    [
        ("/pgvector_grpc.v1.CollectionService/GetCollection", "GetCollectionRequest"),
        (DOCUMENTS + "Search", "SearchRequest"),
        (DOCUMENTS + "CountDocuments", "CountDocumentsRequest"),
        ("/grpc.health.v1.Health/Check", "HealthCheckRequest"),
    ],
)
def test_a_garbage_unary_request_is_invalid_argument(server: ServerThread, method: str, message_type: str) -> None:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as error:
            call(GARBAGE, timeout=NO_HANG)
        assert_undecodable(error.value, message_type)
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        assert check(health_pb2.HealthCheckRequest(), timeout=NO_HANG).status == health_pb2.HealthCheckResponse.SERVING


def test_a_garbage_ingest_batch_ends_the_stream_with_invalid_argument_after_earlier_batches(
    client: Client, server: ServerThread, collection: str
) -> None:
    good = document_service_pb2.IngestRequest(
        collection=collection,
        documents=[document_pb2.Document(id="b", embedding=document_pb2.Vector(values=[0, 1]))],
    ).SerializeToString()
    with grpc.insecure_channel(server.address) as channel:
        ingest = channel.stream_stream(DOCUMENTS + "Ingest", request_serializer=None, response_deserializer=None)
        responses = ingest(iter([good, GARBAGE]), timeout=NO_HANG)
        with pytest.raises(grpc.RpcError) as error:
            list(responses)
    assert_undecodable(error.value, "IngestRequest")
    assert "request 1 of the stream" in (error.value.details() or "")
    assert client.count(collection) == 2


def test_a_garbage_search_stream_message_ends_the_stream_promptly(server: ServerThread, collection: str) -> None:
    query = document_service_pb2.SearchStreamRequest(
        request_id="q0",
        query=document_service_pb2.SearchRequest(
            collection=collection, embedding=document_pb2.Vector(values=[1, 0]), top_k=1
        ),
    ).SerializeToString()
    sent: queue.Queue[bytes | None] = queue.Queue()

    def requests() -> Iterator[bytes]:
        while (message := sent.get()) is not None:
            yield message

    with grpc.insecure_channel(server.address) as channel:
        search = channel.stream_stream(DOCUMENTS + "SearchStream", request_serializer=None, response_deserializer=None)
        responses = search(requests(), timeout=NO_HANG)
        sent.put(query)
        answer = document_service_pb2.SearchStreamResponse.FromString(next(responses))
        assert answer.request_id == "q0" and [h.document.id for h in answer.hits] == ["a"]
        sent.put(GARBAGE)  # the client keeps its side open: the server must end the call
        with pytest.raises(grpc.RpcError) as error:
            next(responses)
        sent.put(None)
    assert_undecodable(error.value, "SearchStreamRequest")
    assert error.value.code() != grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_search_stream_of_only_garbage_is_invalid_argument(server: ServerThread) -> None:
    with grpc.insecure_channel(server.address) as channel:
        search = channel.stream_stream(DOCUMENTS + "SearchStream", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as error:
            list(search(iter([GARBAGE]), timeout=NO_HANG))
    assert_undecodable(error.value, "SearchStreamRequest")
