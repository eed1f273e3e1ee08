"""UpdateMetadata, DescribeMetadata, GetFieldValues, GetFieldRange, datetime filters, insertion
order and exact float64 embeddings."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector_grpc import Client, Document, FailedPreconditionError, Field, InvalidArgumentError
from pgvector_grpc.v1 import document_pb2, document_service_pb2, document_service_pb2_grpc
from pgvector_grpc_server.storage.schema import apply_schema

from tests.fix_server import ServerThread


def condition(path: str, operator: int, **value: object) -> document_pb2.Filter:
    return document_pb2.Filter(
        condition=document_pb2.Condition(path=[path], operator=operator, value=document_pb2.Value(**value))  # type: ignore[arg-type]
    )


def test_float64_embeddings_come_back_exactly_and_float32_ones_stay_packed(
    client: Client, server: ServerThread, collection_name: str
) -> None:
    client.create_collection(collection_name, 3)
    precise = np.array([0.1, 1 / 3, 2.0000001], dtype=np.float64)
    single = np.array([0.5, 0.25, 1.0], dtype=np.float64)  # exact in float32
    client.ingest(collection_name, [Document("precise", embedding=precise), Document("single", embedding=single)])

    got = {d.id: d.embedding for d in client.get(collection_name, ["precise", "single"], include_embedding=True)}
    assert got["precise"] is not None and got["precise"].dtype == np.float64
    assert got["precise"].tobytes() == precise.tobytes()
    hit = client.search(collection_name, precise, top_k=1, include_embedding=True)[0]
    assert hit.id == "precise" and hit.embedding is not None and hit.embedding.tobytes() == precise.tobytes()

    with server_stub(server) as stub:
        response = stub.GetDocuments(
            document_service_pb2.GetDocumentsRequest(
                collection=collection_name, ids=["single"], include=document_pb2.Include(embedding=True)
            )
        )
    vector = response.documents[0].embedding
    assert vector.packed and not vector.packed_f64, "float32-exact values need no float64 copy"


class server_stub:
    def __init__(self, server: ServerThread) -> None:
        import grpc

        self._channel = grpc.insecure_channel(server.address)

    def __enter__(self) -> document_service_pb2_grpc.DocumentServiceStub:
        return document_service_pb2_grpc.DocumentServiceStub(self._channel)

    def __exit__(self, *exc: object) -> None:
        self._channel.close()


def test_insertion_order_pages_and_keeps_the_place_of_replaced_documents(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    ids = [f"doc-{i}" for i in (5, 3, 9, 1, 7, 2, 8)]
    client.ingest(collection_name, [Document(i, embedding=[1, 1]) for i in ids[:4]])
    client.ingest(collection_name, [Document(i, embedding=[1, 1]) for i in ids[4:]])
    client.ingest(collection_name, [Document("doc-3", "replaced", embedding=[1, 2])])

    listed = list(client.list(collection_name, page_size=2, order="insertion"))
    assert [d.id for d in listed] == ids
    assert listed[1].content == "replaced"
    assert [d.id for d in client.list(collection_name, page_size=3)] == sorted(ids)


def test_a_page_token_of_one_order_is_refused_by_the_other(server: ServerThread, collection_name: str) -> None:
    with Client(server.address) as client:
        client.create_collection(collection_name, 2)
        client.ingest(collection_name, [Document(f"d{i}", embedding=[1, 1]) for i in range(3)])
    with server_stub(server) as stub:
        first = stub.ListDocuments(document_service_pb2.ListDocumentsRequest(collection=collection_name, page_size=1))
        with pytest.raises(Exception) as err:
            stub.ListDocuments(
                document_service_pb2.ListDocumentsRequest(
                    collection=collection_name,
                    page_size=1,
                    page_token=first.next_page_token,
                    order=document_service_pb2.DOCUMENT_ORDER_INSERTION,
                )
            )
    assert "page_token" in err.value.details()  # type: ignore[attr-defined]


def test_update_metadata_merges_keys_into_the_selected_documents(
    client: Client, server: ServerThread, collection_name: str
) -> None:
    client.create_collection(collection_name, 2)
    client.ingest(
        collection_name,
        [Document(f"d{i}", metadata={"group": i % 2, "keep": f"k{i}"}, embedding=[1, 1]) for i in range(6)],
    )
    assert client.update_metadata(collection_name, {"flag": True, "group": "odd"}, filter={"group": 1}) == 3
    docs = {d.id: d.metadata for d in client.list(collection_name)}
    assert docs["d1"] == {"group": "odd", "keep": "k1", "flag": True}
    assert docs["d0"] == {"group": 0, "keep": "k0"}
    assert client.update_metadata(collection_name, {"x": 1}, ["d0", "d2"]) == 2
    assert client.update_metadata(collection_name, {"all": 1}, all_documents=True) == 6

    with pytest.raises(InvalidArgumentError) as nothing:
        client.update_metadata(collection_name, {"x": 1})
    assert nothing.value.reason == "NOTHING_SELECTED"
    with server_stub(server) as stub, pytest.raises(Exception) as not_object:
        stub.UpdateMetadata(
            document_service_pb2.UpdateMetadataRequest(
                collection=collection_name, all_documents=True, metadata_json="[1, 2]"
            )
        )
    assert "metadata_json" in not_object.value.details()  # type: ignore[attr-defined]


def test_describe_metadata_counts_documents_per_value_type(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    metas = [{"n": 1, "s": "a"}, {"n": 1.5, "s": None}, {"n": 2, "l": [1], "o": {"a": 1}}, {"b": False}]
    client.ingest(collection_name, [Document(f"d{i}", metadata=m) for i, m in enumerate(metas)])
    assert client.describe_metadata(collection_name) == {
        "b": {"boolean": 1},
        "l": {"array": 1},
        "n": {"integer": 2, "float": 1},
        "o": {"object": 1},
        "s": {"null": 1, "string": 1},
    }
    assert client.describe_metadata(collection_name, {"b": False}) == {"b": {"boolean": 1}}


def test_field_values_are_distinct_by_type_searchable_and_paged(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    values = [1, "1", 1.0, True, 1, None, "Beauty", "beaut-x", "other", {"k": 1}]
    client.ingest(
        collection_name,
        [Document(f"d{i}", metadata={"v": v, "nested": {"v": i % 3}}) for i, v in enumerate(values)]
        + [Document("missing")],
    )
    found, total = client.field_values(collection_name, "v")
    assert total == 8 and len(found) == 8
    by_type = {(type(v).__name__, str(v)) for v in found}
    assert {("int", "1"), ("str", "1"), ("float", "1.0"), ("bool", "True"), ("dict", "{'k': 1}")} <= by_type
    assert client.field_values(collection_name, "v", search_term="BEAUT") == (["Beauty", "beaut-x"], 2)
    page, total = client.field_values(collection_name, "v", search_term="beaut", offset=1, page_size=1)
    assert (page, total) == (["beaut-x"], 2)
    assert client.field_values(collection_name, ("nested", "v")) == ([0, 1, 2], 3)
    assert client.count_distinct(collection_name, "v", filter=Field("nested", "v") == 0) == 4
    assert client.field_values(collection_name, "absent") == ([], 0)


def test_field_range_orders_numbers_by_value_and_strings_by_code_point(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    rows = [{"n": 5, "s": "b"}, {"n": 10, "s": "B"}, {"n": -2.5, "s": "é"}, {"n": 3, "mixed": 1}, {"mixed": "x"}]
    client.ingest(collection_name, [Document(f"d{i}", metadata=m) for i, m in enumerate(rows)])
    assert client.field_range(collection_name, "n") == (-2.5, 10)
    assert client.field_range(collection_name, "s") == ("B", "é")
    assert client.field_range(collection_name, "n", filter={"s": "b"}) == (5, 5)
    assert client.field_range(collection_name, "absent") is None
    with pytest.raises(FailedPreconditionError) as mixed:
        client.field_range(collection_name, "mixed")
    assert mixed.value.reason == "MIXED_TYPES"


def test_datetime_values_compare_in_time_across_offsets(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    dates = {
        "naive": "2024-01-01T12:00:00",
        "offset": "2024-01-01T13:30:00+02:00",  # 11:30 UTC: before the naive one
        "date-only": "2023-12-31",
        "not-a-date": "yesterday",
    }
    client.ingest(collection_name, [Document(k, metadata={"at": v}, embedding=[1, 1]) for k, v in dates.items()])

    after = condition("at", document_pb2.OPERATOR_GT, datetime_value="2024-01-01T11:45:00Z")
    assert {d.id for d in client.list(collection_name, filter=after)} == {"naive"}
    before = condition("at", document_pb2.OPERATOR_LTE, datetime_value="2024-01-01T11:30:00")
    assert {d.id for d in client.list(collection_name, filter=before)} == {"offset", "date-only"}
    negated = document_pb2.Filter(**{"not": before})
    assert {d.id for d in client.list(collection_name, filter=negated)} == {"naive"}, "a non-date matches neither"
    hits = client.search(collection_name, [1, 1], top_k=10, filter=after)
    assert [h.id for h in hits] == ["naive"]

    with pytest.raises(InvalidArgumentError) as bad:
        client.count(collection_name, condition("at", document_pb2.OPERATOR_GT, datetime_value="soon"))
    assert bad.value.field_violations[0].field == "filter.condition.value.datetime_value"


def test_applying_the_schema_upgrades_collections_made_before_the_new_columns(
    client: Client, database: str, collection_name: str
) -> None:
    client.create_collection(collection_name, 2)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE pgvector_grpc."{collection_name}" DROP COLUMN seq, DROP COLUMN embedding_exact')
    import asyncio

    asyncio.run(apply_schema(database))
    client.ingest(collection_name, [Document("b", embedding=[0.1, 0.2]), Document("a", embedding=[1, 1])])
    assert [d.id for d in client.list(collection_name, order="insertion")] == ["b", "a"]
    assert client.get(collection_name, ["b"], include_embedding=True)[0].embedding.tolist() == [0.1, 0.2]  # type: ignore[union-attr]


def test_conditions_on_the_id_and_the_content(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    client.ingest(
        collection_name,
        [Document("a", "apple pie", {"n": 1}), Document("b", None, {"n": 2}), Document("c", "cherry", {"n": 3})],
    )

    def on(field: int, operator: int, **value: object) -> document_pb2.Filter:
        return document_pb2.Filter(
            condition=document_pb2.Condition(field=field, operator=operator, value=document_pb2.Value(**value))  # type: ignore[arg-type]
        )

    content_has_pie = on(document_pb2.DOCUMENT_FIELD_CONTENT, document_pb2.OPERATOR_CONTAINS, string_value="pie")
    assert [d.id for d in client.list(collection_name, filter=content_has_pie)] == ["a"]
    no_text = on(document_pb2.DOCUMENT_FIELD_CONTENT, document_pb2.OPERATOR_EXISTS, bool_value=False)
    assert [d.id for d in client.list(collection_name, filter=no_text)] == ["b"]
    after_a = on(document_pb2.DOCUMENT_FIELD_ID, document_pb2.OPERATOR_GT, string_value="a")
    assert client.count(collection_name, document_pb2.Filter(all_of=document_pb2.FilterList(filters=[after_a]))) == 2

    with pytest.raises(InvalidArgumentError) as not_a_string:
        client.count(collection_name, on(document_pb2.DOCUMENT_FIELD_ID, document_pb2.OPERATOR_EQ, int_value=1))
    assert not_a_string.value.field_violations[0].field == "filter.condition.value"
    with_path = document_pb2.Filter(
        condition=document_pb2.Condition(
            field=document_pb2.DOCUMENT_FIELD_ID,
            path=["x"],
            operator=document_pb2.OPERATOR_EQ,
            value=document_pb2.Value(string_value="a"),
        )
    )
    with pytest.raises(InvalidArgumentError, match="path"):
        client.count(collection_name, with_path)


def test_metadata_floats_written_with_an_exponent_come_back_as_floats(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    metadata = {"big": 1e16, "neg": -2.5e20, "tiny": 1e-7, "int": 10**16, "text": "1e+16", "deep": [{"x": 1.5e300}]}
    client.ingest(collection_name, [Document("d", metadata=metadata)])
    back = client.get(collection_name, ["d"])[0].metadata
    assert back == metadata
    assert [type(back[k]) for k in ("big", "neg", "tiny", "int")] == [float, float, float, int]
    assert type(back["deep"][0]["x"]) is float
