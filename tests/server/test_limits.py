"""Input limits at the edge: metadata depth and size, filter depth and terms, metadata paths and
collection names. Each limit passes at its value and is refused one past it with INVALID_ARGUMENT
naming the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import psycopg
import pytest
from pgvector_grpc import Client, Document, InvalidArgumentError
from pgvector_grpc.v1 import document_pb2, document_service_pb2, document_service_pb2_grpc
from pgvector_grpc_server.domain.validation import (
    IMPLICITLY_NAMED_SUFFIXES,
    INDEX_SHAPED_NAME,
    MAX_FILTER_DEPTH,
    MAX_FILTER_TERMS,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    RESERVED_COLLECTION_NAMES,
)

from tests.fix_server import ServerThread

Op = document_pb2.Operator


def nested_metadata(depth: int) -> dict[str, Any]:
    """An object nested ``depth`` levels (the object itself is level 1): objects and arrays alternate."""
    value: Any = 1
    for level in range(depth - 1):
        value = {"k": value} if level % 2 else [value]
    return {"top": value}


def sized_metadata(size: int) -> str:
    """Metadata JSON of exactly ``size`` UTF-8 bytes, mostly two-byte characters."""
    prefix, suffix = '{"text":"', '"}'  # compact, as the client writes it
    room = size - len(prefix) - len(suffix)
    return prefix + "é" * (room // 2) + "a" * (room % 2) + suffix


def equals(path: str = "n", value: int = 1) -> document_pb2.Filter:
    return document_pb2.Filter(
        condition=document_pb2.Condition(
            path=[path], operator=Op.OPERATOR_EQ, value=document_pb2.Value(int_value=value)
        )
    )


def nested_filter(depth: int) -> document_pb2.Filter:
    """A condition under ``depth`` levels of not / all_of / any_of."""
    node = equals()
    for level in range(depth):
        if level % 3 == 0:
            node = document_pb2.Filter(**{"not": node})  # type: ignore[arg-type]
        elif level % 3 == 1:
            node = document_pb2.Filter(all_of=document_pb2.FilterList(filters=[node]))
        else:
            node = document_pb2.Filter(any_of=document_pb2.FilterList(filters=[node]))
    return node


def filter_of_terms(terms: int) -> document_pb2.Filter:
    """A filter of ``terms`` terms: conditions, and an in list worth the rest."""
    in_list = document_pb2.Filter(
        condition=document_pb2.Condition(
            path=["n"],
            operator=Op.OPERATOR_IN,
            value=document_pb2.Value(
                list_value=document_pb2.ValueList(values=[document_pb2.Value(int_value=i) for i in range(terms - 3)])
            ),
        )
    )
    return document_pb2.Filter(any_of=document_pb2.FilterList(filters=[equals(), equals(), equals(), in_list]))


@pytest.fixture
def collection(client: Client, request: pytest.FixtureRequest) -> str:
    """A collection of one document, named uniquely (parametrized test names share long prefixes)."""
    name = "limits_" + hashlib.md5(request.node.name.encode()).hexdigest()[:16]
    client.create_collection(name, 2, metric="l2")
    client.ingest(name, [Document("a", metadata={"n": 1}, embedding=[1.0, 0.0])])
    return name


def refused(action: Callable[[], object]) -> InvalidArgumentError:
    with pytest.raises(InvalidArgumentError) as error:
        action()
    return error.value


# -- metadata ---------------------------------------------------------------------------------


def test_ingest_takes_metadata_nested_to_the_limit_and_refuses_one_level_more(client: Client, collection: str) -> None:
    deepest = nested_metadata(MAX_METADATA_DEPTH)
    client.ingest(collection, [Document("deep", metadata=deepest, embedding=[0.0, 1.0])])
    assert client.get(collection, ["deep"])[0].metadata == deepest

    docs = [
        Document("ok", embedding=[0.0, 1.0]),
        Document("too-deep", metadata=nested_metadata(MAX_METADATA_DEPTH + 1)),
    ]
    error = refused(lambda: client.ingest(collection, docs))
    assert error.field == "batches[0].documents[1].metadata_json"
    assert error.reason == "METADATA_TOO_DEEP"
    assert client.get(collection, ["ok", "too-deep"]) == []


def test_ingest_refuses_metadata_nested_ten_thousand_levels(server: ServerThread, collection: str) -> None:
    text = '{"k": ' + "[" * 10_000 + "]" * 10_000 + "}"
    error = raw_ingest(server, collection, text)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batches[0].documents[0].metadata_json" in (error.details() or "")


def test_ingest_takes_metadata_of_the_size_limit_in_bytes_and_refuses_one_byte_more(
    client: Client, server: ServerThread, collection: str
) -> None:
    largest = sized_metadata(MAX_METADATA_BYTES)
    assert len(largest.encode()) == MAX_METADATA_BYTES and len(largest) < MAX_METADATA_BYTES
    client.ingest(collection, [Document("big", metadata=json.loads(largest), embedding=[0.0, 1.0])])
    assert client.get(collection, ["big"])[0].metadata == json.loads(largest)

    error = raw_ingest(server, collection, sized_metadata(MAX_METADATA_BYTES + 1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batches[0].documents[0].metadata_json" in (error.details() or "")
    assert f"{MAX_METADATA_BYTES + 1} bytes" in (error.details() or "")


@pytest.mark.parametrize(
    "number", ["9" * 5000, "1e131071", "-1e400", "1e-100000", "0.5e-400"], ids=["digits", "e", "neg", "tiny", "frac"]
)
def test_ingest_refuses_numbers_beyond_a_float64_that_no_reader_could_take(
    server: ServerThread, collection: str, number: str
) -> None:
    error = raw_ingest(server, collection, '{"a": ' + number + "}")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batches[0].documents[0].metadata_json" in (error.details() or "")


def test_numbers_at_a_float64s_edges_and_lookalikes_in_strings_are_kept(client: Client, collection: str) -> None:
    metadata = {"big": 1.7e308, "small": 5e-324, "int": int("9" * 300), "text": "1e131071 " + "9" * 400}
    client.ingest(collection, [Document("edges", metadata=metadata, embedding=[0.0, 1.0])])
    assert client.get(collection, ["edges"])[0].metadata == metadata


def raw_ingest(server: ServerThread, collection: str, metadata_json: str) -> grpc.RpcError:
    """The error of an Ingest of one document with this metadata text, sent as it is."""
    doc = document_pb2.Document(id="raw", metadata_json=metadata_json, embedding=document_pb2.Vector(values=[1, 2]))
    with grpc.insecure_channel(server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            list(
                stub.Ingest(
                    iter([document_service_pb2.IngestRequest(collection=collection, documents=[doc])]), timeout=30
                )
            )
    return error.value


def test_update_metadata_has_the_same_limits(client: Client, server: ServerThread, collection: str) -> None:
    deepest = nested_metadata(MAX_METADATA_DEPTH)
    assert client.update_metadata(collection, deepest, ["a"]) == 1
    error = refused(lambda: client.update_metadata(collection, nested_metadata(MAX_METADATA_DEPTH + 1), ["a"]))
    assert (error.field, error.reason) == ("metadata_json", "METADATA_TOO_DEEP")
    ten_thousand_deep = '{"k": ' + "[" * 10_000 + "]" * 10_000 + "}"
    request = document_service_pb2.UpdateMetadataRequest(
        collection=collection, ids=["a"], metadata_json=ten_thousand_deep
    )
    error = raw_unary(server, "/pgvector_grpc.v1.DocumentService/UpdateMetadata", request.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata_json: is nested deeper than" in (error.details() or "")

    largest = json.loads(sized_metadata(MAX_METADATA_BYTES))
    assert client.update_metadata(collection, largest, ["a"]) == 1
    error = refused(
        lambda: client.update_metadata(collection, json.loads(sized_metadata(MAX_METADATA_BYTES + 1)), ["a"])
    )
    assert (error.field, error.reason) == ("metadata_json", "METADATA_TOO_LARGE")


# -- filters on every RPC that takes one --------------------------------------------------------

FilterCall = Callable[[Client, str, document_pb2.Filter], object]
FILTER_CALLS: dict[str, FilterCall] = {
    "Search": lambda c, name, f: c.search(name, [1.0, 0.0], filter=f),
    "SearchStream": lambda c, name, f: c.search_many(name, [[1.0, 0.0]], filter=f),
    "CountDocuments": lambda c, name, f: c.count(name, f),
    "ListDocuments": lambda c, name, f: list(c.list(name, filter=f)),
    "DeleteDocuments": lambda c, name, f: c.delete(name, filter=f),
    "UpdateMetadata": lambda c, name, f: c.update_metadata(name, {"seen": True}, filter=f),
    "DescribeMetadata": lambda c, name, f: c.describe_metadata(name, f),
    "GetFieldValues": lambda c, name, f: c.field_values(name, "n", filter=f),
    "GetFieldRange": lambda c, name, f: c.field_range(name, "n", filter=f),
}


def field_of(rpc: str, path: str) -> str:
    """A SearchStream query's fields are named under ``query.``."""
    return f"query.{path}" if rpc == "SearchStream" else path


