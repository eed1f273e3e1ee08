"""Haystack filters beyond the conformance suite: datetime objects, offsets, nested fields and the
errors a caller gets for what the store cannot filter on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from haystack import Document
from haystack.errors import FilterError
from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

from tests.fix_server import ServerThread
from tests.haystack.stores import drop, new_store


@pytest.fixture
def store(server: ServerThread) -> Iterator[PgvectorGrpcDocumentStore]:
    store = new_store(server, dimension=2)
    store.write_documents(
        [
            Document(id="a", content="a", meta={"at": "2024-05-01T10:00:00+02:00", "author": {"name": "Ada"}}),
            Document(id="b", content="b", meta={"at": "2024-05-01T09:00:00", "author": {"name": "Bob"}}),
            Document(id="c", content="c", meta={"at": "2023-01-01", "author": {"name": "Cy"}}),
        ]
    )
    yield store
    store.close()
    drop(server, store)


def ids(docs: list[Document]) -> list[str]:
    return [d.id for d in docs]


def test_dates_compare_in_time_whether_given_as_strings_or_datetimes(store: PgvectorGrpcDocumentStore) -> None:
    # "a" is 08:00 UTC, "b" 09:00 UTC (no offset = UTC), "c" a year earlier
    since = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert ids(store.filter_documents({"field": "meta.at", "operator": ">", "value": since})) == ["b"]
    assert ids(store.filter_documents({"field": "meta.at", "operator": "<=", "value": "2024-05-01T08:00:00Z"})) == [
        "a",
        "c",
    ]


def test_nested_meta_fields_are_paths(store: PgvectorGrpcDocumentStore) -> None:
    found = store.filter_documents({"field": "meta.author.name", "operator": "in", "value": ["Ada", "Cy"]})
    assert ids(found) == ["a", "c"]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"field": "embedding", "operator": "==", "value": "a"}, "'embedding' is not supported"),
        ({"field": "meta.at", "operator": ">", "value": "yesterday"}, "ISO 8601"),
        ({"field": "meta.at", "operator": "in", "value": "a"}, "needs a list"),
        ({"operator": "XOR", "conditions": []}, "unknown logical operator"),
        ({"field": "meta.at", "operator": "~", "value": 1}, "unknown comparison operator"),
    ],
)
def test_filters_the_store_cannot_run_raise_filter_error(
    store: PgvectorGrpcDocumentStore, filters: dict[str, object], message: str
) -> None:
    with pytest.raises(FilterError, match=message):
        store.filter_documents(filters)


def test_id_and_content_are_filterable_like_metadata(store: PgvectorGrpcDocumentStore) -> None:
    store.write_documents([Document(id="d", meta={"at": "2020-01-01"})])  # no content
    assert ids(store.filter_documents({"field": "id", "operator": "in", "value": ["c", "a", "zz"]})) == ["a", "c"]
    assert ids(store.filter_documents({"field": "content", "operator": "==", "value": None})) == ["d"]
    assert ids(store.filter_documents({"field": "content", "operator": "!=", "value": "b"})) == ["a", "c", "d"]
    mixed = {
        "operator": "AND",
        "conditions": [
            {"field": "id", "operator": "!=", "value": "a"},
            {"field": "meta.at", "operator": ">=", "value": "2023-06-01"},
        ],
    }
    assert ids(store.filter_documents(mixed)) == ["b"]
    assert store.delete_by_filter({"field": "id", "operator": "==", "value": "c"}) == 1
    store.write_documents([Document(id=f"v{i}", content=f"v{i}", embedding=[1.0, i / 10]) for i in range(5)])
    by_id = {"field": "id", "operator": "not in", "value": ["v0", "v1"]}
    hits = PgvectorGrpcEmbeddingRetriever(document_store=store).run([1.0, 0.0], filters=by_id)["documents"]
    assert ids(hits) == ["v2", "v3", "v4"]
