"""Whatever a server sends, the client raises only its own typed errors: metadata nested deeper than
Python decodes (stored before the server limited it), JSON or vectors that do not decode,
unknown enum values, error details that do not decode."""

from __future__ import annotations

import json

import psycopg
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from pgvector_grpc import Client, Document, MalformedResponseError, PgvectorGrpcError
from pgvector_grpc._convert.collection import metric_from_pb
from pgvector_grpc._convert.decoding import MAX_JSON_DEPTH
from pgvector_grpc._convert.document import document_from_pb, field_values_from_pb
from pgvector_grpc.errors import from_status
from pgvector_grpc.v1 import document_pb2, document_service_pb2
from psycopg import sql

from tests.fix_server import ServerThread


def nested(depth: int) -> str:
    """Metadata JSON nested ``depth`` levels, the object itself being the first."""
    return '{"k": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def insert_directly(database: str, collection: str, doc_id: str, metadata_json: str) -> None:
    """A row written with SQL, past the server and its limits (as an older server, or psql, could)."""
    with psycopg.connect(database) as conn:
        conn.execute(
            sql.SQL("INSERT INTO pgvector_grpc.{} (id, metadata, embedding) VALUES (%s, %s::jsonb, '[1, 0]')").format(
                sql.Identifier(collection)
            ),
            (doc_id, metadata_json),
        )


@pytest.fixture
def collection(client: Client, server: ServerThread, collection_name: str) -> str:
    client.create_collection(collection_name, 2, metric="l2")
    client.ingest(collection_name, [Document("plain", metadata={"n": 1}, embedding=[0.0, 1.0])])
    return collection_name


def test_metadata_nested_ten_thousand_levels_is_a_typed_error_on_every_read(
    client: Client, database: str, collection: str
) -> None:
    insert_directly(database, collection, "deep", nested(10_000))
    reads = {
        "get": lambda: client.get(collection, ["deep"]),
        "search": lambda: client.search(collection, [1.0, 0.0], top_k=2),
        "search_many": lambda: client.search_many(collection, [[1.0, 0.0]], top_k=2),
        "list": lambda: list(client.list(collection)),
    }
    for read in reads.values():
        with pytest.raises(MalformedResponseError) as error:
            read()
        assert isinstance(error.value, PgvectorGrpcError)
        assert "'deep'" in error.value.message and str(MAX_JSON_DEPTH) in error.value.message

    hits = client.search(collection, [1.0, 0.0], top_k=2, include_metadata=False)
    assert [h.id for h in hits] == ["deep", "plain"]
    assert client.update_metadata(collection, {"k": "flat"}, ["deep"]) == 1
    assert client.get(collection, ["deep"])[0].metadata == {"k": "flat"}


def test_older_metadata_deeper_than_the_server_limit_but_within_the_clients_reads_back(
    client: Client, database: str, collection: str
) -> None:
    insert_directly(database, collection, "older", nested(MAX_JSON_DEPTH))
    assert client.get(collection, ["older"])[0].metadata == json.loads(nested(MAX_JSON_DEPTH))


def test_json_and_vectors_that_do_not_decode_are_typed_errors() -> None:
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        document_from_pb(document_pb2.Document(id="x", metadata_json='{"a": '))
    with pytest.raises(MalformedResponseError, match="5 bytes"):
        document_from_pb(document_pb2.Document(id="x", embedding=document_pb2.Vector(packed=b"\x00" * 5)))
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        field_values_from_pb(document_service_pb2.GetFieldValuesResponse(values_json=["nope"], total=1))
    with pytest.raises(MalformedResponseError, match="unknown metric 99"):
        metric_from_pb(99)


def test_error_details_that_do_not_decode_leave_a_typed_error_without_them() -> None:
    garbage = any_pb2.Any(type_url="type.googleapis.com/google.rpc.BadRequest", value=b"\xff\xff\xff")
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="BAD_FILTER", domain="pgvector-grpc"))
    error = from_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="filter: bad", details=[garbage, info])
    )
    assert isinstance(error, PgvectorGrpcError)
    assert (error.code.name, error.reason, error.field_violations) == ("INVALID_ARGUMENT", "BAD_FILTER", [])