@pytest.mark.parametrize("rpc", FILTER_CALLS)
def test_filters_nest_to_the_depth_limit_and_not_one_level_more(client: Client, collection: str, rpc: str) -> None:
    call = FILTER_CALLS[rpc]
    call(client, collection, nested_filter(MAX_FILTER_DEPTH))
    error = refused(lambda: call(client, collection, nested_filter(MAX_FILTER_DEPTH + 1)))
    assert error.reason == "FILTER_TOO_DEEP"
    assert error.field is not None and error.field.startswith(field_of(rpc, "filter."))
    assert error.field.count("filters[") + error.field.count(".not") == MAX_FILTER_DEPTH + 1


@pytest.mark.parametrize("rpc", FILTER_CALLS)
def test_filters_hold_up_to_the_term_limit_and_not_one_term_more(client: Client, collection: str, rpc: str) -> None:
    call = FILTER_CALLS[rpc]
    call(client, collection, filter_of_terms(MAX_FILTER_TERMS))
    error = refused(lambda: call(client, collection, filter_of_terms(MAX_FILTER_TERMS + 1)))
    assert (error.field, error.reason) == (field_of(rpc, "filter"), "FILTER_TOO_LARGE")
    assert str(MAX_FILTER_TERMS + 1) in error.message


def test_a_filter_of_100000_terms_is_refused_before_it_reaches_postgres(client: Client, collection: str) -> None:
    terms = [equals(value=i) for i in range(100_000)]
    huge = document_pb2.Filter(any_of=document_pb2.FilterList(filters=terms))
    error = refused(lambda: client.count(collection, huge, timeout=20))
    assert (error.field, error.reason) == ("filter", "FILTER_TOO_LARGE")


