"""GetDocuments, DeleteDocuments, CountDocuments, ListDocuments."""

from __future__ import annotations

import pytest
from pgvector_grpc import AsyncClient, Client, Document, Field, InvalidArgumentError
from pgvector_grpc.v1 import document_service_pb2, document_service_pb2_grpc

from tests.fix_server import ServerThread


@pytest.fixture
def filled(client: Client, collection_name: str) -> str:
    client.create_collection(collection_name, 2)
    client.ingest(
        collection_name,
        [
            Document(f"id-{i:03d}", f"t{i}", {"group": "odd" if i % 2 else "even", "i": i}, [1, i + 1])
            for i in range(250)
        ],
    )
    return collection_name


def test_get_keeps_the_order_asked_and_skips_missing(client: Client, filled: str) -> None:
    got = client.get(filled, ["id-010", "missing", "id-002", "id-010"])
    assert [d.id for d in got] == ["id-010", "id-002"]
    assert got[0].embedding is None
    assert client.get(filled, ["id-002"], include_embedding=True)[0].embedding.tolist() == [1, 3]


def test_count_with_and_without_filter(client: Client, filled: str) -> None:
    assert client.count(filled) == 250
    assert client.count(filled, {"group": "odd"}) == 125
    assert client.count(filled, Field("i") >= 200) == 50


def test_list_pages_in_id_order(client: Client, filled: str) -> None:
    ids = [d.id for d in client.list(filled, page_size=40)]
    assert ids == [f"id-{i:03d}" for i in range(250)]
    odd = [d.id for d in client.list(filled, filter={"group": "odd"}, page_size=7)]
    assert odd == [f"id-{i:03d}" for i in range(1, 250, 2)]


def test_list_page_tokens(server: ServerThread, filled: str) -> None:
    import grpc

    with grpc.insecure_channel(server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        first = stub.ListDocuments(document_service_pb2.ListDocumentsRequest(collection=filled, page_size=100))
        assert len(first.documents) == 100 and first.next_page_token
        big = stub.ListDocuments(document_service_pb2.ListDocumentsRequest(collection=filled, page_size=5000))
        assert len(big.documents) == 250 and big.next_page_token == ""  # capped at 1000
        with pytest.raises(grpc.RpcError) as err:
            stub.ListDocuments(document_service_pb2.ListDocumentsRequest(collection=filled, page_token="garbage!"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in err.value.details()
        with pytest.raises(grpc.RpcError) as neg:
            stub.ListDocuments(document_service_pb2.ListDocumentsRequest(collection=filled, page_size=-1))
        assert "page_size" in neg.value.details()


def test_delete_by_ids_filter_and_all(client: Client, filled: str) -> None:
    assert client.delete(filled, ["id-000", "id-001", "missing"]) == 2
    assert client.delete(filled, filter={"group": "odd", "i": {"$lt": 11}}) == 4  # 3, 5, 7, 9 (1 is gone)
    assert client.count(filled) == 250 - 2 - 4
    with pytest.raises(InvalidArgumentError) as err:
        client.delete(filled)
    assert err.value.reason == "NOTHING_SELECTED"
    assert client.delete(filled, all_documents=True) == 244
    assert client.count(filled) == 0


async def test_async_reads(server: ServerThread, filled: str) -> None:
    async with AsyncClient(server.address) as c:
        assert await c.count(filled, {"group": "even"}) == 125
        assert [d.id async for d in c.list(filled, filter={"i": {"$gte": 245}}, page_size=2)] == [
            f"id-{i}" for i in range(245, 250)
        ]
        assert [d.id for d in await c.get(filled, ["id-100"])] == ["id-100"]
        assert await c.delete(filled, filter=Field("i") >= 245) == 5


@pytest.mark.parametrize("bad", ["", "x" * 513])
def test_bad_ids(client: Client, filled: str, bad: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        client.get(filled, ["ok", bad])
    assert err.value.field == "ids[1]"
