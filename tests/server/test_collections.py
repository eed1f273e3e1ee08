"""CollectionService through the real client."""

from __future__ import annotations

import psycopg
import pytest
from pgvector_grpc import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    HnswIndex,
    InvalidArgumentError,
    IvfflatIndex,
    NoIndex,
    NotFoundError,
)


def test_create_get_list_delete(client: Client, collection_name: str) -> None:
    created = client.create_collection(collection_name, 8, metric="l2", index=HnswIndex(m=8, ef_construction=32))
    assert (created.name, created.dimension, created.metric, created.index) == (
        collection_name,
        8,
        "l2",
        HnswIndex(8, 32),
    )
    client.ingest(collection_name, [{"id": "a", "embedding": [1] * 8}])
    assert client.get_collection(collection_name).document_count == 1
    assert collection_name in {c.name for c in client.list_collections()}
    client.delete_collection(collection_name)
    with pytest.raises(NotFoundError) as err:
        client.get_collection(collection_name)
    assert err.value.reason == "COLLECTION_NOT_FOUND"
    with pytest.raises(NotFoundError):
        client.delete_collection(collection_name)


@pytest.mark.parametrize(
    ("metric", "index"), [("cosine", IvfflatIndex(lists=4)), ("inner_product", NoIndex()), ("l2", None)]
)
def test_metrics_and_indexes(client: Client, collection_name: str, metric: str, index: object) -> None:
    created = client.create_collection(collection_name, 3, metric=metric, index=index)  # type: ignore[arg-type]
    assert created.metric == metric
    assert created.index == (index or HnswIndex())
    client.delete_collection(collection_name)


def test_duplicate_name(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 4)
    with pytest.raises(AlreadyExistsError) as err:
        client.create_collection(collection_name, 4)
    assert err.value.reason == "COLLECTION_EXISTS"
    same = client.create_collection(collection_name, 4, if_not_exists=True)
    assert same.dimension == 4
    with pytest.raises(FailedPreconditionError) as mismatch:
        client.create_collection(collection_name, 5, if_not_exists=True)
    assert "dimension 4" in mismatch.value.message


@pytest.mark.parametrize(
    ("name", "dimension", "index", "field"),
    [
        ("", 3, None, "collection.name"),
        ("bad name", 3, None, "collection.name"),
        ('x"; DROP TABLE pgvector_grpc.collections; --', 3, None, "collection.name"),
        ("a" * 64, 3, None, "collection.name"),
        ("ok", 0, None, "collection.dimension"),
        ("ok", 2001, None, "collection.dimension"),
        ("ok", 16001, NoIndex(), "collection.dimension"),
        ("ok", 3, HnswIndex(m=1), "collection.index.hnsw.m"),
    ],
)
def test_bad_definitions(client: Client, name: str, dimension: int, index: object, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        client.create_collection(name, dimension, index=index)  # type: ignore[arg-type]
    assert err.value.field == field
    assert field in err.value.message
    assert "ok" not in {c.name for c in client.list_collections()}


def test_unindexed_collection_allows_large_dimensions(client: Client, collection_name: str) -> None:
    assert client.create_collection(collection_name, 4000, index=NoIndex()).dimension == 4000


def _index_options(database: str, collection: str) -> list[str] | None:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT c.reloptions FROM pg_class c WHERE c.relname = pgvector_grpc.index_name(%s, 'vector')",
            (collection,),
        ).fetchone()
    assert row is not None
    return row[0]


def test_server_built_indexes_name_their_parameters(client: Client, database: str, collection_name: str) -> None:
    client.create_collection(collection_name, 4)
    assert _index_options(database, collection_name) == ["m=16", "ef_construction=64"]


@pytest.mark.parametrize(("index_type", "expected"), [("hnsw", HnswIndex(16, 64)), ("ivfflat", IvfflatIndex(100))])
def test_parameters_left_null_in_sql_take_the_defaults(
    client: Client, database: str, collection_name: str, index_type: str, expected: object
) -> None:
    with psycopg.connect(database) as conn:
        conn.execute("SELECT pgvector_grpc.create_collection(%s, 4, 'cosine', %s)", (collection_name, index_type))
    assert _index_options(database, collection_name) is None  # pgvector's own defaults
    assert client.get_collection(collection_name).index == expected