def test_a_filter_100000_levels_deep_is_refused_as_invalid(server: ServerThread, collection: str) -> None:
    # No protobuf library builds it; its bytes are nested by hand: Filter.not is field 4.
    inner = equals().SerializeToString()
    for _ in range(100_000):
        inner = _field(4, inner)
    request = _field(1, collection.encode()) + _field(2, inner)  # CountDocumentsRequest.filter is field 2
    error = raw_unary(server, "/pgvector_grpc.v1.DocumentService/CountDocuments", request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "CountDocumentsRequest" in (error.details() or "")


def test_metadata_paths_are_no_deeper_than_metadata(client: Client, collection: str) -> None:
    keys = [f"k{i}" for i in range(MAX_METADATA_DEPTH)]
    assert client.field_values(collection, keys) == ([], 0)
    error = refused(lambda: client.field_values(collection, [*keys, "one-more"]))
    assert error.field == "path"
    too_long = document_pb2.Filter(
        condition=document_pb2.Condition(
            path=[*keys, "one-more"], operator=Op.OPERATOR_EXISTS, value=document_pb2.Value(bool_value=True)
        )
    )
    assert refused(lambda: client.count(collection, too_long)).field == "filter.condition.path"


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def raw_unary(server: ServerThread, method: str, payload: bytes) -> grpc.RpcError:
    """The error of a unary call sending ``payload`` as the request's bytes."""
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as error:
            call(payload, timeout=30)
    return error.value


# -- collection names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "collections",
        "checkpoints",
        "api_keys",
        "search_documents",
        "pgvg_0123456789abcdef0123456789abcdef_metadata",
    ],
)
def test_names_of_the_schema_and_of_its_indexes_are_refused(client: Client, name: str) -> None:
    error = refused(lambda: client.create_collection(name, 2))
    assert (error.field, error.reason) == ("collection.name", "RESERVED_NAME")
    assert refused(lambda: client.get_collection(name)).reason == "RESERVED_NAME"
    assert refused(lambda: client.count(name)).reason == "RESERVED_NAME"


def test_a_name_cannot_take_the_name_postgres_gives_another_collections_key(client: Client, collection: str) -> None:
    for suffix in ("_pkey", "_seq_seq"):
        error = refused(lambda suffix=suffix: client.create_collection(collection[:50] + suffix, 2))  # type: ignore[misc]
        assert (error.field, error.reason) == ("collection.name", "RESERVED_NAME")
    similar = "pgvg_not_an_index"
    assert client.create_collection(similar, 2).name == similar
    client.delete_collection(similar)


def test_index_shaped_name_of_an_existing_collection_is_refused(client: Client, collection: str) -> None:
    taken = f"pgvg_{hashlib.md5(collection.encode()).hexdigest()}_metadata"
    error = refused(lambda: client.create_collection(taken, 2))
    assert error.reason == "RESERVED_NAME"
    assert client.count(collection) == 1


def test_a_filter_at_the_term_limit_still_finds_documents(client: Client, collection: str) -> None:
    hits = client.search(collection, np.array([1.0, 0.0]), filter=filter_of_terms(MAX_FILTER_TERMS), top_k=1)
    assert [h.id for h in hits] == ["a"]


def test_every_name_in_the_schema_is_reserved(server: ServerThread, database: str) -> None:
    """RESERVED_COLLECTION_NAMES in step with sql/: every table, index, sequence, function and type
    of the pgvector_grpc schema that is not a collection's own is refused as a collection name."""
    with psycopg.connect(database) as conn:
        collections = {name for (name,) in conn.execute("SELECT name FROM pgvector_grpc.collections")}
        objects = {
            name
            for (name,) in conn.execute(
                """SELECT relname FROM pg_class WHERE relnamespace = 'pgvector_grpc'::regnamespace
                   UNION SELECT proname FROM pg_proc WHERE pronamespace = 'pgvector_grpc'::regnamespace
                   UNION SELECT typname FROM pg_type WHERE typnamespace = 'pgvector_grpc'::regnamespace
                                                      AND typcategory <> 'A'"""
            )
        }
    own = {f"{c}{suffix}" for c in collections for suffix in ("", *IMPLICITLY_NAMED_SUFFIXES)}
    schema_objects = {name for name in objects - own if not INDEX_SHAPED_NAME.fullmatch(name)}
    assert "collections" in schema_objects and "search_documents" in schema_objects
    assert schema_objects <= RESERVED_COLLECTION_NAMES, schema_objects - RESERVED_COLLECTION_NAMES


# -- NUL characters ---------------------------------------------------------------------------
# PostgreSQL text cannot hold NUL: every string that reaches it is refused at the edge, naming the field.


def test_a_nul_in_a_filter_path_or_value_is_refused_naming_the_field(client: Client, collection: str) -> None:
    in_path = document_pb2.Filter(
        condition=document_pb2.Condition(path=["n\x00"], operator=Op.OPERATOR_EQ, value=document_pb2.Value(int_value=1))
    )
    assert refused(lambda: client.count(collection, in_path)).field == "filter.condition.path"
    in_value = document_pb2.Filter(
        condition=document_pb2.Condition(
            path=["n"], operator=Op.OPERATOR_EQ, value=document_pb2.Value(string_value="a\x00b")
        )
    )
    assert refused(lambda: client.count(collection, in_value)).field == "filter.condition.value"
    in_list = {"n": {"$in": ["a", "b\x00"]}}
    assert refused(lambda: client.count(collection, in_list)).field == "filter.condition.value"
    assert refused(lambda: client.field_values(collection, ["n\x00"])).field == "path"


def test_a_nul_in_a_checkpoint_is_refused_naming_the_field(client: Client, collection: str) -> None:
    doc = Document("b", metadata={"n": 2}, embedding=[0.0, 1.0])
    key = refused(lambda: client.ingest(collection, [doc], checkpoint=("k\x00", "1")))
    assert key.field == "batches[0].checkpoint.key"
    value = refused(lambda: client.ingest(collection, [doc], checkpoint=("k", "1\x00")))
    assert value.field == "batches[0].checkpoint.value"
    assert refused(lambda: client.get_checkpoint(collection, "k\x00")).field == "key"
    assert client.count(collection) == 1  # nothing of the refused batches was written
